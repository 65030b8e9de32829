/**
 * Chaos: paid calls driven by real WebRTC peers against a callplane server process that is SIGKILLed at
 * chosen instants and restarted each time, on a scaled clock (×10: a 1-minute window lasts 6 s). Kills
 * land during initiates (retried after the restart with the same key), while a hold is placed, while a
 * window is captured (a boundary falls due), during an end, just before an end (which then reaches the
 * restarted server) and just after one. After a kill the peers of each call either come back (new
 * signaling tokens, new transports) or never do; those that do not are ended later by a participant, or
 * left to the media grace period.
 *
 * Two judges:
 *   - the peers' side: each call's media time as the peers saw it (both sends DTLS-connected, until a
 *     peer's signaling dropped or the end was sent; a gap shorter than the grace period is call time,
 *     a longer one ends the billable time at its start). No call is billed beyond that plus SLACK.
 *   - the Stripe test server: every hold captured or released exactly once, no idempotency key
 *     created two holds, no call has two holds for one window, captures = total_charged =
 *     ⌈duration_seconds / 60⌉ × rate; and one call per initiate.
 * And a webhook receiver (verifying with standardwebhooks) gets, for every paid call, the billing.*
 * events of every hold, capture and release at Stripe and one call.ended with the billing summary:
 * none missing, none out of order per call; duplicates (a kill after a delivery) are counted.
 */
import t from 'tap';
import type { BillingSnapshot } from '../../src/billing/index.ts';
import { NodePeer } from '../helpers/node-peer.ts';
import { keepHostAvailable, startPaidServerProcess, type ApiAnswer, type ApiInit } from '../helpers/server-process.ts';
import { WebhookReceiver, type ReceivedWebhook } from '../helpers/webhook-receiver.ts';

t.setTimeout(480_000);
const CALLS = Number(process.env.CALLPLANE_TEST_CHAOS_CALLS ?? 16);
const CONCURRENCY = 4;
const SCALE = 10;
const RATE = '1.00';
const RATE_MINOR = 100;
/** Call time: long enough for peers to come back after a restart (a few seconds of real time). */
const GRACE_SECONDS = 120;
/**
 * What the server may bill beyond the peers' media time, in call time: the media heartbeat's interval
 * (5 s: after a kill, media is known up to the last beat), 1 s of rounding up to whole seconds, and
 * 100 ms of real time between a peer seeing an instant and the server seeing it (×SCALE).
 */
const SLACK_MS = 5_000 + 1_000 + 100 * SCALE;

// Seeded so a failing run can be repeated (CALLPLANE_TEST_CHAOS_SEED).
let seed = Number(process.env.CALLPLANE_TEST_CHAOS_SEED ?? Date.now() % 100_000);
t.comment(`chaos seed ${seed}`);
function random(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
const between = (min: number, max: number): number => min + random() * (max - min);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const { server, stripe, db, clock } = await startPaidServerProcess(t, {
  scale: SCALE,
  settings: {
    CALLPLANE_PAYMENTS_STRIPE_TIMEOUT_MS: '3000',
    CALLPLANE_PAYMENTS_JOIN_TIMEOUT_SECONDS: '900',
    CALLPLANE_PAYMENTS_MEDIA_GRACE_SECONDS: String(GRACE_SECONDS),
    CALLPLANE_WEBHOOKS_ALLOW_PRIVATE_TARGETS: 'true',
    CALLPLANE_WEBHOOKS_RETRY_INITIAL_MS: '100',
    CALLPLANE_WEBHOOKS_RETRY_MAX_MS: '1000',
  },
});
const receiver = await WebhookReceiver.start();
t.teardown(() => receiver.close());
const BILLING_EVENTS = ['billing.hold_placed', 'billing.hold_failed', 'billing.captured', 'billing.released', 'call.ended'];

const trace = (message: string): void => {
  if (process.env.CALLPLANE_TEST_CHAOS_TRACE) process.stderr.write(`[chaos ${((Date.now() - traceStart) / 1000).toFixed(1)}s] ${message}\n`);
};
const traceStart = Date.now();

/** Every answer a persisted request got: a request_in_progress would mean a crash-cut key blocked its retry. */
const answers: ApiAnswer[] = [];
const persist = (path: string, init: ApiInit, retryOn?: (status: number, body: { error?: { code?: string } }) => boolean) =>
  server.persist(path, init, { onAnswer: (answer) => answers.push(answer), ...(retryOn ? { retryOn } : {}) });

// ---- the run ------------------------------------------------------------------------------------

await server.start();
receiver.secret = (await server.api('/v1/webhook-endpoints', { method: 'POST', apiKey: true, body: { url: receiver.url, events: BILLING_EVENTS } })).body.endpoint.secret;
const hostUser = (await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Chaos Host', role: 'host' } })).body.user;
const hostToken = (await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: hostUser.id, ttl_seconds: 86400 } })).body.access_token as string;
const shortCode = (await server.api('/v1/links', { method: 'POST', token: hostToken, body: { rate_per_minute: RATE, currency: 'usd', window_size_minutes: 1 } })).body.link.short_code as string;

keepHostAvailable(t, server, hostToken);

/** What the peers of one call saw, in call time (the server's clock: same anchor, same scale). */
interface CallRecord {
  n: number;
  guestId: string;
  callId: string | null;
  /** Spans with both peers' send transports DTLS-connected. */
  media: Array<{ from: number; to: number }>;
  endSentAt: number | null;
  /** After a kill: came back, ended while gone, or left to the grace period. */
  afterKill: Array<'back' | 'end-while-gone' | 'abandoned'>;
}
const records: CallRecord[] = [];
const inFlight = { initiate: 0, end: 0, beforeEnd: 0, afterEnd: 0 };
const outcome = { completed: 0, cancelled: 0, gaveUp: 0, mediaActive: 0 };

type Answer = { signaling_url: string; signaling_token: string };

/** Both peers up, or null (the server went away during set-up). Returns when both sends are DTLS-connected. */
async function connectBoth(answers: Answer[]): Promise<NodePeer[] | null> {
  const peers: NodePeer[] = [];
  try {
    for (const answer of answers) peers.push(await NodePeer.connect({ signalingUrl: answer.signaling_url, token: answer.signaling_token, produce: { audio: true }, consume: false, timeoutMs: 8000 }));
    await Promise.all(peers.map((peer) => peer.sendConnected(8000)));
    return peers;
  } catch {
    await Promise.all(peers.map((peer) => peer.close({ leave: false }).catch(() => undefined)));
    return null;
  }
}

/** Fresh signaling tokens for both sides, or null when the call is no longer live. */
async function tokens(callId: string, guestToken: string): Promise<Answer[] | null> {
  const host = await persist(`/v1/calls/${callId}/token`, { method: 'POST', token: hostToken });
  const guest = host.status === 200 ? await persist(`/v1/calls/${callId}/token`, { method: 'POST', token: guestToken }) : host;
  return host.status === 200 && guest.status === 200 ? [host.body, guest.body] : null;
}

async function end(record: CallRecord, token: string, beforeKill: boolean): Promise<void> {
  if (beforeKill) {
    // Announce the end to the killer, give it a moment to strike first: the end then reaches the restarted server.
    inFlight.beforeEnd += 1;
    await sleep(40);
    inFlight.beforeEnd -= 1;
  }
  record.endSentAt = clock.nowMs();
  inFlight.end += 1;
  try {
    const ended = await persist(`/v1/calls/${record.callId}/end`, { method: 'POST', token, key: `chaos-end-${record.n}`, body: {} });
    if (ended.status === 200 && ended.body.call.status === 'completed') outcome.completed += 1;
    else if (ended.status === 200 && ended.body.call.status === 'cancelled') outcome.cancelled += 1;
    trace(`call ${record.n}: end → ${ended.status} ${ended.body?.call?.status ?? ended.body?.error?.code}`);
  } finally {
    inFlight.end -= 1;
  }
  inFlight.afterEnd += 1;
  await sleep(40); // the killer may strike right after an end was answered
  inFlight.afterEnd -= 1;
}

async function driveCall(n: number): Promise<void> {
  const guest = (await persist(`/v1/links/${shortCode}/guest`, { method: 'POST', body: { guest_name: `Guest ${n}` } })).body;
  const record: CallRecord = { n, guestId: guest.user.id, callId: null, media: [], endSentAt: null, afterKill: [] };
  records.push(record);
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
  record.callId = callId;
  const endToken = n % 2 ? hostToken : guest.access_token;
  trace(`call ${n}: initiated ${callId}`);
  const joined = await persist(`/v1/calls/${callId}/join`, { method: 'POST', token: hostToken });
  let answers = joined.status === 200 ? await tokens(callId, guest.access_token) : null;
  let talked = false;
  while (answers) {
    const peers = await connectBoth(answers);
    answers = null;
    if (!peers) break;
    const from = clock.nowMs();
    if (!talked) outcome.mediaActive += 1;
    talked = true;
    // Talk for 20–100 s of call time, unless the server dies first (a peer's signaling socket closes).
    const dropped = await Promise.race([sleep(between(2000, 10_000)).then(() => false), ...peers.map((peer) => peer.closed.then(() => true))]);
    if (!dropped) {
      const beforeKill = random() < 0.5;
      if (!beforeKill) record.media.push({ from, to: clock.nowMs() });
      const ending = end(record, endToken, beforeKill);
      if (beforeKill) {
        // The media span ends with the end request, or with the kill if it came first.
        const raced = await Promise.race([ending.then(() => 'ended'), ...peers.map((peer) => peer.closed.then(() => 'dropped'))]);
        record.media.push({ from, to: raced === 'dropped' ? Math.min(clock.nowMs(), record.endSentAt ?? clock.nowMs()) : record.endSentAt! });
      }
      await ending;
      await Promise.all(peers.map((peer) => peer.close().catch(() => undefined)));
      return;
    }
    record.media.push({ from, to: clock.nowMs() });
    await Promise.all(peers.map((peer) => peer.close({ leave: false }).catch(() => undefined)));
    const choice = random();
    if (choice < 0.5) {
      record.afterKill.push('back');
      trace(`call ${n}: media dropped, coming back`);
      answers = await tokens(callId, guest.access_token);
    } else if (choice < 0.8) {
      record.afterKill.push('end-while-gone');
      await sleep(between(0, 4000));
      await end(record, endToken, false);
      return;
    } else {
      record.afterKill.push('abandoned'); // the grace period ends it
      return;
    }
  }
  if (record.endSentAt === null) await end(record, endToken, false);
}

type Target = 'initiate' | 'hold' | 'capture' | 'end' | 'before-end' | 'after-end';
const kills: Array<{ target: Target; hit: boolean }> = [];
const TARGETS: Target[] = ['initiate', 'capture', 'before-end', 'hold', 'end', 'after-end'];
const flagOf: Partial<Record<Target, keyof typeof inFlight>> = { initiate: 'initiate', end: 'end', 'before-end': 'beforeEnd', 'after-end': 'afterEnd' };

/** Resolves when the instant of `target` comes (or after `ms`): true if it came. */
async function instantOf(target: Target, ms: number): Promise<boolean> {
  const after = stripe.state.calls.length ? stripe.state.calls.at(-1)!.seq : 0;
  if (target === 'hold' || target === 'capture') {
    const pattern = target === 'hold' ? /^\/v1\/payment_intents$/ : /\/capture$/;
    return Promise.race([stripe.state.waitForCall((call) => call.seq > after && call.method === 'POST' && pattern.test(call.path)).then(() => true), sleep(ms).then(() => false)]);
  }
  const flag = flagOf[target]!;
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (inFlight[flag] > 0) {
      if (target === 'initiate' || target === 'end') await sleep(between(0, 15));
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
    await sleep(between(1000, 2500));
    if (driversDone) break;
    const target = TARGETS[i++ % TARGETS.length]!;
    // Initiates and ends are rarer instants than holds and captures (one each per call, and the four
    // drivers spend most of their time inside calls): they get longer to come.
    const hit = await instantOf(target, target === 'hold' || target === 'capture' ? 4000 : 10_000);
    if (driversDone) break;
    await server.kill();
    kills.push({ target, hit });
    trace(`killed (${target}, ${hit ? 'hit' : 'missed'})`);
    await server.start();
    trace('restarted');
  }
})();

const started = Date.now();
let next = 0;
// CALLS calls, and more (up to 3 × CALLS) until every kind of kill has landed at least once.
const everyTargetHit = (): boolean => TARGETS.every((target) => kills.some((k) => k.target === target && k.hit));
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < CALLS || (!everyTargetHit() && next < 3 * CALLS)) await driveCall(next++);
  }),
);
driversDone = true;
await killer;
const driveSeconds = (Date.now() - started) / 1000;

// Every call reaches a terminal state (media-loss grace periods run on the server's jobs).
const TERMINAL = ['completed', 'cancelled', 'failed'];
const settleDeadline = Date.now() + 90_000;
let rows = await db.selectFrom('call_billing').select(['call_id', 'guest_id', 'state', 'snapshot']).execute();
while (rows.some((row) => !TERMINAL.includes(row.state)) && Date.now() < settleDeadline) {
  await sleep(250);
  rows = await db.selectFrom('call_billing').select(['call_id', 'guest_id', 'state', 'snapshot']).execute();
}
// Every terminal call's call.ended reaches the receiver (deliveries left by a kill are retried after the restart).
const endedDeadline = Date.now() + 60_000;
await receiver.until((acked) => rows.every((row) => acked.some((e) => e.body.type === 'call.ended' && e.body.data.call_id === row.call_id)), Math.max(0, endedDeadline - Date.now()));
const pendingOps = await db.selectFrom('payment_ops').select(['idempotency_key', 'status', 'last_error']).where('status', '!=', 'done').execute();

/** The most the server may bill: from the first media span's start to the end of the billable run. */
function mediaBoundMs(record: CallRecord): number {
  if (record.media.length === 0) return 0;
  let runEnd = record.media[0]!.to;
  for (const span of record.media.slice(1)) {
    // Back within the grace period (with the slack, in the server's favour): the gap was call time.
    if (span.from - runEnd > GRACE_SECONDS * 1000 + SLACK_MS) break;
    runEnd = span.to;
  }
  return runEnd - record.media[0]!.from;
}

t.test('chaos: the server was killed at every kind of instant and calls were driven through it', async (t) => {
  t.ok(rows.length >= CALLS, `${rows.length} paid calls were created for ${next} driven`);
  t.ok(kills.length >= 4, `${kills.length} kills`);
  for (const target of TARGETS) t.ok(kills.some((k) => k.target === target && k.hit), `at least one kill at ${target}`);
  t.ok(outcome.mediaActive >= CALLS / 2, `${outcome.mediaActive} calls had both peers connected through the SFU`);
  const after = records.flatMap((r) => r.afterKill);
  t.ok(after.includes('back') && (after.includes('end-while-gone') || after.includes('abandoned')), `after a kill, peers came back (${after.filter((a) => a === 'back').length}) and did not (${after.filter((a) => a !== 'back').length})`);
});

t.test('chaos: every call is terminal, every payment operation answered, none failed', async (t) => {
  t.same(rows.filter((row) => !TERMINAL.includes(row.state)).map((row) => `${row.call_id}:${row.state}`), [], 'no call left pending/waiting/active/ending');
  t.same(rows.filter((row) => row.state === 'failed').map((row) => row.call_id), [], 'no call failed');
  t.same(pendingOps, [], 'no payment operation left pending or failed');
});

t.test('chaos: one call per initiate, and a crash-cut request never blocked its retry', async (t) => {
  const perGuest = new Map<string, number>();
  for (const row of rows) perGuest.set(row.guest_id, (perGuest.get(row.guest_id) ?? 0) + 1);
  t.same([...perGuest.entries()].filter(([, count]) => count > 1), [], 'no guest has two calls (a retried initiate found its call)');
  t.same(records.filter((r) => r.callId !== null && !rows.some((row) => row.call_id === r.callId)).map((r) => r.n), [], 'every answered call id is a stored call');
  t.equal(answers.filter((a) => a.body?.error?.code === 'request_in_progress').length, 0, 'no request_in_progress after a restart');
});

t.test('chaos: every hold is captured or released exactly once; no capture twice; no double hold', async (t) => {
  const intents = [...stripe.state.paymentIntents.values()];
  t.ok(intents.length >= outcome.completed, `${intents.length} holds placed`);
  const unsettled = intents.filter((pi) => pi.status !== 'succeeded' && pi.status !== 'canceled').map((pi) => `${pi.id}:${pi.status}`);
  t.same(unsettled, [], 'no hold left authorised');
  const twice = intents.filter((pi) => stripe.state.historyOf(pi.id, 'capture').length + stripe.state.historyOf(pi.id, 'cancel').length !== 1).map((pi) => pi.id);
  t.same(twice, [], 'each hold has exactly one capture or one cancel in its history');
  const creates = stripe.state.calls.filter((call) => call.method === 'POST' && call.path === '/v1/payment_intents' && call.status === 200 && !call.replayed);
  t.equal(new Set(creates.map((call) => call.idempotencyKey)).size, creates.length, 'no idempotency key created two holds');
  const perWindow = new Map<string, number>();
  for (const pi of intents) perWindow.set(`${pi.metadata.call_id}:w${pi.metadata.window}`, (perWindow.get(`${pi.metadata.call_id}:w${pi.metadata.window}`) ?? 0) + 1);
  t.same([...perWindow.entries()].filter(([, count]) => count > 1), [], 'no call holds one window twice');
  t.equal(stripe.state.internalErrors.length, 0, 'the Stripe test server saw no malformed request');
});

t.test('chaos: no call is billed beyond the media time its peers saw (plus the stated slack)', async (t) => {
  const capturedByCall = new Map<string, number>();
  for (const pi of stripe.state.paymentIntents.values()) {
    const callId = pi.metadata.call_id!;
    capturedByCall.set(callId, (capturedByCall.get(callId) ?? 0) + pi.amount_received);
  }
  const wrong: string[] = [];
  const overbilled: string[] = [];
  let underbilled = 0;
  let billedSeconds = 0;
  let mediaSeconds = 0;
  for (const row of rows) {
    const s = row.snapshot as BillingSnapshot;
    const duration = s.settlement?.activeSeconds ?? 0;
    const captured = capturedByCall.get(row.call_id) ?? 0;
    const expected = Math.ceil(duration / 60) * RATE_MINOR;
    if (captured !== expected || s.totalChargedMinor !== expected) wrong.push(`${row.call_id} ${s.state}: captured ${captured}, recorded ${s.totalChargedMinor}, expected ${expected} for ${duration} s`);
    const record = records.find((r) => r.callId === row.call_id);
    const bound = record ? mediaBoundMs(record) : 0;
    billedSeconds += duration;
    mediaSeconds += bound / 1000;
    if (duration * 1000 > bound + SLACK_MS || (s.totalChargedMinor ?? 0) > Math.ceil((bound + SLACK_MS) / 60_000) * RATE_MINOR) {
      overbilled.push(`${row.call_id} (call ${record?.n}): billed ${duration} s / ${s.totalChargedMinor}, media ${(bound / 1000).toFixed(1)} s [${record?.media.map((m) => `${((m.from - record.media[0]!.from) / 1000).toFixed(1)}–${((m.to - record.media[0]!.from) / 1000).toFixed(1)}`).join(', ')}] ${record?.afterKill.join(',')} ${s.endReason}`);
    }
    if (duration * 1000 < bound - SLACK_MS) underbilled += 1;
  }
  t.same(wrong, [], 'captured = recorded = ⌈duration_seconds / 60⌉ × rate for every call');
  t.same(overbilled, [], `0 calls billed beyond their media time + ${SLACK_MS / 1000} s`);
  const byState = (state: string) => rows.filter((row) => row.state === state).length;
  const intents = [...stripe.state.paymentIntents.values()];
  t.comment(
    `chaos counts: ${rows.length} calls (${byState('completed')} completed, ${byState('cancelled')} cancelled, ${byState('failed')} failed) in ${driveSeconds.toFixed(0)} s; ` +
      `${intents.length} holds (${intents.filter((pi) => pi.status === 'succeeded').length} captured, ${intents.filter((pi) => pi.status === 'canceled').length} released); ` +
      `${kills.length} kills (${TARGETS.map((target) => `${target} ${kills.filter((k) => k.target === target && k.hit).length}/${kills.filter((k) => k.target === target).length}`).join(', ')}); ` +
      `after kills: ${['back', 'end-while-gone', 'abandoned'].map((a) => `${a} ${records.flatMap((r) => r.afterKill).filter((x) => x === a).length}`).join(', ')}; ` +
      `${stripe.state.calls.filter((call) => call.replayed).length} idempotent replays; billed ${billedSeconds} s of ${mediaSeconds.toFixed(0)} s of media; ${underbilled} calls billed under their media time by more than the slack`,
  );
});

t.test('chaos: the webhook receiver got every billing event of every call, in order per call', async (t) => {
  const acked = receiver.acknowledged;
  t.ok(receiver.requests.every((r) => r.verified), 'every request verified with standardwebhooks');
  const distinct = new Map<string, ReceivedWebhook>();
  for (const event of acked) if (!distinct.has(event.id)) distinct.set(event.id, event);
  const missing: string[] = [];
  const disordered: string[] = [];
  for (const row of rows) {
    const s = row.snapshot as BillingSnapshot;
    const events = [...distinct.values()].filter((e) => e.body.data.call_id === row.call_id);
    const key = (e: ReceivedWebhook) => `${e.body.type}:${e.body.data.window ?? ''}:${e.body.data.hold_id ?? ''}:${e.body.data.amount ?? ''}`;
    const got = new Set(events.map(key));
    // What Stripe saw, independently of what the server recorded.
    const expected: string[] = [];
    for (const pi of [...stripe.state.paymentIntents.values()].filter((p) => p.metadata.call_id === row.call_id)) {
      const window = Number(pi.metadata.window);
      expected.push(`billing.hold_placed:${window}:${pi.id}:${(pi.amount / 100).toFixed(2)}`);
      if (pi.status === 'succeeded') expected.push(`billing.captured:${window}:${pi.id}:${(pi.amount_received / 100).toFixed(2)}`);
      if (pi.status === 'canceled') expected.push(`billing.released:${window}:${pi.id}:`);
    }
    for (const want of expected) if (!got.has(want)) missing.push(`${row.call_id}: ${want}`);
    const ended = events.filter((e) => e.body.type === 'call.ended');
    const summary = { duration_seconds: s.settlement?.activeSeconds ?? 0, billed_minutes: s.billedMinutes ?? 0, total_charged: ((s.totalChargedMinor ?? 0) / 100).toFixed(2), currency: 'usd' };
    if (ended.length !== 1 || JSON.stringify(ended[0]!.body.data.billing) !== JSON.stringify(summary) || ended[0]!.body.data.status !== row.state) {
      missing.push(`${row.call_id}: call.ended ${JSON.stringify(summary)} ${row.state} (got ${JSON.stringify(ended.map((e) => [e.body.data.status, e.body.data.billing]))})`);
    }
    // In the order recorded: a call's events arrive one at a time by number, and the end comes last.
    const recorded = await db.selectFrom('webhook_events').select('id').where('call_id', '=', row.call_id).where('type', 'in', BILLING_EVENTS).orderBy('seq').execute();
    const firstArrivals = acked.filter((e) => e.body.data.call_id === row.call_id).map((e) => e.id).filter((id, i, all) => all.indexOf(id) === i);
    if (JSON.stringify(firstArrivals) !== JSON.stringify(recorded.map((r) => r.id))) disordered.push(`${row.call_id}: ${firstArrivals.length} arrived, ${recorded.length} recorded`);
    // Only the releases a cancellation asked for may follow the end (a cancelled call does not wait for them).
    const types = events.map((e) => e.body.type);
    const afterEnd = types.slice(types.indexOf('call.ended') + 1);
    if (afterEnd.some((type) => type !== 'billing.released') || (afterEnd.length > 0 && row.state !== 'cancelled')) disordered.push(`${row.call_id}: ${types.join(' ')}`);
    for (const e of events.filter((x) => x.body.type === 'billing.captured' || x.body.type === 'billing.released')) {
      if (!events.slice(0, events.indexOf(e)).some((p) => p.body.type === 'billing.hold_placed' && p.body.data.hold_id === e.body.data.hold_id)) disordered.push(`${row.call_id}: ${e.body.type} before its hold`);
    }
  }
  t.same(missing, [], 'no billing event or call.ended missing, each as Stripe saw it');
  t.same(disordered, [], 'none out of order per call');
  t.comment(`webhooks: ${distinct.size} events, ${acked.length - distinct.size} duplicate deliveries, ${receiver.requests.length - acked.length} refused requests`);
});
