// Recording (docs/recording.md), outside tap. Prints one JSON line.
//
//   node --import tsx scripts/bench/recording.ts [--publishers 2] [--seconds 20] [--minutes 1]
//
// 1. capture: a throwaway server (embedded PostgreSQL, one media worker), --publishers libwebrtc
//    peers (test/helpers/node-peer.ts) publishing audio + video (320x180, 15 fps) in one room call,
//    recorded for --seconds. Measured from /proc/<pid>/stat: the CPU of every capture ffmpeg, and of
//    the media worker during the recording window against a window of the same length before it
//    started (what the taps add there), each per recorded track, as a share of one core.
// 2. composition: 2 and 4 participants' raw tracks of --minutes (VP8 320x180 at 15 fps and Opus,
//    as the capture writes them; made with ffmpeg beforehand, not timed) composed with the default
//    recording.compose settings; measured: wall-clock seconds per minute of call.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config/load.ts';
import { startServer } from '../../src/main.ts';
import { planComposition, runComposition, type ComposeSegment } from '../../src/recording/compose.ts';
import { NodePeer } from '../../test/helpers/node-peer.ts';
import { freePortBase } from '../../test/helpers/ports.ts';

const run = promisify(execFile);
const { values } = parseArgs({ options: { publishers: { type: 'string', default: '2' }, seconds: { type: 'string', default: '20' }, minutes: { type: 'string', default: '1' } } });
const PUBLISHERS = Number(values.publishers);
const SECONDS = Number(values.seconds);
const MINUTES = Number(values.minutes);
const TICKS = 100; // USER_HZ on Linux
const dataDir = mkdtempSync(join(tmpdir(), 'callplane-bench-rec-'));

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

const until = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
};
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function captureBench(): Promise<Record<string, number>> {
  const portBase = await freePortBase(60);
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: dataDir,
      log: { level: 'silent', pretty: false },
      http: { host: '127.0.0.1', port: 0 },
      media: { workers: 1, listen_ip: '127.0.0.1', port_base: await freePortBase(1) },
      turn: { engine: 'off' },
      rate_limits: { enabled: false },
      recording: { port_range: { min: portBase, max: portBase + 59 } },
      auth: { api_key: 'bench-api-key-0123456789' },
    },
  });
  const server = await startServer(config);
  const api = async (path: string, init: { method?: string; body?: unknown; token?: string } = {}) => {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(init.token ? { authorization: `Bearer ${init.token}` } : { 'x-api-key': 'bench-api-key-0123456789' }) };
    const response = await fetch(`${server.baseUrl}${path}`, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
    return (await response.json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  const peers: NodePeer[] = [];
  try {
    const users = [];
    for (let i = 0; i < PUBLISHERS; i++) {
      const user = await api('/v1/users', { method: 'POST', body: { display_name: `P${i}`, role: 'user' } });
      const token = await api('/v1/auth/token', { method: 'POST', body: { user_id: user.user.id, ttl_seconds: 3600 } });
      users.push({ id: user.user.id as string, token: token.access_token as string });
    }
    const room = await api('/v1/rooms', { method: 'POST', token: users[0]!.token, body: { name: 'bench', members: users.slice(1).map((u) => ({ user_id: u.id })) } });
    const call = await api('/v1/calls/initiate', { method: 'POST', token: users[0]!.token, body: { room_id: room.room.id, type: 'video' } });
    const callId = call.call.id as string;
    for (let i = 0; i < PUBLISHERS; i++) {
      const answer = i === 0 ? call : await api(`/v1/calls/${callId}/join`, { method: 'POST', token: users[i]!.token });
      const peer = await NodePeer.connect({ signalingUrl: answer.signaling_url, token: answer.signaling_token, produce: { audio: true, video: true }, consume: false });
      await peer.sendConnected();
      peers.push(peer);
    }
    const workerPid = (await server.ctx.media.health())[0]!.pid!;
    // Baseline: the same publishers, no recording.
    await pause(3000);
    let t0 = cpuSeconds(workerPid);
    await pause(SECONDS * 1000);
    const workerIdle = cpuSeconds(workerPid) - t0;

    const started = await api(`/v1/calls/${callId}/recording/start`, { method: 'POST', token: users[0]!.token, body: {} });
    const recordingId = started.recording.id as string;
    const tracks = PUBLISHERS * 2;
    await until('every track captured', () => server.ctx.recordingCapture.pids(recordingId).length === tracks);
    await pause(3000); // past ffmpeg's probing
    const pids = server.ctx.recordingCapture.pids(recordingId);
    const f0 = pids.map(cpuSeconds);
    t0 = cpuSeconds(workerPid);
    const wall0 = Date.now();
    await pause(SECONDS * 1000);
    const wall = (Date.now() - wall0) / 1000;
    const ffmpegCpu = pids.map(cpuSeconds).reduce((sum, v, i) => sum + v - f0[i]!, 0);
    const workerRecording = cpuSeconds(workerPid) - t0;
    await api(`/v1/calls/${callId}/recording/stop`, { method: 'POST', token: users[0]!.token });
    return {
      tracks,
      window_seconds: Math.round(wall * 10) / 10,
      ffmpeg_core_share_per_track_pct: Math.round((ffmpegCpu / wall / tracks) * 10000) / 100,
      worker_added_core_share_per_track_pct: Math.round(((workerRecording - workerIdle) / wall / tracks) * 10000) / 100,
    };
  } finally {
    for (const peer of peers) await peer.close({ leave: false }).catch(() => undefined);
    await server.stop();
  }
}

async function compositionBench(participants: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'callplane-bench-compose-'));
  const seconds = MINUTES * 60;
  const segments: ComposeSegment[] = [];
  for (let i = 0; i < participants; i++) {
    const video = join(dir, `p${i}-video.mkv`);
    const audio = join(dir, `p${i}-audio.mkv`);
    await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=s=320x180:r=15:d=${seconds}`, '-c:v', 'libvpx', '-b:v', '300k', '-deadline', 'realtime', '-cpu-used', '8', video]);
    await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `sine=f=${300 + 100 * i}:d=${seconds}`, '-c:a', 'libopus', '-b:a', '32k', audio]);
    segments.push({ file: video, kind: 'video', participantId: `p${i}`, offsetMs: i * 1000, startTimeSeconds: 0 });
    segments.push({ file: audio, kind: 'audio', participantId: `p${i}`, offsetMs: i * 1000, startTimeSeconds: 0 });
  }
  const defaults = loadConfig({ env: {}, overrides: { data_dir: dir } }).recording.compose;
  const plan = planComposition(segments, seconds * 1000, defaults, true);
  const began = Date.now();
  await runComposition('ffmpeg', plan, join(dir, 'out.mp4'));
  const took = (Date.now() - began) / 1000;
  rmSync(dir, { recursive: true, force: true });
  return { participants, call_minutes: MINUTES, seconds_per_call_minute: Math.round((took / MINUTES) * 10) / 10 };
}

try {
  const capture = await captureBench();
  const compose2 = await compositionBench(2);
  const compose4 = await compositionBench(4);
  console.log(JSON.stringify({ capture, composition: [compose2, compose4] }));
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(0);
