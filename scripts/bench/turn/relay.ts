/**
 * TURN relay benchmark (docs/benchmarks.md, "TURN relay"): the same client, coturn's
 * turnutils_uclient, through the embedded engine and through coturn, in one run on loopback, to
 * turnutils_peer echo servers. Reports relayed packets/s and server CPU per relayed packet.
 *
 *   npx tsx scripts/bench/turn/relay.ts [clients] [messages per client] [message bytes]
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { loadConfig } from '../../../src/config/load.ts';
import { systemClock } from '../../../src/shared/clock.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { TurnService, createTurnMetrics } from '../../../src/turn/index.ts';
import type { CoturnSupervisor } from '../../../src/turn/coturn.ts';

const run = promisify(execFile);
const [clients = 20, messages = 2000, size = 200] = process.argv.slice(2).map(Number);
const SECRET = 'bench-secret';
const PEER_PORT = 28480;
const TICK_US = 1e6 / 100; // /proc stat clock ticks (USER_HZ 100 on Linux)

function procCpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

async function bench(engine: 'embedded' | 'coturn', port: number) {
  const config = loadConfig({ env: {}, overrides: { media: { workers: 2, listen_ip: '127.0.0.1', port_base: PEER_PORT }, turn: { engine, secret: SECRET, listen_ip: '127.0.0.1', port, user_quota: 1000, relay_port_min: port + 10, relay_port_max: port + 400 } } });
  const service = new TurnService(config, { secret: SECRET, clock: systemClock, logger: createLogger({ level: 'error', pretty: false }), metrics: createTurnMetrics(new Registry()), dataDir: mkdtempSync(join(tmpdir(), 'turn-bench-')) });
  await service.start();
  const cpu = engine === 'embedded' ? () => { const u = process.cpuUsage(); return u.user + u.system; } : () => procCpuUs((service.engine as CoturnSupervisor).pid!);
  const cpu0 = cpu();
  const t0 = process.hrtime.bigint();
  const { stdout } = await run('turnutils_uclient', ['-W', SECRET, '-u', 'bench', '-p', String(port), '-e', '127.0.0.1', '-r', String(PEER_PORT), '-n', String(messages), '-m', String(clients), '-l', String(size), '-z', '0', '-c', '-L', '127.0.0.1', '127.0.0.1'], { maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuUs = cpu() - cpu0;
  await service.stop();
  const m = /tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(stdout)!;
  const sent = Number(m[1]);
  const received = Number(m[2]);
  const relayed = sent + received; // each message crosses the relay twice: to the peer and back
  return { engine, sent, received, lossPct: (100 * (sent - received)) / sent, seconds, packetsPerSecond: relayed / seconds, cpuUsPerPacket: cpuUs / relayed, cpuPct: (100 * cpuUs) / 1e6 / seconds };
}

const peer = spawn('turnutils_peer', ['-p', String(PEER_PORT), '-L', '127.0.0.1'], { stdio: 'ignore' });
await new Promise((resolve) => setTimeout(resolve, 500)); // the peer binds at once; a benchmark, not a test
try {
  const results: Array<Awaited<ReturnType<typeof bench>>> = [];
  for (const [engine, port] of [['embedded', 28000], ['coturn', 28500], ['embedded', 28000], ['coturn', 28500]] as const) results.push(await bench(engine, port));
  console.table(results.map((r) => ({ ...r, seconds: r.seconds.toFixed(2), packetsPerSecond: Math.round(r.packetsPerSecond), cpuUsPerPacket: r.cpuUsPerPacket.toFixed(2), cpuPct: r.cpuPct.toFixed(0), lossPct: r.lossPct.toFixed(2) })));
  const mean = (engine: string, key: 'packetsPerSecond' | 'cpuUsPerPacket') => results.filter((r) => r.engine === engine).reduce((s, r) => s + r[key], 0) / 2;
  console.log(`embedded/coturn packet rate: ${(mean('embedded', 'packetsPerSecond') / mean('coturn', 'packetsPerSecond')).toFixed(2)}×; CPU per packet: ${(mean('embedded', 'cpuUsPerPacket') / mean('coturn', 'cpuUsPerPacket')).toFixed(2)}×`);
} finally {
  peer.kill('SIGKILL');
}
