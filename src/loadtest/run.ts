/**
 * One load test: sets up users, rooms and calls through the public API, joins the simulated peers
 * at the ramp rate, holds them for the duration while reporting progress, then measures, cleans
 * up (calls ended, rooms deleted, also when interrupted) and returns the report.
 */
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import { CallplaneApi } from './api.ts';
import type { Engine, PeerPlan } from './peer.ts';
import { SimulatedPeer } from './peer.ts';
import { createProgress } from './progress.ts';
import { expectedTracks, isReceived, kindsOf, percentile, trackFigures, type LoadtestConfig, type LoadtestReport } from './report.ts';
import { round, sampleMetrics, serverFigures } from './server-metrics.ts';
import type { TrackSnapshot } from './track-stats.ts';

const SETUP_CONCURRENCY = 8;
const TICK_MS = 1000;

interface PlannedPeer {
  room: number;
  index: number;
  publisher: boolean;
  userId: string;
  token: string;
}

export interface RunOptions {
  config: LoadtestConfig;
  apiKey: string;
  engine: Engine;
  /** Aborted on SIGINT: the run stops early, cleans up and reports what it measured. */
  signal: AbortSignal;
}

export async function runLoadtest({ config, apiKey, engine, signal }: RunOptions): Promise<LoadtestReport> {
  const api = new CallplaneApi(config.url, apiKey); // the command has verified the target and the key
  const startedAt = new Date();
  const runId = startedAt.toISOString().replace(/[-:.TZ]/g, '').slice(0, 14);
  const limit = pLimit(SETUP_CONCURRENCY);
  const peersPerRoom = config.publishers + config.subscribers;
  const mediaType = config.media === 'audio' ? 'audio' : 'video';
  const kinds = kindsOf(config.media);
  const errors: string[] = [];
  const rooms: string[] = [];
  const calls: string[] = [];
  const peers: SimulatedPeer[] = [];
  let failed = 0;

  try {
    // Users and their access tokens (the API key mints them), one per peer.
    const planned: PlannedPeer[] = await Promise.all(
      Array.from({ length: config.rooms * peersPerRoom }, (_, i) =>
        limit(async () => {
          const room = Math.floor(i / peersPerRoom);
          const index = i % peersPerRoom;
          const publisher = index < config.publishers;
          const userId = await api.createUser(`loadtest ${runId} r${room} ${publisher ? 'pub' : 'sub'}${index}`);
          return { room, index, publisher, userId, token: await api.mintToken(userId) };
        }),
      ),
    );
    // A room per group, its first publisher starts the call (and holds that call's first token).
    const firstTokens = new Map<number, { signalingUrl: string; token: string; callId: string }>();
    await Promise.all(
      Array.from({ length: config.rooms }, (_, room) =>
        limit(async () => {
          const members = planned.filter((p) => p.room === room);
          const owner = members[0]!;
          const roomId = await api.createRoom(`loadtest ${runId} room ${room}`, members.slice(1).map((m) => m.userId), owner.token);
          rooms.push(roomId);
          const answer = await api.initiate(roomId, mediaType, owner.token);
          calls.push(answer.call.id);
          firstTokens.set(room, { signalingUrl: answer.signaling_url, token: answer.signaling_token, callId: answer.call.id });
        }),
      ),
    );
    if (signal.aborted) throw new Error('interrupted before the peers joined');

    // Joining order: room by room, publishers first, so subscribers find something to consume.
    const progress = createProgress(expectedTracks(config), planned.length);
    const joins: Array<Promise<void>> = [];
    const rampGapMs = 1000 / config.ramp_peers_per_s;
    const rampStart = performance.now();
    const join = async (p: PlannedPeer): Promise<void> => {
      const first = firstTokens.get(p.room)!;
      try {
        const { signalingUrl, token } = p.index === 0 ? first : await api.join(first.callId, p.token).then((a) => ({ signalingUrl: a.signaling_url, token: a.signaling_token }));
        const plan: PeerPlan = { signalingUrl, token, label: `room ${p.room} peer ${p.index}`, publish: { audio: p.publisher && kinds.includes('audio'), video: p.publisher && kinds.includes('video') } };
        peers.push(await SimulatedPeer.join(engine, plan));
      } catch (error) {
        failed += 1;
        errors.push(`room ${p.room} peer ${p.index}: ${(error as Error).message}`);
      }
    };
    const snapshots = (): TrackSnapshot[] => peers.flatMap((peer) => [...peer.received.values()].map((c) => c.snapshot()));
    let last = { expected: 0, lost: 0 };
    const tick = async (): Promise<void> => {
      await Promise.all(peers.map((p) => p.refresh().catch(() => undefined)));
      const tracks = snapshots();
      const expected = tracks.reduce((s, t) => s + t.expected, 0);
      const lost = tracks.reduce((s, t) => s + t.lost, 0);
      const lossPct = expected > last.expected ? ((lost - last.lost) / (expected - last.expected)) * 100 : 0;
      last = { expected, lost };
      progress.update({ joined: peers.length, failed, received: tracks.filter(isReceived).length, lossPct: Math.max(0, lossPct) });
    };
    const ticker = setInterval(() => void tick(), TICK_MS);
    try {
      for (const [i, p] of planned.entries()) {
        if (signal.aborted) break;
        const due = rampStart + i * rampGapMs;
        const wait = due - performance.now();
        if (wait > 0) await abortableSleep(wait, signal);
        joins.push(join(p));
      }
      await Promise.all(joins);
      // Measured from here: the server's figures cover the steady load, not the ramp.
      const metricsStart = sampleMetrics(await api.metrics(), performance.now());
      const windowStart = performance.now();
      const cpuAtWindow = process.cpuUsage();
      const packetsAtWindow = snapshots().reduce((sum, t) => sum + t.packets, 0);
      await abortableSleep(config.duration_s * 1000, signal);
      await tick();
      const metricsEnd = sampleMetrics(await api.metrics(), performance.now());
      const durationS = round((performance.now() - windowStart) / 1000, 1);
      const tracks = snapshots();
      for (const peer of peers) errors.push(...peer.errors);
      const cpu = process.cpuUsage(cpuAtWindow);
      const windowMs = performance.now() - windowStart;
      const report: LoadtestReport = {
        config,
        started_at: startedAt.toISOString(),
        duration_s: durationS,
        peers: { expected: planned.length, joined: peers.length, failed },
        join_ms: {
          p50: percentile(peers.map((p) => p.joinMs ?? 0), 50),
          p95: percentile(peers.map((p) => p.joinMs ?? 0), 95),
          p99: percentile(peers.map((p) => p.joinMs ?? 0), 99),
        },
        tracks: { expected: expectedTracks(config), received: tracks.filter(isReceived).length, received_pct: 0 },
        ...trackFigures(tracks),
        received_packets_per_s: round((tracks.reduce((sum, t) => sum + t.packets, 0) - packetsAtWindow) / (windowMs / 1000), 0),
        server: serverFigures(metricsStart, metricsEnd),
        load_tester: { cpu_pct: round(((cpu.user + cpu.system) / 1000 / windowMs) * 100, 1), rss_mb: round(process.memoryUsage().rss / 2 ** 20, 1) },
        errors: [...new Set(errors)].slice(0, 50),
        interrupted: signal.aborted,
      };
      report.tracks.received_pct = report.tracks.expected ? round((report.tracks.received / report.tracks.expected) * 100, 1) : 0;
      return report;
    } finally {
      clearInterval(ticker);
      progress.stop();
    }
  } finally {
    await Promise.all(peers.map((p) => p.close().catch(() => undefined)));
    for (const callId of calls) await api.endCall(callId).catch((error: unknown) => errors.push(`ending call ${callId}: ${(error as Error).message}`));
    for (const roomId of rooms) await api.deleteRoom(roomId).catch((error: unknown) => errors.push(`deleting room ${roomId}: ${(error as Error).message}`));
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
