/**
 * Chaos (issue 4's key test): paid calls driven by real WebRTC peers against a callplane server
 * process that is SIGKILLed at chosen instants (during initiate, while a hold is being placed, while
 * a capture is being made, during end) and restarted each time. Payments go through the official
 * Stripe SDK to the Stripe-compatible test server in this process, whose records are the judge:
 *   - every hold ends captured or released, exactly once; no capture is made twice;
 *   - every call's captures sum to ⌈active seconds / 60⌉ × rate (active seconds as the server billed them);
 *   - nothing is left pending or failed.
 * The server runs on a scaled clock (×60: a 1-minute window lasts 1 s) so calls cross windows quickly.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import { createDatabase } from '../../src/db/database.ts';
import type { BillingSnapshot } from '../../src/billing/index.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { freePortBase } from '../helpers/ports.ts';
import { NodePeer } from '../helpers/node-peer.ts';
import { startStripeServer } from '../stripe-server/server.ts';

// The whole run takes about two minutes here; more under a loaded suite.
t.setTimeout(480_000);
const CALLS = Number(process.env.CALLPLANE_TEST_CHAOS_CALLS ?? 50);
const CONCURRENCY = 4;
const SCALE = 60;
const RATE = '1.00';
const RATE_MINOR = 100;
const API_KEY = 'chaos-api-key-0123456789';

// Seeded so a failing run can be repeated (CALLPLANE_TEST_CHAOS_SEED).
let seed = Number(process.env.CALLPLANE_TEST_CHAOS_SEED ?? Date.now() % 100_000);
t.comment(`chaos seed ${seed}`);
function random(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
const between = (min: number, max: number): number => min + random() * (max - min);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const stripe = await startStripeServer({ secretKey: 'sk_test_chaos_0123456789', webhookSecret: 'whsec_chaos_0123456789' });
t.teardown(() => stripe.close());
const databaseUrl = await createTestDatabase(t);
const db = createDatabase(databaseUrl, 2);
t.teardown(() => db.destroy());
const dataDir = mkdtempSync(join(tmpdir(), 'callplane-chaos-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
const httpPort = await freePortBase(1);
const mediaPort = await freePortBase(1);
const baseUrl = `http://127.0.0.1:${httpPort}`;

// A clean environment: the test runner's NODE_OPTIONS (loaders, coverage hooks) must not reach the server.
const env: NodeJS.ProcessEnv = {
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '/root',
  DATABASE_URL: databaseUrl,
  CALLPLANE_DATA_DIR: dataDir,
  CALLPLANE_HTTP_HOST: '127.0.0.1',
  CALLPLANE_HTTP_PORT: String(httpPort),
  CALLPLANE_API_KEY: API_KEY,
  CALLPLANE_MEDIA_WORKERS: '1',
  CALLPLANE_MEDIA_LISTEN_IP: '127.0.0.1',
  CALLPLANE_MEDIA_PORT_BASE: String(mediaPort),
  CALLPLANE_PAYMENTS: 'stripe',
  STRIPE_SECRET_KEY: stripe.secretKey,
  CALLPLANE_PAYMENTS_STRIPE_API_BASE: stripe.url,
  CALLPLANE_PAYMENTS_STRIPE_TIMEOUT_MS: '3000',
  CALLPLANE_PAYMENTS_JOIN_TIMEOUT_SECONDS: '90',
  CALLPLANE_PAYMENTS_MEDIA_GRACE_SECONDS: '30',
  CALLPLANE_CLOCK_SCALE: String(SCALE),
  CALLPLANE_CLOCK_ANCHOR: new Date().toISOString(),
  CALLPLANE_JOBS_POLL_INTERVAL_MS: '100',
  CALLPLANE_RATE_LIMITS_ENABLED: 'false',
  CALLPLANE_DEMO_ENABLED: 'false',
  CALLPLANE_LOG_LEVEL: process.env.CALLPLANE_TEST_LOG_LEVEL ?? 'warn',
  CALLPLANE_LOG_PRETTY: 'false',
};

// ---- the server process -----------------------------------------------------------------------

let server: ChildProcess | null = null;

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function startServer(): Promise<void> {
  const child = spawn(process.execPath, ['bin/callplane.js', 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + String(chunk)).slice(-4000)));
  server = child;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited at start (${child.exitCode}): ${stderr}`);
    try {
      const ready = await fetch(`${baseUrl}/readyz`);
      if (ready.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server not ready in 60 s: ${stderr}`);
    await sleep(100);
  }
}

async function killServer(): Promise<void> {
  const child = server!;
  const workers = childPids(child.pid!);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  // The media workers notice their parent is gone; their ports must be free before the next start.
  while (workers.some(alive)) await sleep(20);
  server = null;
}

// A timed-out or interrupted test must not leave a server running: kill it on the way out, whatever ends us.
const killOnExit = (): void => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
};
process.once('exit', killOnExit);
for (const signal of ['SIGALRM', 'SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killOnExit();
    process.exit(1);
  });
}

t.teardown(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
});

// ---- HTTP that survives restarts ----------------------------------------------------------------

/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are read field by field */
async function api(path: string, init: { method?: string; body?: unknown; token?: string; apiKey?: boolean; key?: string } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.apiKey) headers['x-api-key'] = API_KEY;
  if (init.key) headers['x-idempotency-key'] = init.key;
  const response = await fetch(`${baseUrl}${path}`, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** Repeats a request (same idempotency key) through crashes and restarts until it gets a final answer. */
async function persist(path: string, init: Parameters<typeof api>[1], retryOn: (status: number, body: any) => boolean = () => false): Promise<{ status: number; body: any }> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      const answer = await api(path, init);
      const transient = answer.status >= 500 || answer.body?.error?.code === 'request_in_progress' || retryOn(answer.status, answer.body);
      if (!transient || Date.now() > deadline) return answer;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await sleep(150);
  }
}
/* eslint-enable @typescript-eslint/no-explicit-any */

// ---- the run ------------------------------------------------------------------------------------

await startServer();
const hostUser = (await api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Chaos Host', role: 'host' } })).body.user;
const hostToken = (await api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: hostUser.id, ttl_seconds: 86400 } })).body.access_token as string;
const shortCode = (await api('/v1/links', { method: 'POST', token: hostToken, body: { rate_per_minute: RATE, currency: 'usd', window_size_minutes: 1 } })).body.link.short_code as string;

// The host stays available: its user socket is reopened whenever the server comes back.
let running = true;
let hostSocket: WebSocket | null = null;
const hostSocketLoop = (async () => {
  while (running) {
    const ws = new WebSocket(`${baseUrl.replace('http', 'ws')}/v1/ws?token=${hostToken}`);
    hostSocket = ws;
    ws.on('error', () => undefined);
    await new Promise((resolve) => ws.once('close', resolve).once('unexpected-response', resolve));
    if (running) await sleep(100);
  }
})();
t.teardown(async () => {
  running = false;
  hostSocket?.terminate();
  await hostSocketLoop.catch(() => undefined);
});

const inFlight = { initiate: 0, end: 0 };
const outcome = { completed: 0, cancelled: 0, declined: 0, gaveUp: 0, mediaActive: 0 };
const callIds = new Set<string>();

const trace = (message: string): void => {
  if (process.env.CALLPLANE_TEST_CHAOS_TRACE) process.stderr.write(`[chaos ${((Date.now() - traceStart) / 1000).toFixed(1)}s] ${message}\n`);
};
const traceStart = Date.now();

async function driveCall(n: number): Promise<void> {
  trace(`call ${n}: start`);
  const guest = (await persist(`/v1/links/${shortCode}/guest`, { method: 'POST', body: { guest_name: `Guest ${n}` } })).body;
  inFlight.initiate += 1;
  let initiated;
  try {
    initiated = await persist('/v1/calls/initiate', { method: 'POST', token: guest.access_token, key: `chaos-initiate-${n}`, body: { short_code: shortCode, payment_method_id: 'pm_card_visa' } }, (status, body) =>
      status === 503 && body?.error?.code === 'host_unavailable',
    );
  } finally {
    inFlight.initiate -= 1;
  }
  if (initiated.status !== 201) {
    outcome.gaveUp += 1;
    return;
  }
  const callId: string = initiated.body.call.id;
  callIds.add(callId);
  trace(`call ${n}: initiated ${callId}`);
  const peers: NodePeer[] = [];
  try {
    const joined = await persist(`/v1/calls/${callId}/join`, { method: 'POST', token: hostToken });
    if (joined.status === 200) {
      const guestToken = await persist(`/v1/calls/${callId}/token`, { method: 'POST', token: guest.access_token });
      if (guestToken.status === 200) {
        for (const answer of [joined.body, guestToken.body]) {
          try {
            peers.push(await NodePeer.connect({ signalingUrl: answer.signaling_url, token: answer.signaling_token, produce: { audio: true }, consume: false, timeoutMs: 8000 }));
          } catch {
            break; // the server went away mid set-up: end the call below
          }
        }
      }
    }
    trace(`call ${n}: ${peers.length} peers connected`);
    if (peers.length === 2) {
      outcome.mediaActive += 1;
      // Talk for 0.5–5 minutes of call time, unless the server dies first (the peers' sockets close).
      await Promise.race([sleep(between(500, 5000)), ...peers.map((peer) => peer.closed)]);
    }
  } finally {
    await Promise.all(peers.map((peer) => peer.close().catch(() => undefined)));
  }
  trace(`call ${n}: ending`);
  inFlight.end += 1;
  try {
    const ended = await persist(`/v1/calls/${callId}/end`, { method: 'POST', token: n % 2 ? hostToken : guest.access_token, key: `chaos-end-${n}`, body: {} });
    if (ended.status === 200 && ended.body.call.status === 'completed') outcome.completed += 1;
    else if (ended.status === 200 && ended.body.call.status === 'cancelled') outcome.cancelled += 1;
    trace(`call ${n}: end → ${ended.status} ${ended.body?.call?.status ?? ended.body?.error?.code}`);
  } finally {
    inFlight.end -= 1;
  }
}

type Target = 'initiate' | 'hold' | 'capture' | 'end';
const kills: Array<{ target: Target; hit: boolean }> = [];
const TARGETS: Target[] = ['initiate', 'hold', 'capture', 'end'];

/** Resolves when the instant of `target` comes (or after `ms`): true if it came. */
async function instantOf(target: Target, ms: number): Promise<boolean> {
  const after = stripe.state.calls.length ? stripe.state.calls.at(-1)!.seq : 0;
  const timeout = sleep(ms).then(() => false);
  if (target === 'hold' || target === 'capture') {
    const pattern = target === 'hold' ? /^\/v1\/payment_intents$/ : /\/capture$/;
    return Promise.race([stripe.state.waitForCall((call) => call.seq > after && call.method === 'POST' && pattern.test(call.path)).then(() => true), timeout]);
  }
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (inFlight[target] > 0) {
      await sleep(between(0, 15));
      return true;
    }
    await sleep(5);
  }
  return false;
}

let driversDone = false;
const killer = (async () => {
  let i = 0;
  while (!driversDone) {
    await sleep(between(1500, 3500));
    if (driversDone) break;
    const target = TARGETS[i++ % TARGETS.length]!;
    const hit = await instantOf(target, 3000);
    if (driversDone) break;
    await killServer();
    kills.push({ target, hit });
    trace(`killed (${target}, ${hit ? 'hit' : 'missed'})`);
    await startServer();
    trace('restarted');
  }
})();

const started = Date.now();
let next = 0;
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < CALLS) await driveCall(next++);
  }),
);
driversDone = true;
await killer;
const driveSeconds = (Date.now() - started) / 1000;

// Every call reaches a terminal state (join timeouts and media-loss grace run on the server's jobs).
const TERMINAL = ['completed', 'cancelled', 'failed'];
const settleDeadline = Date.now() + 60_000;
let rows = await db.selectFrom('call_billing').select(['call_id', 'state', 'snapshot']).execute();
while (rows.some((row) => !TERMINAL.includes(row.state)) && Date.now() < settleDeadline) {
  await sleep(250);
  rows = await db.selectFrom('call_billing').select(['call_id', 'state', 'snapshot']).execute();
}
const pendingOps = await db.selectFrom('payment_ops').select(['idempotency_key', 'status', 'last_error']).where('status', '!=', 'done').execute();

t.test('chaos: the server was killed at every kind of instant and calls were driven through it', async (t) => {
  t.ok(rows.length >= CALLS, `${rows.length} paid calls were created for ${CALLS} driven`);
  for (const target of TARGETS) t.ok(kills.some((k) => k.target === target && k.hit), `at least one kill ${target === 'end' || target === 'initiate' ? 'during' : 'while making a'} ${target}`);
  t.ok(outcome.mediaActive >= CALLS / 2, `${outcome.mediaActive} calls had both peers connected through the SFU`);
});

t.test('chaos: every call is terminal, every payment operation answered, none failed', async (t) => {
  t.same(rows.filter((row) => !TERMINAL.includes(row.state)).map((row) => `${row.call_id}:${row.state}`), [], 'no call left pending/waiting/active/ending');
  t.same(rows.filter((row) => row.state === 'failed').map((row) => row.call_id), [], 'no call failed');
  t.same(pendingOps, [], 'no payment operation left pending or failed');
});

t.test('chaos: every hold is captured or released exactly once; no capture twice', async (t) => {
  const intents = [...stripe.state.paymentIntents.values()];
  t.ok(intents.length >= outcome.completed, `${intents.length} holds placed`);
  const unsettled = intents.filter((pi) => pi.status !== 'succeeded' && pi.status !== 'canceled').map((pi) => `${pi.id}:${pi.status}`);
  t.same(unsettled, [], 'no hold left authorised');
  const twice = intents.filter((pi) => stripe.state.historyOf(pi.id, 'capture').length + stripe.state.historyOf(pi.id, 'cancel').length !== 1).map((pi) => pi.id);
  t.same(twice, [], 'each hold has exactly one capture or one cancel in its history');
  const creates = stripe.state.calls.filter((call) => call.method === 'POST' && call.path === '/v1/payment_intents' && call.status === 200 && !call.replayed);
  t.equal(new Set(creates.map((call) => call.idempotencyKey)).size, creates.length, 'no idempotency key created two holds');
  t.equal(stripe.state.internalErrors.length, 0, 'the Stripe test server saw no malformed request');
});

t.test('chaos: every call\'s captures sum to ⌈active seconds / 60⌉ × rate', async (t) => {
  const capturedByCall = new Map<string, number>();
  for (const pi of stripe.state.paymentIntents.values()) {
    const callId = pi.metadata.call_id!;
    capturedByCall.set(callId, (capturedByCall.get(callId) ?? 0) + pi.amount_received);
  }
  const wrong: string[] = [];
  let activeSecondsTotal = 0;
  for (const row of rows) {
    const s = row.snapshot as BillingSnapshot;
    const captured = capturedByCall.get(row.call_id) ?? 0;
    const activeSeconds = s.settlement?.activeSeconds ?? 0;
    activeSecondsTotal += activeSeconds;
    const expected = Math.ceil(activeSeconds / 60) * RATE_MINOR;
    if (captured !== expected || s.totalChargedMinor !== expected) wrong.push(`${row.call_id} ${s.state}: captured ${captured}, recorded ${s.totalChargedMinor}, expected ${expected} for ${activeSeconds} s`);
  }
  t.same(wrong, [], 'captured = recorded = ⌈active seconds / 60⌉ × rate for every call');
  const byState = (state: string) => rows.filter((row) => row.state === state).length;
  const intents = [...stripe.state.paymentIntents.values()];
  t.comment(
    `chaos counts: ${rows.length} calls (${byState('completed')} completed, ${byState('cancelled')} cancelled, ${byState('failed')} failed) in ${driveSeconds.toFixed(0)} s; ` +
      `${intents.length} holds (${intents.filter((pi) => pi.status === 'succeeded').length} captured, ${intents.filter((pi) => pi.status === 'canceled').length} released); ` +
      `${kills.length} kills (${TARGETS.map((target) => `${target} ${kills.filter((k) => k.target === target && k.hit).length}/${kills.filter((k) => k.target === target).length}`).join(', ')}); ` +
      `${stripe.state.calls.filter((call) => call.replayed).length} idempotent replays; ${(activeSecondsTotal / 60).toFixed(1)} billed call-minutes`,
  );
});
