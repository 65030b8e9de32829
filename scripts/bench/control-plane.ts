// Control-plane overhead (docs/benchmarks.md, "Control-plane overhead"): the same steady load
// (one room, P publishers, S subscribers, werift peers pinned to core 1) against callplane and
// against a raw-mediasoup harness (scripts/bench/lib/raw-mediasoup-server.ts: same worker, router
// and WebRtcServer, no signaling stack, billing or database), both pinned to core 0, one after the
// other in one run. Reports each side's Node-process and worker CPU over the measured span (from
// their /metrics), the ratio of total CPU, and callplane's Node CPU as a share of its worker's.
// --receiver light (docs/loadtest.md, "Receivers") lets the load tester's core carry a load that
// keeps the worker busier.
//
//   node --import tsx scripts/bench/control-plane.ts [--publishers 4] [--subscribers 20] [--duration 30] [--receiver full|light] [--profile] [--out file.json]
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { freePortBase, freeTcpPort } from '../../test/helpers/ports.ts';
import { BENCH_API_KEY, ROOT, hottestFrames, loadAverage, runLoadtestCli, startCallplane, type LoadtestRun } from './lib/loadtest-bench.ts';

const { values } = parseArgs({
  options: {
    publishers: { type: 'string', default: '4' },
    subscribers: { type: 'string', default: '20' },
    duration: { type: 'string', default: '30' },
    receiver: { type: 'string', default: 'full' },
    profile: { type: 'boolean', default: false },
    out: { type: 'string', default: 'control-plane.json' },
  },
});
if (values.receiver !== 'full' && values.receiver !== 'light') throw new Error(`--receiver must be full or light, not ${values.receiver}`);
const loadArgs = (url: string): string[] => ['--url', url, '--api-key', BENCH_API_KEY, '--publishers', values.publishers, '--subscribers', values.subscribers, '--receiver', values.receiver, '--duration', values.duration, '--ramp', '10'];

function figures(run: LoadtestRun): Record<string, number | string | null> {
  const r = run.report;
  if (!r) throw new Error(`loadtest gave no report (exit ${run.code}): ${run.stderrTail}`);
  const node = r.server.process_cpu_pct;
  const worker = r.server.workers[0]?.cpu_pct ?? null;
  return {
    tracks: `${r.tracks.received}/${r.tracks.expected}`,
    received_pps: r.received_packets_per_s,
    node_cpu_pct: node,
    worker_cpu_pct: worker,
    total_cpu_pct: node !== null && worker !== null ? Math.round((node + worker) * 100) / 100 : null,
    loss_pct: Math.max(r.packet_loss_pct.audio ?? 0, r.packet_loss_pct.video ?? 0),
    load_tester_cpu_pct: r.load_tester.cpu_pct,
    load_average: loadAverage(),
  };
}

// 1. callplane
const startedAt = Date.now();
const callplane = await startCallplane({ core: 0, cpuProfile: values.profile });
let callplaneFigures: Record<string, number | string | null>;
let steadyWindow: [number, number] = [0, Infinity];
try {
  callplaneFigures = figures(await runLoadtestCli(1, loadArgs(callplane.baseUrl)));
  // The steady span ended about when the load tester began cleaning up (a few seconds before it exited).
  const endS = (Date.now() - startedAt) / 1000 - 3;
  steadyWindow = [endS - Number(values.duration) + 2, endS];
} finally {
  await callplane.stop();
}
console.log(JSON.stringify({ side: 'callplane', ...callplaneFigures }));

// 2. the raw-mediasoup harness, same load
const httpPort = await freeTcpPort();
const harness = spawn('taskset', ['-c', '0', process.execPath, '--import', 'tsx', 'scripts/bench/lib/raw-mediasoup-server.ts', String(httpPort), String(await freePortBase(1)), BENCH_API_KEY], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise<void>((resolve, reject) => {
  harness.stdout!.on('data', (chunk: Buffer) => String(chunk).includes('raw mediasoup harness on') && resolve());
  harness.once('exit', (code) => reject(new Error(`the harness exited (${code})`)));
});
let rawFigures: Record<string, number | string | null>;
try {
  rawFigures = figures(await runLoadtestCli(1, loadArgs(`http://127.0.0.1:${httpPort}`)));
} finally {
  harness.kill('SIGTERM');
}
console.log(JSON.stringify({ side: 'raw-mediasoup', ...rawFigures }));

const ratio = (a: unknown, b: unknown): number | null => (typeof a === 'number' && typeof b === 'number' && b > 0 ? Math.round((a / b) * 1000) / 1000 : null);
const summary = {
  benchmark: 'control-plane',
  load: { publishers: Number(values.publishers), subscribers: Number(values.subscribers), duration_s: Number(values.duration) },
  callplane: callplaneFigures,
  raw_mediasoup: rawFigures,
  total_cpu_ratio: ratio(callplaneFigures.total_cpu_pct, rawFigures.total_cpu_pct),
  callplane_node_share_of_worker_pct: ratio(callplaneFigures.node_cpu_pct, callplaneFigures.worker_cpu_pct) === null ? null : Math.round(ratio(callplaneFigures.node_cpu_pct, callplaneFigures.worker_cpu_pct)! * 1000) / 10,
  hottest_callplane_frames: callplane.profileDir ? hottestFrames(callplane.profileDir, 15, ...steadyWindow) : null,
};
writeFileSync(values.out, `${JSON.stringify(summary, null, 2)}\n`);
console.log(`total CPU callplane / raw mediasoup: ${summary.total_cpu_ratio}; callplane's Node process: ${summary.callplane_node_share_of_worker_pct}% of its worker's CPU`);
if (summary.hottest_callplane_frames) console.log(`hottest callplane frames (self time):\n  ${summary.hottest_callplane_frames.join('\n  ')}`);
console.log(`written: ${values.out}`);
