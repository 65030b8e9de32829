/**
 * POST /v1/webhooks/stripe on a real server (SPEC §6.2): Stripe-Signature verified over the raw body
 * (300 s tolerance), and a hold Stripe cancelled while the call still counted on it ends the call safely
 * through the machine's hold_canceled event. Paid calls are driven as in paid-calls.test.ts (ManualClock,
 * inspectable TestPaymentProvider); events are signed by hand exactly as Stripe signs them
 * (test/stripe-server/webhooks.ts), with real-time timestamps as Stripe's are.
 */
import t from 'tap';
import { TestPaymentProvider } from '../../src/billing/index.ts';
import type { BillingEvent } from '../../src/billing/index.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { createAccount, startTestServer } from '../helpers/server.ts';
import { recorder } from '../helpers/ws.ts';
import { eventually } from '../helpers/wait.ts';
import { buildEvent, deliver, signatureHeader, type Delivery, type StripeEvent } from '../stripe-server/webhooks.ts';

const SECRET = 'whsec_test_callplane_route_0123456789';
const T0 = Date.UTC(2026, 2, 15, 14, 0, 0);
const MIN = 60_000;
const clock = new ManualClock(T0);
const provider = new TestPaymentProvider({ clock });
const server = await startTestServer(
  t,
  { payments: { stripe_webhook_secret: SECRET, join_timeout_seconds: 120, media_grace_seconds: 30 } },
  { clock, payments: provider },
);
const WEBHOOK_URL = `${server.baseUrl}/v1/webhooks/stripe`;



// A host is available while it has a live user socket.
const host = await createAccount(server, 'host', 'Jane Smith');
const hostSocket = recorder(`${server.baseUrl.replace('http', 'ws')}/v1/ws?token=${host.token}`);
await new Promise((resolve) => hostSocket.ws.once('open', resolve));
t.teardown(() => hostSocket.ws.close());
await eventually(() => server.ctx.userNotifier.isOnline(host.id), Boolean);

/** A new paid call (2.00/min, 10-minute windows) in `waiting`, with its window-1 hold placed. */
async function waitingCall(): Promise<{ callId: string; guestToken: string }> {
  const link = await server.api('/v1/links', { method: 'POST', token: host.token, body: { rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 10 } });
  const code = link.body.link.short_code;
  const guest = await server.api(`/v1/links/${code}/guest`, { method: 'POST', body: { guest_name: 'Alex' } });
  const res = await server.api('/v1/calls/initiate', { method: 'POST', token: guest.body.access_token, body: { short_code: code, payment_method_id: 'pm_card_visa', guest_name: 'Alex' } });
  if (res.status !== 201 || res.body.call.status !== 'waiting') throw new Error(`initiate: ${res.status} ${JSON.stringify(res.body)}`);
  return { callId: res.body.call.id, guestToken: guest.body.access_token };
}

/** A due job, as the job runner delivers it (the manual clock never reaches real job times). */
async function tick(callId: string, event: BillingEvent) {
  await server.ctx.paidCallEvents.tick({ callId, event, at: clock.nowMs() });
}

const opsOf = (callId: string) => server.ctx.db.selectFrom('payment_ops').select(['op', 'window', 'status', 'amount_minor']).where('call_id', '=', callId).orderBy('created_at').execute();
const allDone = (callId: string) => eventually(() => opsOf(callId), (ops) => ops.every((op) => op.status !== 'pending'));
const eventsOf = (callId: string) =>
  server.ctx.db.selectFrom('call_events').select(['type', 'from_status', 'to_status', 'cause']).where('call_id', '=', callId).orderBy('id').execute();
const statusOf = async (callId: string) => (await server.api(`/v1/calls/${callId}/status`, { apiKey: true })).body.call;
const holdsOf = async (callId: string) => (await provider.list(callId)).map((h) => [h.window, h.status, h.amountCapturedMinor, h.releasedBy]);

/** A PaymentIntent event as Stripe sends it, signed with `secret` at `timestamp` (unix seconds, real time). */
function stripeEvent(type: string, object: Record<string, unknown>): { event: StripeEvent; payload: string } {
  const event = buildEvent({ type, data: { object: { object: 'payment_intent', ...object } } }, Date.now());
  return { event, payload: JSON.stringify(event, null, 2) };
}
function send(signed: { event: StripeEvent; payload: string }, options: { secret?: string; timestamp?: number; header?: string } = {}): Promise<Delivery> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const header = options.header ?? signatureHeader(options.secret ?? SECRET, signed.payload, timestamp);
  return deliver(WEBHOOK_URL, signed.event, header, signed.payload);
}
const canceledEvent = (holdId: string, metadata?: Record<string, string>) =>
  stripeEvent('payment_intent.canceled', { id: holdId, status: 'canceled', cancellation_reason: 'automatic', amount_capturable: 0, ...(metadata ? { metadata } : {}) });
const parse = (d: Delivery) => JSON.parse(d.body) as { received?: boolean; error?: { code: string; message: string } };

/** Everything a refused delivery must leave untouched. */
async function stateOf(callId: string) {
  return { status: await statusOf(callId), events: await eventsOf(callId), ops: await opsOf(callId), holds: await holdsOf(callId) };
}

t.test('bad signatures (wrong secret, missing, tampered, older than 300 s) are refused with 400; the call is unchanged', async (t) => {
  const { callId } = await waitingCall();
  t.equal((await server.ctx.billing.dispatch(callId, { type: 'media_connected', dtls: { host: 'connected', guest: 'connected' } })).ok, true);
  const holdId = (await provider.list(callId))[0]!.holdId;
  const before = await stateOf(callId);
  t.equal(before.status.status, 'active');
  const signed = canceledEvent(holdId);

  const wrong = await send(signed, { secret: 'whsec_not_the_one' });
  t.equal(wrong.status, 400, wrong.body);
  t.equal(parse(wrong).error?.code, 'validation_failed');
  t.equal(parse(wrong).error?.message, 'Stripe webhook: signature does not match the payload');

  const missing = await fetch(WEBHOOK_URL, { method: 'POST', headers: { 'content-type': 'application/json' }, body: signed.payload });
  t.equal(missing.status, 400);
  t.match(await missing.json(), { error: { code: 'validation_failed', message: /missing Stripe-Signature/ } });

  const ts = Math.floor(Date.now() / 1000);
  const tampered = await deliver(WEBHOOK_URL, signed.event, signatureHeader(SECRET, signed.payload, ts), signed.payload.replace('"automatic"', '"abandoned"'));
  t.equal(tampered.status, 400, 'a signature covers exactly the bytes it was made for');
  t.equal(parse(tampered).error?.code, 'validation_failed');

  const stale = await send(signed, { timestamp: ts - 301 });
  t.equal(stale.status, 400);
  t.equal(parse(stale).error?.code, 'validation_failed');
  t.equal(parse(stale).error?.message, 'Stripe webhook: signature timestamp is older than 300 s');

  const garbage = await send(signed, { header: 'v1=abc' });
  t.equal(garbage.status, 400);

  t.same(await stateOf(callId), before, 'status, event log, payment operations and holds unchanged');
  t.same(await holdsOf(callId), [[1, 'held', 0, null]]);

  // The same event within the tolerance is accepted (the refusals above were about the signature only).
  await provider.expireHold(holdId);
  const fresh = await send(signed, { timestamp: ts - 290 });
  t.equal(fresh.status, 200, fresh.body);
  t.same(parse(fresh), { received: true });
  t.match(await eventually(() => statusOf(callId), (c) => c.status === 'completed'), { status: 'completed', end_reason: 'billing_error', duration_seconds: 0, total_charged: '0.00' });
});

t.test('active call: Stripe cancels the live window-2 hold → ending → completed with billing_error, billed only window 1', async (t) => {
  const { callId } = await waitingCall();
  clock.advance(30_000);
  t.equal((await server.ctx.billing.dispatch(callId, { type: 'media_connected', dtls: { host: 'connected', guest: 'connected' } })).ok, true);
  const start = clock.nowMs();
  clock.advance(9 * MIN);
  await tick(callId, { type: 'next_hold_due', window: 2 });
  await allDone(callId);
  clock.advance(MIN);
  await tick(callId, { type: 'window_boundary', window: 1 }); // window 1 captured in full: 2000
  await allDone(callId);
  clock.advance(9 * MIN);
  await tick(callId, { type: 'next_hold_due', window: 3 });
  await allDone(callId);
  t.same(await holdsOf(callId), [[1, 'captured', 2000, null], [2, 'held', 0, null], [3, 'held', 0, null]]);
  clock.advance(15_000); // 1155 s into the call, in window 2

  // Stripe drops the window-2 authorisation and tells us (no metadata: found through the payment outbox).
  const holdId = (await provider.list(callId)).find((h) => h.window === 2)!.holdId;
  await provider.expireHold(holdId);
  const signed = canceledEvent(holdId);
  const delivery = await send(signed);
  t.equal(delivery.status, 200, delivery.body);
  t.same(parse(delivery), { received: true });

  const final = await eventually(() => statusOf(callId), (c) => c.status === 'completed');
  t.match(final, {
    status: 'completed', end_reason: 'billing_error', duration_seconds: 600, billed_minutes: 10, total_charged: '20.00',
    ended_at: new Date(start + 1155_000).toISOString(),
  });
  const log = await eventsOf(callId);
  t.same(log.slice(-2), [
    { type: 'hold_canceled', from_status: 'active', to_status: 'ending', cause: 'billing_error' },
    { type: 'final_capture_done', from_status: 'ending', to_status: 'completed', cause: null },
  ]);
  t.same(await holdsOf(callId), [[1, 'captured', 2000, null], [2, 'released', 0, 'provider'], [3, 'released', 0, 'caller']], 'nothing captured from the cancelled hold; the other one released');
  t.same(
    (await opsOf(callId)).map((op) => [op.op, op.window, op.status, op.amount_minor]),
    [['hold', 1, 'done', 2000], ['hold', 2, 'done', 2000], ['capture', 1, 'done', 2000], ['hold', 3, 'done', 2000], ['release', 3, 'done', 0]],
    'no capture and no release was ever asked for the cancelled hold',
  );

  // Stripe delivers at least once: the same event again is received and changes nothing.
  const after = await stateOf(callId);
  const again = await deliver(WEBHOOK_URL, signed.event, delivery.header, delivery.payload);
  t.equal(again.status, 200, again.body);
  t.same(parse(again), { received: true });
  t.same(await stateOf(callId), after, 'state unchanged by the repeat');
});

t.test('waiting call: Stripe cancels the window-1 hold → cancelled with billing_error, nothing charged', async (t) => {
  const { callId } = await waitingCall();
  const holdId = (await provider.list(callId))[0]!.holdId;
  await provider.expireHold(holdId);
  const signed = canceledEvent(holdId, { call_id: callId, window: '1' }); // our intents carry the call id: a key lookup
  const delivery = await send(signed);
  t.equal(delivery.status, 200, delivery.body);
  const call = await eventually(() => statusOf(callId), (c) => c.status === 'cancelled');
  t.match(call, { status: 'cancelled', end_reason: 'billing_error', total_charged: '0.00', billed_minutes: 0 });
  t.same((await eventsOf(callId)).at(-1), { type: 'hold_canceled', from_status: 'waiting', to_status: 'cancelled', cause: 'billing_error' });
  await allDone(callId);
  t.same((await opsOf(callId)).map((op) => op.op), ['hold'], 'no capture, no release');
  t.same(await holdsOf(callId), [[1, 'released', 0, 'provider']]);

  const after = await stateOf(callId);
  const again = await deliver(WEBHOOK_URL, signed.event, delivery.header, delivery.payload);
  t.equal(again.status, 200);
  t.same(await stateOf(callId), after, 'the repeat changes nothing');
});

t.test('other events, unknown intents and our own releases are received (200) and change nothing', async (t) => {
  const { callId, guestToken } = await waitingCall();
  const ended = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: guestToken, body: {} });
  t.equal(ended.status, 200);
  await allDone(callId);
  const holdId = (await provider.list(callId))[0]!.holdId;
  t.same(await holdsOf(callId), [[1, 'released', 0, 'caller']]);
  const before = await stateOf(callId);

  for (const signed of [
    canceledEvent(holdId), // Stripe announcing the release we asked for
    canceledEvent(holdId, { call_id: callId, window: '1' }),
    canceledEvent('pi_not_ours_123'),
    canceledEvent('pi_not_ours_456', { call_id: 'NOSUCHCALL' }),
    stripeEvent('payment_intent.payment_failed', { id: 'pi_unknown', status: 'requires_payment_method' }),
    stripeEvent('payment_intent.succeeded', { id: holdId, status: 'succeeded' }),
    stripeEvent('charge.refunded', { id: 'ch_1' }),
  ]) {
    const d = await send(signed);
    t.equal(d.status, 200, `${signed.event.type} ${JSON.stringify(signed.event.data.object.id)}: ${d.body}`);
    t.same(parse(d), { received: true });
  }
  t.same(await stateOf(callId), before);
});

t.test('without a webhook secret the endpoint answers 503 and processes nothing', async (t) => {
  const bare = await startTestServer(t, {}, { clock: new ManualClock(T0), payments: new TestPaymentProvider() });
  const signed = canceledEvent('pi_1');
  const res = await deliver(`${bare.baseUrl}/v1/webhooks/stripe`, signed.event, signatureHeader(SECRET, signed.payload, Math.floor(Date.now() / 1000)), signed.payload);
  t.equal(res.status, 503);
  t.match(JSON.parse(res.body), { error: { code: 'service_unavailable', message: /payments\.stripe_webhook_secret/ } });
});
