/** `callplane doctor`'s TURN line: a real allocation against the running engine (docs/turn.md). */
import t from 'tap';
import { loadConfig } from '../../src/config/load.ts';
import { turnCheck } from '../../src/cli/doctor.ts';
import { freePortBase } from '../helpers/ports.ts';
import { TEST_TURN_SECRET, startTurn } from '../helpers/turn.ts';

const configFor = (port: number, secret: string) => loadConfig({ env: {}, overrides: { data_dir: '/nonexistent', turn: { listen_ip: '127.0.0.1', port, secret } } });

t.test('a running embedded TURN grants the doctor an allocation; a wrong secret is reported; a free port is fine', async (t) => {
  const turn = await startTurn(t);
  const [name, ok, detail] = await turnCheck(configFor(turn.port, TEST_TURN_SECRET));
  t.equal(name, 'turn');
  t.ok(ok, detail);
  t.match(detail, /allocation granted \(relayed 127\.0\.0\.1:\d+\), released/);
  t.equal(await (await import('../helpers/turn.ts')).metricValue(turn.registry, 'callplane_turn_allocations'), 0, 'the probe released its allocation');

  const wrong = await turnCheck(configFor(turn.port, 'not-the-secret'));
  t.notOk(wrong[1], 'a secret the server does not share fails');
  t.match(wrong[2], /allocation refused: 401/);

  const free = await turnCheck(configFor(await freePortBase(1), TEST_TURN_SECRET));
  t.ok(free[1]);
  t.match(free[2], /free \(the engine starts with serve\)/);
});
