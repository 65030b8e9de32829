/* eslint-disable @typescript-eslint/no-explicit-any -- JSON read off the wire */
// Chat benchmarks (docs/benchmarks.md, "Chat"), against a server process of its own on an embedded
// PostgreSQL that this script starts (so it can write test data straight into the database):
//
//   node --import tsx scripts/bench/chat.ts [--followers 10000] [--rate 1000] [--seconds 10] [--conversations 50] [--idle 5000]
//
// 1. broadcast: a host with --followers followers (written with SQL) broadcasts; measured from the
//    request until every follower's message is stored (the job's completed_at), at the default
//    chat.broadcast_batch_size.
// 2. latency: the host sends over REST at --rate messages/s for --seconds, round-robin over
//    --conversations conversations whose other participants each hold a chat socket; each message
//    is timed from the moment its POST is sent until its new_message frame arrives on the
//    recipient's socket. Prints p50/p99/max and the rate achieved.
// 3. idle sockets: opens --idle chat sockets (one user each) and reads the server's RSS before and
//    after, from /proc: sockets per GB of RSS.
// Prints human lines and a final JSON line. Benchmarks measure; nothing fails on a number.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ulid } from 'ulid';
import WebSocket from 'ws';
import { createDatabase } from '../../src/db/database.ts';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { freePortBase, freeTcpPort } from '../../test/helpers/ports.ts';

const { values } = parseArgs({
  options: {
    followers: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    conversations: { type: 'string', default: '50' },
    idle: { type: 'string', default: '5000' },
  },
});
const FOLLOWERS = Number(values.followers);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const CONVERSATIONS = Number(values.conversations);
const IDLE = Number(values.idle);
const API_KEY = 'bench-api-key-0123456789';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


const dir = mkdtempSync(join(tmpdir(), 'callplane-bench-chat-'));
chmodSync(dir, 0o755); // as root, PostgreSQL runs as the postgres user, which must reach its directory
const embedded = await startEmbeddedPostgres(join(dir, 'pg'), await freeTcpPort(), silentLogger());
const db = createDatabase(embedded.url, 4);
const httpPort = await freeTcpPort();
const base = `http://127.0.0.1:${httpPort}`;
const child = spawn(process.execPath, ['bin/callplane.js', 'serve'], {
  env: {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    DATABASE_URL: embedded.url,
    CALLPLANE_DATA_DIR: join(dir, 'data'),
    CALLPLANE_HTTP_HOST: '127.0.0.1',
    CALLPLANE_HTTP_PORT: String(httpPort),
    CALLPLANE_API_KEY: API_KEY,
    CALLPLANE_MEDIA_WORKERS: '1',
    CALLPLANE_MEDIA_LISTEN_IP: '127.0.0.1',
    CALLPLANE_MEDIA_PORT_BASE: String(await freePortBase(1)),
    CALLPLANE_RATE_LIMITS_ENABLED: 'false',
    CALLPLANE_DEMO_ENABLED: 'false',
    CALLPLANE_LOG_LEVEL: 'warn',
    CALLPLANE_LOG_PRETTY: 'false',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const cleanup = async () => {
  if (child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  await db.destroy();
  await embedded.stop();
  rmSync(dir, { recursive: true, force: true });
};

async function api(path: string, init: { method?: string; body?: unknown; token?: string; apiKey?: boolean } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.apiKey) headers['x-api-key'] = API_KEY;
  const res = await fetch(`${base}${path}`, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
async function account(role: 'user' | 'host', name: string): Promise<{ id: string; token: string }> {
  const user = await api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: name, role } });
  const token = await api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: user.body.user.id, ttl_seconds: 86400 } });
  return { id: user.body.user.id, token: token.body.access_token };
}
async function insertUsers(count: number, prefix: string): Promise<string[]> {
  const ids = Array.from({ length: count }, () => ulid());
  for (let i = 0; i < count; i += 1000) {
    await db.insertInto('users').values(ids.slice(i, i + 1000).map((id, j) => ({ id, role: 'user' as const, display_name: `${prefix} ${i + j}`, privacy_mode: 0, updated_at: new Date() }))).execute();
  }
  return ids;
}
const rssBytes = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) * 1024;
const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

function chatSocket(token: string, onFrame?: (frame: any) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/chat/ws?token=${token}`);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    if (onFrame) ws.on('message', (raw) => onFrame(JSON.parse(String(raw))));
  });
}

try {
  for (let started = Date.now(); ; await sleep(200)) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode})`);
    if ((await fetch(`${base}/readyz`).then((r) => r.status).catch(() => 0)) === 200) break;
    if (Date.now() - started > 120_000) throw new Error('server not ready in 120 s');
  }
  const result: Record<string, unknown> = { rssAtStartMb: round(rssBytes() / 2 ** 20) };

  // 1. Broadcast.
  const host = await account('host', 'Bench Host');
  const followers = await insertUsers(FOLLOWERS, 'Follower');
  for (let i = 0; i < FOLLOWERS; i += 1000) await db.insertInto('chat_follows').values(followers.slice(i, i + 1000).map((id) => ({ host_id: host.id, user_id: id }))).execute();
  const t0 = performance.now();
  const accepted = await api('/v1/chat/broadcast', { method: 'POST', token: host.token, body: { body: 'Available for sessions this afternoon!' } });
  const answeredMs = performance.now() - t0;
  for (;;) {
    const row = await db.selectFrom('chat_broadcasts').select('completed_at').where('id', '=', accepted.body.broadcast.id).executeTakeFirstOrThrow();
    if (row.completed_at) break;
    await sleep(20);
  }
  const broadcastMs = performance.now() - t0;
  result.broadcast = { followers: FOLLOWERS, answeredMs: round(answeredMs), completedMs: Math.round(broadcastMs), messagesPerSecond: Math.round(FOLLOWERS / (broadcastMs / 1000)) };
  console.log(`broadcast: ${FOLLOWERS} followers, 201 after ${round(answeredMs)} ms, all delivered after ${Math.round(broadcastMs)} ms (${Math.round(FOLLOWERS / (broadcastMs / 1000))} messages/s)`);

  // 2. REST send → WS delivery latency.
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const receivers = await Promise.all(Array.from({ length: CONVERSATIONS }, (_, i) => account('user', `Reader ${i}`)));
  const conversations: string[] = [];
  for (const reader of receivers) {
    conversations.push((await api('/v1/chat/conversations', { method: 'POST', token: host.token, body: { user_id: reader.id } })).body.id);
    await chatSocket(reader.token, (frame) => {
      if (frame.type !== 'new_message') return;
      const at = sentAt.get(frame.message.body);
      if (at !== undefined) latencies.push(performance.now() - at);
    });
  }
  // Unloaded: one message at a time.
  const unloaded: number[] = [];
  for (let i = 0; i < 200; i += 1) {
    const body = `warm${i}`;
    const at = performance.now();
    sentAt.set(body, at);
    const before = latencies.length;
    await api(`/v1/chat/conversations/${conversations[i % CONVERSATIONS]}/messages`, { method: 'POST', token: host.token, body: { body } });
    while (latencies.length === before) await sleep(1);
    unloaded.push(latencies.at(-1)!);
  }
  latencies.length = 0;
  const unloadedSorted = [...unloaded].sort((a, b) => a - b);
  result.unloaded = { messages: unloaded.length, wsP50Ms: round(percentile(unloadedSorted, 50)), wsP99Ms: round(percentile(unloadedSorted, 99)) };
  console.log(`unloaded: ${unloaded.length} messages one at a time, REST → WS p50 ${round(percentile(unloadedSorted, 50))} ms, p99 ${round(percentile(unloadedSorted, 99))} ms`);

  const total = RATE * SECONDS;
  const restMs: number[] = [];
  let failures = 0;
  const errors = new Map<string, number>();
  const sends: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i += 1) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const body = `m${i}`;
    const at = performance.now();
    sentAt.set(body, at);
    sends.push(
      api(`/v1/chat/conversations/${conversations[i % CONVERSATIONS]}/messages`, { method: 'POST', token: host.token, body: { body } }).then(
        (res) => {
          if (res.status !== 201) {
            failures += 1;
            const key = `${res.status} ${res.body?.error?.code ?? ''}`.trim();
            errors.set(key, (errors.get(key) ?? 0) + 1);
          }
          restMs.push(performance.now() - at);
        },
        (error: Error) => {
          failures += 1;
          errors.set(String((error.cause as Error | undefined)?.message ?? error.message), (errors.get(String((error.cause as Error | undefined)?.message ?? error.message)) ?? 0) + 1);
        },
      ),
    );
  }
  const sendingSeconds = (performance.now() - start) / 1000;
  await Promise.all(sends);
  for (let waited = 0; latencies.length < total - failures && waited < 30_000; waited += 50) await sleep(50);
  const sorted = [...latencies].sort((a, b) => a - b);
  const restSorted = [...restMs].sort((a, b) => a - b);
  result.latency = {
    targetRate: RATE,
    achievedSendRate: Math.round(total / sendingSeconds),
    messages: total,
    delivered: latencies.length,
    failures,
    errors: Object.fromEntries(errors),
    wsP50Ms: round(percentile(sorted, 50)),
    wsP99Ms: round(percentile(sorted, 99)),
    wsMaxMs: round(sorted.at(-1)!),
    restP50Ms: round(percentile(restSorted, 50)),
    restP99Ms: round(percentile(restSorted, 99)),
  };
  console.log(`latency: ${total} messages at ${RATE}/s (sent at ${Math.round(total / sendingSeconds)}/s), ${latencies.length} delivered, ${failures} failed; REST → WS p50 ${round(percentile(sorted, 50))} ms, p99 ${round(percentile(sorted, 99))} ms, max ${round(sorted.at(-1)!)} ms`);

  // 3. Idle sockets per GB of RSS.
  const idleUsers = await insertUsers(IDLE, 'Idle');
  const tokens: string[] = [];
  for (const id of idleUsers) tokens.push((await api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: id, ttl_seconds: 86400 } })).body.access_token);
  await sleep(2000); // let the latency run's garbage settle before the baseline
  const before = rssBytes();
  const idle: WebSocket[] = [];
  for (let i = 0; i < IDLE; i += 100) idle.push(...(await Promise.all(tokens.slice(i, i + 100).map((token) => chatSocket(token)))));
  await sleep(3000); // authentication finishes after open: wait for the server to settle
  const after = rssBytes();
  const perSocket = (after - before) / IDLE;
  result.idle = { sockets: IDLE, rssBeforeMb: round(before / 2 ** 20), rssAfterMb: round(after / 2 ** 20), bytesPerSocket: Math.round(perSocket), socketsPerGb: Math.round(2 ** 30 / perSocket) };
  console.log(`idle: ${IDLE} chat sockets, RSS ${round(before / 2 ** 20)} → ${round(after / 2 ** 20)} MiB, ${Math.round(perSocket)} bytes each, ${Math.round(2 ** 30 / perSocket)} sockets per GiB`);
  for (const ws of idle) ws.terminate();
  console.log(JSON.stringify(result));
} finally {
  await cleanup();
}
process.exit(0);
