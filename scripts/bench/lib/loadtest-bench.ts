// Shared parts of the media benchmarks (docs/benchmarks.md, "SFU forwarding", "Control-plane
// overhead"): a throwaway callplane server process (embedded PostgreSQL, one media worker) pinned
// to a core, `callplane loadtest` runs pinned to another, CPU readings from /proc, and a summary of
// a Node --cpu-prof profile (hottest functions by self time).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePortBase, freeTcpPort } from '../../../test/helpers/ports.ts';

export const ROOT = join(import.meta.dirname, '../../..');
export const BENCH_API_KEY = 'bench-api-key-0123456789abcdef';
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** User + system CPU seconds of a process so far, from /proc/<pid>/stat (null once it is gone). */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

export function rssMb(pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round(Number(match[1]) / 1024) : null;
  } catch {
    return null;
  }
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export interface BenchServer {
  baseUrl: string;
  pid: number;
  workerPid: number;
  profileDir: string | null;
  stop(): Promise<void>;
}

/** `callplane serve` under `taskset -c <core>` (its media worker inherits the pinning). */
export async function startCallplane(options: { core: number; cpuProfile: boolean; env?: Record<string, string> }): Promise<BenchServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'callplane-bench-'));
  const profileDir = options.cpuProfile ? mkdtempSync(join(tmpdir(), 'callplane-bench-prof-')) : null;
  const httpPort = await freeTcpPort();
  const env = {
    // CALLPLANE_* settings of the bench's own environment reach the server (e.g. to try a setting),
    // except those the bench fixes below.
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('CALLPLANE_'))),
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    CALLPLANE_DATA_DIR: dataDir,
    CALLPLANE_HTTP_PORT: String(httpPort),
    CALLPLANE_DATABASE_EMBEDDED_PORT: String(await freeTcpPort()),
    CALLPLANE_API_KEY: BENCH_API_KEY,
    CALLPLANE_MEDIA_WORKERS: '1',
    CALLPLANE_MEDIA_LISTEN_IP: '127.0.0.1',
    CALLPLANE_MEDIA_PORT_BASE: String(await freePortBase(1)),
    // One worker holds the whole call: no piping to a second router.
    CALLPLANE_MEDIA_MAX_CONSUMERS_PER_WORKER: '100000',
    CALLPLANE_TURN_ENGINE: 'off',
    CALLPLANE_RATE_LIMITS_ENABLED: 'false',
    CALLPLANE_CALLS_SIGNALING_MESSAGES_PER_SECOND: '10000',
    CALLPLANE_LOG_LEVEL: 'warn',
    ...options.env,
  };
  const nodeArgs = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const child = spawn('taskset', ['-c', String(options.core), process.execPath, ...nodeArgs, 'bin/callplane.js', 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + String(chunk)).slice(-4000)));
  const baseUrl = `http://127.0.0.1:${httpPort}`;
  const workerPid = await readyWorkerPid(baseUrl, child, () => stderr);
  return {
    baseUrl,
    pid: child.pid!,
    workerPid,
    profileDir,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function readyWorkerPid(baseUrl: string, child: ChildProcess, stderr: () => string): Promise<number> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited at start (${child.exitCode}): ${stderr()}`);
    try {
      const ready = await fetch(`${baseUrl}/readyz`);
      if (ready.status === 200) {
        const body = (await ready.json()) as { components: { media_workers: Array<{ pid: number }> } };
        return body.components.media_workers[0]!.pid;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the server was not ready in 90 s: ${stderr()}`);
    await sleep(200); // polling a process that has no readiness event to offer
  }
}

export interface LoadtestRun {
  code: number | null;
  report: Record<string, unknown> & {
    duration_s: number;
    tracks: { expected: number; received: number };
    packets: { received: number; lost: number };
    received_packets_per_s: number;
    packet_loss_pct: { audio: number | null; video: number | null };
    bitrate_kbps: { audio: number | null; video: number | null };
    server: { cpu_pct: number | null; process_cpu_pct: number | null; workers: Array<{ cpu_pct: number | null; consumers: number | null }> };
    load_tester: { cpu_pct: number };
  } | null;
  stderrTail: string;
}

/** `callplane loadtest` pinned to `core`, with its JSON report read back. */
export async function runLoadtestCli(core: number, args: string[]): Promise<LoadtestRun> {
  const dir = mkdtempSync(join(tmpdir(), 'callplane-bench-report-'));
  const json = join(dir, 'report.json');
  const child = spawn('taskset', ['-c', String(core), process.execPath, 'bin/callplane.js', 'loadtest', ...args, '--json', json], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + String(chunk)).slice(-2000)));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  let report: LoadtestRun['report'] = null;
  try {
    report = JSON.parse(readFileSync(json, 'utf8'));
  } catch {
    // no report: the tail of stderr says why
  }
  rmSync(dir, { recursive: true, force: true });
  return { code, report, stderrTail: stderr.trim().split('\n').slice(-3).join(' | ') };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/**
 * The functions with the most self time in the .cpuprofile files of `dir`, as "share% name (file:line)",
 * over the samples between `fromS` and `toS` seconds after the profile started (default: all of it), so
 * start-up (module loading) stays out of a steady-load profile. Idle time is left out of the shares.
 */
export function hottestFrames(dir: string, count = 12, fromS = 0, toS = Infinity): string[] {
  const self = new Map<string, number>();
  let total = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    let elapsedUs = 0;
    profile.samples.forEach((id, i) => {
      elapsedUs += profile.timeDeltas[i] ?? 0;
      const node = byId.get(id);
      if (!node || elapsedUs < fromS * 1e6 || elapsedUs > toS * 1e6) return;
      const { functionName, url, lineNumber } = node.callFrame;
      if (functionName === '(idle)') return;
      const key = `${functionName || '(anonymous)'} (${url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '') || 'native'}:${lineNumber + 1})`;
      const delta = profile.timeDeltas[i] ?? 0;
      self.set(key, (self.get(key) ?? 0) + delta);
      total += delta;
    });
  }
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, count).map(([key, us]) => `${((us / total) * 100).toFixed(1)}% ${key}`);
}
