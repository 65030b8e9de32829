// SFU forwarding (docs/benchmarks.md, "SFU forwarding"): one room of P publishers and S subscribers
// on one media worker pinned to core 0 (with the server process), the load tester (werift peers
// counting RTP without decoding) pinned to core 1. Subscribers grow step by step until loss passes
// 0.5%, the worker reaches 80% CPU, or the load tester saturates its core. Per step: forwarded
// packets/s (what the receivers counted), consumers, worker CPU (from /proc), and both normalised
// to one worker core. With --profile, the server runs under --cpu-prof and the hottest functions are
// printed; with --perf, `perf record` samples the worker during each step and the last step's
// hottest worker symbols are printed. --receiver light gives the subscribers the load tester's light
// receive path (docs/loadtest.md, "Receivers": SRTP headers counted, no decryption, no NACKs or
// RTCP), which lets one load-tester core receive far more; the default, full, is werift's own
// receive path, as in the figures of docs/benchmarks.md.
//
//   node --import tsx scripts/bench/sfu-forwarding.ts [--publishers 4] [--steps 10,20,40,80,160] [--duration 20] [--receiver full|light] [--profile] [--perf] [--out file.json]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_API_KEY, cpuSeconds, hottestFrames, loadAverage, runLoadtestCli, startCallplane } from './lib/loadtest-bench.ts';

const { values } = parseArgs({
  options: {
    publishers: { type: 'string', default: '4' },
    steps: { type: 'string', default: '10,20,40,80,160' },
    duration: { type: 'string', default: '20' },
    media: { type: 'string', default: 'both' },
    receiver: { type: 'string', default: 'full' },
    profile: { type: 'boolean', default: false },
    perf: { type: 'boolean', default: false },
    out: { type: 'string', default: 'sfu-forwarding.json' },
  },
});
const publishers = Number(values.publishers);
const steps = values.steps.split(',').map(Number);
if (values.receiver !== 'full' && values.receiver !== 'light') throw new Error(`--receiver must be full or light, not ${values.receiver}`);
const LOSS_LIMIT_PCT = 0.5;
const WORKER_CPU_LIMIT_PCT = 80;
const TESTER_CPU_LIMIT_PCT = 90;

const server = await startCallplane({ core: 0, cpuProfile: values.profile });
const results: Array<Record<string, unknown>> = [];
const perfDir = values.perf ? mkdtempSync(join(tmpdir(), 'callplane-bench-perf-')) : null;
let perfFile: string | null = null;
let stopReason = `ran every step (${steps.join(', ')} subscribers)`;
try {
  for (const subscribers of steps) {
    const workerBefore = cpuSeconds(server.workerPid)!;
    const nodeBefore = cpuSeconds(server.pid)!;
    perfFile = perfDir ? join(perfDir, `worker-${subscribers}.data`) : null;
    const perf = perfFile ? spawn('perf', ['record', '-F', '499', '-g', '-p', String(server.workerPid), '-o', perfFile], { stdio: 'ignore' }) : null;
    const run = await runLoadtestCli(1, ['--url', server.baseUrl, '--api-key', BENCH_API_KEY, '--publishers', String(publishers), '--subscribers', String(subscribers), '--media', values.media, '--receiver', values.receiver, '--duration', values.duration, '--ramp', '10']);
    if (perf) {
      const exited = new Promise((resolve) => perf.once('exit', resolve));
      perf.kill('SIGINT');
      await exited;
    }
    const report = run.report;
    if (!report) throw new Error(`loadtest gave no report (exit ${run.code}): ${run.stderrTail}`);
    const worker = report.server.workers[0];
    const pps = report.received_packets_per_s;
    const workerCpu = worker?.cpu_pct ?? null;
    // Over every packet of the step (video dominates; audio has no retransmission, so its loss is listed apart).
    const loss = Math.round((report.packets.lost / Math.max(1, report.packets.received + report.packets.lost)) * 100_000) / 1000;
    const row = {
      publishers,
      subscribers,
      receiver: values.receiver,
      load_average: loadAverage(),
      peers: `${(report.peers as { joined: number; expected: number }).joined}/${(report.peers as { joined: number; expected: number }).expected}`,
      tracks: `${report.tracks.received}/${report.tracks.expected}`,
      consumers: worker?.consumers ?? null,
      forwarded_pps: Math.round(pps),
      worker_cpu_pct: workerCpu,
      server_node_cpu_pct: report.server.process_cpu_pct,
      pps_per_worker_core: workerCpu ? Math.round(pps / (workerCpu / 100)) : null,
      consumers_per_worker_core: workerCpu && worker?.consumers ? Math.round(worker.consumers / (workerCpu / 100)) : null,
      loss_pct: loss,
      loss_pct_by_kind: report.packet_loss_pct,
      bitrate_kbps: report.bitrate_kbps,
      first_errors: (report.errors as string[]).slice(0, 2),
      load_tester_cpu_pct: report.load_tester.cpu_pct,
      // Whole run of this step (setup and ramp included), from /proc: a cross-check of /metrics.
      worker_cpu_s_step: Math.round((cpuSeconds(server.workerPid)! - workerBefore) * 10) / 10,
      node_cpu_s_step: Math.round((cpuSeconds(server.pid)! - nodeBefore) * 10) / 10,
    };
    results.push(row);
    console.log(JSON.stringify(row));
    if (loss > LOSS_LIMIT_PCT) {
      stopReason = `loss ${loss}% > ${LOSS_LIMIT_PCT}% at ${subscribers} subscribers`;
      break;
    }
    if ((workerCpu ?? 0) >= WORKER_CPU_LIMIT_PCT) {
      stopReason = `worker CPU ${workerCpu}% ≥ ${WORKER_CPU_LIMIT_PCT}% at ${subscribers} subscribers`;
      break;
    }
    if (report.load_tester.cpu_pct >= TESTER_CPU_LIMIT_PCT) {
      stopReason = `the load tester saturated core 1 (${report.load_tester.cpu_pct}% CPU) at ${subscribers} subscribers, before the worker (${workerCpu}%)`;
      break;
    }
  }
} finally {
  await server.stop();
}
const best = results.reduce<Record<string, unknown> | null>((a, r) => (!a || (r.forwarded_pps as number) > (a.forwarded_pps as number) ? r : a), null);
/** The worker's symbols with the most self samples in a perf.data file. */
function perfTop(file: string): string[] {
  const text = execFileSync('perf', ['report', '-i', file, '--stdio', '--no-children', '--sort', 'symbol', '-g', 'none', '--percent-limit', '1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * 2 ** 20 });
  return text.split('\n').filter((l) => /^\s+\d+\.\d+%/.test(l)).slice(0, 15).map((l) => l.trim().replace(/\s+/g, ' '));
}
const summary = {
  benchmark: 'sfu-forwarding',
  receiver: values.receiver,
  stop_reason: stopReason,
  best,
  steps: results,
  hottest_server_frames: server.profileDir ? hottestFrames(server.profileDir) : null,
  hottest_worker_symbols: perfFile ? perfTop(perfFile) : null,
};
writeFileSync(values.out, `${JSON.stringify(summary, null, 2)}\n`);
console.log(`stop: ${stopReason}`);
if (summary.hottest_server_frames) console.log(`hottest server frames (self time):\n  ${summary.hottest_server_frames.join('\n  ')}`);
if (summary.hottest_worker_symbols) console.log(`hottest worker symbols (perf, last step):\n  ${summary.hottest_worker_symbols.join('\n  ')}`);
console.log(`written: ${values.out}`);
