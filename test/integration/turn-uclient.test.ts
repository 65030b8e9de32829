/**
 * coturn's own client tools against callplane's TURN (docs/turn.md): turnutils_uclient relays
 * through the embedded server to turnutils_peer echo servers with no loss, signing in with the
 * TURN REST API secret itself (-W), as any REST API client would. And the coturn engine:
 * supervised (restarted when it dies, stopped with the service).
 */
import { execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { freePortBase } from '../helpers/ports.ts';
import { TEST_TURN_SECRET, startTurn } from '../helpers/turn.ts';
import { stunBinding } from '../../src/turn/probe.ts';
import type { CoturnSupervisor } from '../../src/turn/coturn.ts';

const run = promisify(execFile);
const missing = existsSync('/usr/bin/turnutils_uclient') && existsSync('/usr/bin/turnserver') ? null : 'coturn is not installed (apt-get install coturn; npm run setup installs it)';
if (missing && process.env.CI === 'true') t.fail(`${missing}: CI=true, so this fails rather than skips`);

/** turnutils_peer on 127.0.0.1:port, returned once it echoes a datagram. */
async function echoPeer(t: Test, port: number): Promise<void> {
  const child = spawn('turnutils_peer', ['-p', String(port), '-L', '127.0.0.1'], { stdio: 'ignore' });
  t.teardown(() => void child.kill('SIGKILL'));
  const probe = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => probe.send('ping', port, '127.0.0.1'), 100);
    const deadline = setTimeout(() => finish(new Error(`turnutils_peer on ${port} did not echo`)), 10_000);
    let done = false;
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(deadline);
      probe.close();
      if (error) reject(error);
      else resolve();
    };
    probe.on('message', () => finish());
    child.once('exit', (code) => finish(new Error(`turnutils_peer exited with ${code}`)));
  });
}

t.test('turnutils_uclient relays through the embedded TURN to turnutils_peer with 0 loss', { skip: missing ?? false }, async (t) => {
  const peerPort = await freePortBase(2);
  // the peers stand in for this node's two media ports (RTP and, uclient's default, RTCP on port + 1)
  const turn = await startTurn(t, { media: { port_base: peerPort, workers: 2 } });
  await Promise.all([echoPeer(t, peerPort), echoPeer(t, peerPort + 1)]);
  const { stdout } = await run('turnutils_uclient', ['-W', TEST_TURN_SECRET, '-u', '01JUCLIENT0000000000000000', '-p', String(turn.port), '-e', '127.0.0.1', '-r', String(peerPort), '-n', '200', '-m', '4', '-l', '120', '-z', '5', '-L', '127.0.0.1', '127.0.0.1'], { timeout: 60_000 });
  const sent = Number(/tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(stdout)?.[1]);
  const received = Number(/tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(stdout)?.[2]);
  t.equal(sent, 800, `uclient sent 4 clients × 200 messages:\n${stdout.split('\n').slice(-8).join('\n')}`);
  t.equal(received, sent, 'and got every one back');
  t.match(stdout, /Total lost packets 0 \(0\.000000%\)/, 'uclient reports 0 lost packets');
  const metrics = await turn.registry.metrics();
  t.match(metrics, /callplane_turn_relayed_packets_total\{direction="to_peer"\} (8\d\d|9\d\d|\d{4,})/, 'the relayed packets are counted');
});

t.test('the coturn engine is supervised: restarted when it dies, stopped with the service', { skip: missing ?? false }, async (t) => {
  const turn = await startTurn(t, { turn: { engine: 'coturn' } });
  const coturn = turn.service.engine as CoturnSupervisor;
  t.same(turn.service.urls(), [`turn:127.0.0.1:${turn.port}?transport=udp`, `turn:127.0.0.1:${turn.port}?transport=tcp`], 'UDP and TCP URLs (no TLS without a certificate)');
  t.ok(await stunBinding('127.0.0.1', turn.port, 1000), 'coturn answers a Binding');
  const first = coturn.pid!;
  process.kill(first, 'SIGKILL');
  t.ok(await coturn.waitReady(15_000), 'answers again after being killed');
  t.not(coturn.pid, first, 'a new process');
  const second = coturn.pid!;
  await turn.service.stop();
  t.throws(() => process.kill(second, 0), { code: 'ESRCH' }, 'stopped with the service');
});
