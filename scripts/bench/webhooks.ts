// Webhook delivery (docs/webhooks.md) against a local receiver, outside tap: a throwaway server
// (embedded PostgreSQL, one media worker), one endpoint, a receiver answering 204 at once.
//
//   node --import tsx scripts/bench/webhooks.ts [--calls 200] [--events 20] [--live 300]
//
// 1. backlog: --calls room calls, then --events events recorded per call through the outbox as
//    fast as the database takes them (recorded per second), while the receiver holds its answers;
//    then it answers: events per second delivered, from the release to the last acknowledgement,
//    with one call's events strictly in order and calls in parallel.
// 2. live: --live room calls initiated and ended over REST one after another (2 events each, plus
//    the participants' events): the added latency from an event's record to its acknowledged
//    delivery, p50/p99 (same clock on both sides: this process).
// Prints one JSON line.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config/load.ts';
import { SqlJobQueue } from '../../src/jobs/index.ts';
import { startServer } from '../../src/main.ts';
import { WebhookOutbox } from '../../src/webhooks/index.ts';
import { freePortBase, freeTcpPort } from '../../test/helpers/ports.ts';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '200' }, events: { type: 'string', default: '20' }, live: { type: 'string', default: '300' } } });
const CALLS = Number(values.calls);
const EVENTS = Number(values.events);
const LIVE = Number(values.live);


const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

// The receiver: records arrival time and the event's recorded timestamp; answers 204.
const arrivals: Array<{ id: string; callId: string; seq: number | null; recordedAt: number; at: number }> = [];
let onArrival: () => void = () => undefined;
let release: () => void = () => undefined;
let gate = new Promise<void>((resolve) => (release = resolve));
const receiver = createHttpServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', async () => {
    await gate;
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { timestamp: string; data: { call_id: string; n?: number } };
    arrivals.push({ id: String(req.headers['webhook-id']), callId: body.data.call_id, seq: body.data.n ?? null, recordedAt: Date.parse(body.timestamp), at: Date.now() });
    res.statusCode = 204;
    res.end();
    onArrival();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks`;
const waitForArrivals = (count: number) =>
  new Promise<void>((resolve) => {
    onArrival = () => arrivals.length >= count && resolve();
    onArrival();
  });

const dataDir = mkdtempSync(join(tmpdir(), 'callplane-webhooks-bench-'));
const config = loadConfig({
  env: {},
  overrides: {
    data_dir: dataDir,
    log: { level: process.env.CALLPLANE_BENCH_LOG_LEVEL ?? 'silent', pretty: false },
    http: { host: '127.0.0.1', port: 0 },
    database: { embedded_port: await freeTcpPort(), pool_size: 10 },
    media: { workers: 1, listen_ip: '127.0.0.1', port_base: await freePortBase(1) },
    auth: { api_key: 'bench-api-key-0123456789' },
    rate_limits: { enabled: false },
    webhooks: { allow_private_targets: true, attempt_timeout_ms: 60_000 },
  },
});
const server = await startServer(config);
const { ctx } = server;
const api = async (path: string, init: { method?: string; body?: unknown; token?: string; apiKey?: boolean } = {}) => {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.apiKey) headers['x-api-key'] = config.auth.api_key!;
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const response = await fetch(`${server.baseUrl}${path}`, { method: init.method ?? 'GET', headers, ...(init.body ? { body: JSON.stringify(init.body) } : {}) });
  return (await response.json().catch(() => ({}))) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
};

try {
  const user = (await api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Bench', role: 'user' } })).user;
  const token = (await api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: user.id, ttl_seconds: 86400 } })).access_token;
  const room = (await api('/v1/rooms', { method: 'POST', token, body: { name: 'Bench', members: [] } })).room;
  const roomCall = async () => {
    const call = (await api('/v1/calls/initiate', { method: 'POST', token, body: { room_id: room.id, type: 'audio' } })).call;
    await api(`/v1/calls/${call.id}/end`, { method: 'POST', token, body: {} });
    return call.id as string;
  };

  // Calls to hang the backlog's events on, before the endpoint exists (their own events are not sent).
  const callIds: string[] = [];
  for (let i = 0; i < CALLS; i += 1) callIds.push(await roomCall());
  await api('/v1/webhook-endpoints', { method: 'POST', apiKey: true, body: { url: receiverUrl } });

  // 1. backlog
  const outbox = new WebhookOutbox({ clock: ctx.clock, jobs: new SqlJobQueue(), logger: ctx.logger, maxBodyBytes: 65536 });
  const backlogStart = Date.now();
  const producers = Array.from({ length: 4 }, async (_, worker) => {
    for (let n = 0; n < EVENTS; n += 1) {
      for (let c = worker; c < callIds.length; c += 4) {
        const callId = callIds[c]!;
        await ctx.db.transaction().execute((tx) =>
          outbox.record(tx, { type: 'track.published', data: { call_id: callId, participant_id: 'p', user_id: user.id, role: 'member', track_id: `t${n}`, kind: 'audio', source: 'microphone', n } as never }),
        );
      }
    }
  });
  await Promise.all(producers);
  const recordedIn = (Date.now() - backlogStart) / 1000;
  const total = CALLS * EVENTS;
  const releasedAt = Date.now();
  release();
  gate = Promise.resolve();
  await waitForArrivals(total);
  const drainedIn = (Math.max(...arrivals.map((a) => a.at)) - releasedAt) / 1000;
  const inOrder = callIds.every((callId) => {
    const seqs = arrivals.filter((a) => a.callId === callId).map((a) => a.seq);
    return seqs.every((s, i) => s === i);
  });

  // 2. live
  const before = arrivals.length;
  const liveStart = Date.now();
  for (let i = 0; i < LIVE; i += 1) await roomCall();
  const liveSeconds = (Date.now() - liveStart) / 1000;
  await waitForArrivals(before + LIVE * 2);
  const latencies = arrivals
    .slice(before)
    .map((a) => a.at - a.recordedAt)
    .sort((a, b) => a - b);

  console.log(
    JSON.stringify({
      backlog: { calls: CALLS, events: total, recorded_per_s: Math.round(total / recordedIn), delivered_per_s: Math.round(total / drainedIn), drained_s: Number(drainedIn.toFixed(1)), in_order_per_call: inOrder },
      live: { calls: LIVE, events: latencies.length, calls_per_s: Number((LIVE / liveSeconds).toFixed(1)), latency_ms: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) } },
      concurrency: config.webhooks.concurrency,
      per_endpoint: config.webhooks.concurrency_per_endpoint,
    }),
  );
} finally {
  await server.stop();
  receiver.close();
  rmSync(dataDir, { recursive: true, force: true });
}
