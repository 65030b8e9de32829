/**
 * `callplane loadtest` through the real binary against a real server process (docs/loadtest.md):
 * real WebRTC peers of both engines (werift with both receive paths) through the SFU, the JSON
 * report, and the exit codes.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase } from '../../src/db/database.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { freePortBase } from '../helpers/ports.ts';
import { SERVER_API_KEY, ServerProcess } from '../helpers/server-process.ts';

const BIN = join(import.meta.dirname, '../../bin/callplane.js');
const workDir = mkdtempSync(join(tmpdir(), 'callplane-loadtest-'));
t.teardown(() => rmSync(workDir, { recursive: true, force: true }));

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  lastStderrLine: string;
}

function loadtest(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'loadtest', ...args], {
      // No NODE_OPTIONS of the test runner; HOME for the cached media clips.
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr, lastStderrLine: stderr.trimEnd().split('\n').at(-1) ?? '' }));
  });
}

/* eslint-disable @typescript-eslint/no-explicit-any -- the report is read field by field */
function readReport(path: string): any {
  return JSON.parse(readFileSync(path, 'utf8'));
}

function checkReportShape(t: Test, report: any): void {
  for (const field of ['config', 'started_at', 'duration_s', 'peers', 'join_ms', 'tracks', 'bitrate_kbps', 'packet_loss_pct', 'jitter_ms', 'server']) t.ok(field in report, `report has ${field}`);
  t.ok(report.duration_s >= 2, 'the measured span covers the duration');
  t.ok(!Number.isNaN(Date.parse(report.started_at)), 'started_at is a time');
  for (const p of ['p50', 'p95', 'p99']) t.ok(report.join_ms[p] > 0, `join_ms.${p} is measured`);
  t.ok(report.join_ms.p50 <= report.join_ms.p95 && report.join_ms.p95 <= report.join_ms.p99, 'join percentiles are ordered');
  for (const kind of ['audio', 'video']) {
    t.ok(report.bitrate_kbps[kind] > 0, `${kind} bitrate is measured`);
    t.ok(report.packet_loss_pct[kind] < 1, `${kind} loss under 1% (${report.packet_loss_pct[kind]}%)`);
    t.ok(report.jitter_ms[kind] >= 0, `${kind} jitter is a number`);
  }
  t.ok(report.server.rss_mb > 0, 'the server RSS comes from /metrics');
  t.ok(report.server.cpu_pct > 0, 'the server CPU comes from /metrics');
  t.equal(report.server.workers.length, 1, 'one media worker reported');
  t.ok(report.server.workers[0].consumers > 0, "the worker's consumers are reported");
}

t.test('against a running server', async (t) => {
  const databaseUrl = await createTestDatabase(t);
  const db = createDatabase(databaseUrl, 1);
  t.teardown(() => db.destroy());
  const server = await ServerProcess.create(t, databaseUrl, {});
  await server.start();
  const target = ['--url', server.baseUrl, '--api-key', SERVER_API_KEY, '--duration', '3', '--ramp', '20'];

  t.test('werift: 2 rooms × 2 publishers × 2 subscribers receive every track', async (t) => {
    const json = join(workDir, 'werift.json');
    // A wrong CALLPLANE_API_KEY as well: --api-key wins over it.
    // 5 s rather than 3: a lost audio packet (no retransmission for audio) weighs less on a short track.
    const run = await loadtest([...target, '--duration', '5', '--rooms', '2', '--publishers', '2', '--subscribers', '2', '--json', json], { CALLPLANE_API_KEY: 'env-key-not-the-key-0123' });
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, /tracks\s+24\/24 received/, 'the summary table is on stdout');
    const report = readReport(json);
    t.same(report.peers, { expected: 8, joined: 8, failed: 0 });
    t.same([report.tracks.expected, report.tracks.received], [2 * 2 * 2 * (2 - 1 + 2), 24]);
    t.equal(report.config.engine, 'werift');
    checkReportShape(t, report);
    // It cleaned up: its calls ended, its rooms deleted.
    const calls = await db.selectFrom('calls').select('status').execute();
    t.same(calls.map((c) => c.status), ['ended', 'ended'], 'both calls were ended');
    const rooms = await db.selectFrom('rooms').select('id').execute();
    t.same(rooms, [], 'the rooms were deleted');
  });

  t.test('werift, light receivers: 1 room × 2 publishers × 2 subscribers receive every track', async (t) => {
    const json = join(workDir, 'light.json');
    const run = await loadtest([...target, '--duration', '5', '--publishers', '2', '--subscribers', '2', '--receiver', 'light', '--json', json]);
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, /werift, light receivers/, 'the summary table names the receive path');
    const report = readReport(json);
    t.same(report.peers, { expected: 4, joined: 4, failed: 0 });
    t.same([report.tracks.expected, report.tracks.received], [1 * 2 * 2 * (2 - 1 + 2), 12]);
    t.equal(report.config.receiver, 'light');
    checkReportShape(t, report);
    // The subscribers' 8 tracks were counted by the light path (it alone feeds their counters), the
    // publishers' 4 by werift's; the engine's line on stderr says what the light path counted.
    const line = /light receivers: (\d+) subscriber transports, (\d+) RTP packets counted/.exec(run.stderr);
    t.ok(line, `the light receivers' line is on stderr: ${run.stderr}`);
    t.equal(Number(line?.[1]), 2, "both subscribers' receive transports were light");
    t.ok(Number(line?.[2]) >= report.packets.received / 2, `the light path counted the subscribers' packets (${line?.[2]} of ${report.packets.received} in all)`);
  });

  t.test('wrtc: 1 room × 1 publisher × 2 subscribers receive every track', async (t) => {
    const json = join(workDir, 'wrtc.json');
    const run = await loadtest([...target, '--engine', 'wrtc', '--publishers', '1', '--subscribers', '2', '--json', json]);
    t.equal(run.code, 0, run.stderr);
    const report = readReport(json);
    t.same(report.peers, { expected: 3, joined: 3, failed: 0 });
    t.same([report.tracks.expected, report.tracks.received], [1 * 2 * (1 - 1 + 2), 4]);
    t.equal(report.config.engine, 'wrtc');
    checkReportShape(t, report);

    const compared = await loadtest(['--compare', join(workDir, 'werift.json'), json]);
    t.equal(compared.code, 0, compared.stderr);
    t.match(compared.stdout, /config\.engine: werift → wrtc/, '--compare lists the config differences');
    t.match(compared.stdout, /tracks\.expected\s+24\s+4\s+-83\.3%/, '--compare prints both values and the change');
  });

  t.test('a refused API key exits 2 and says so', async (t) => {
    const run = await loadtest(['--url', server.baseUrl, '--api-key', 'not-the-key-0123456789']);
    t.equal(run.code, 2);
    t.match(run.lastStderrLine, /the API key was refused/);
  });

  t.test('without --api-key the key comes from CALLPLANE_API_KEY', async (t) => {
    const run = await loadtest(['--url', server.baseUrl], { CALLPLANE_API_KEY: 'env-key-not-the-key-0123' });
    t.equal(run.code, 2);
    t.match(run.lastStderrLine, /the API key was refused/, 'the variable was used (and refused), not reported missing');
  });
});

t.test('an unreachable target exits 2 and names it', async (t) => {
  const port = await freePortBase(1); // nothing listens there
  const run = await loadtest(['--url', `http://127.0.0.1:${port}`, '--api-key', SERVER_API_KEY]);
  t.equal(run.code, 2);
  t.match(run.lastStderrLine, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}`));
});

t.test('bad arguments exit 2 with the reason last on stderr', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--url', 'http://127.0.0.1:1', '--api-key', 'k', '--rooms', '0'], /--rooms.*must be an integer from 1/],
    [['--url', 'http://127.0.0.1:1', '--api-key', 'k', '--media', 'smell'], /--media.*audio, video, both/],
    [['--url', 'ftp://x', '--api-key', 'k'], /--url.*http\(s\) URL/],
    [['--api-key', 'k'], /--url <base url> is required/],
    [['--url', 'http://127.0.0.1:1'], /an API key is required/],
    [['--url', 'http://127.0.0.1:1', '--api-key', 'k', '--simulcast'], /--simulcast needs --engine wrtc/],
    [['--url', 'http://127.0.0.1:1', '--api-key', 'k', '--engine', 'wrtc', '--receiver', 'light'], /--receiver light needs --engine werift/],
    [['--url', 'http://127.0.0.1:1', '--api-key', 'k', '--receiver', 'heavy'], /--receiver.*full, light/],
    [['--compare', 'only-one.json'], /--compare takes two report files/],
    [['--compare', join(workDir, 'missing-a.json'), join(workDir, 'missing-b.json')], /cannot read .*missing-a\.json: ENOENT/],
  ];
  // Independent processes, started together (each spends seconds loading the CLI).
  const runs = await Promise.all(cases.map(([args]) => loadtest(args)));
  for (const [i, [args, reason]] of cases.entries()) {
    t.equal(runs[i]!.code, 2, `exit 2 for ${args.join(' ')}`);
    t.match(runs[i]!.lastStderrLine, reason, `reason for ${args.join(' ')}`);
  }
});

t.test('a server whose signaling limit closes every peer: fewer than 95% of tracks, exit 1', async (t) => {
  // One message per second (bursts of two): a peer needs several requests to set up, so the
  // server closes each signaling socket (4008) before its media flows.
  const server = await ServerProcess.create(t, await createTestDatabase(t), { CALLPLANE_CALLS_SIGNALING_MESSAGES_PER_SECOND: '1' });
  await server.start();
  const json = join(workDir, 'refused.json');
  const run = await loadtest(['--url', server.baseUrl, '--api-key', SERVER_API_KEY, '--duration', '2', '--media', 'audio', '--publishers', '2', '--subscribers', '1', '--json', json]);
  t.equal(run.code, 1, run.stderr);
  const report = readReport(json);
  t.equal(report.tracks.expected, 2 * 1 * (2 - 1 + 1));
  t.ok(report.tracks.received < 0.95 * report.tracks.expected, `${report.tracks.received} of ${report.tracks.expected} tracks arrived`);
  t.match(run.lastStderrLine, new RegExp(`only ${report.tracks.received} of 4 expected tracks arrived`));
});
/* eslint-enable @typescript-eslint/no-explicit-any */
