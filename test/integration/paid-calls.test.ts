/**
 * Paid link calls over HTTP (SPEC §6.1/§6.2, seed 000) on a real server and PostgreSQL, with the
 * in-process test payment provider (inspectable) and a clock that moves only when told. Media is
 * started the way the SFU starts it (media_connected from the SFU's DTLS view); the real SFU path is
 * in paid-call-media.test.ts.
 */
import t from 'tap';
import { TestPaymentProvider } from '../../src/billing/index.ts';
import type { BillingEvent } from '../../src/billing/index.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { createAccount, startTestServer, type TestAccount } from '../helpers/server.ts';
import { recorder } from '../helpers/ws.ts';
import { eventually } from '../helpers/wait.ts';

const T0 = Date.UTC(2026, 2, 15, 14, 0, 0);
const clock = new ManualClock(T0);
const provider = new TestPaymentProvider({ clock });
const server = await startTestServer(t, { payments: { join_timeout_seconds: 120, media_grace_seconds: 30 } }, { clock, payments: provider });
const MIN = 60_000;




const host = await createAccount(server, 'host', 'Jane Smith');
const hostSocket = recorder(`${server.baseUrl.replace('http', 'ws')}/v1/ws?token=${host.token}`);
await new Promise((resolve) => hostSocket.ws.once('open', resolve));
t.teardown(() => hostSocket.ws.close());
await eventually(() => server.ctx.userNotifier.isOnline(host.id), Boolean);

async function link(body: Record<string, unknown> = {}): Promise<string> {
  const created = await server.api('/v1/links', { method: 'POST', token: host.token, body: { rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 10, ...body } });
  if (created.status !== 201) throw new Error(`link: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body.link.short_code;
}

async function guestFor(code: string, name = 'Alex'): Promise<TestAccount> {
  const made = await server.api(`/v1/links/${code}/guest`, { method: 'POST', body: { guest_name: name } });
  if (made.status !== 201) throw new Error(`guest: ${made.status} ${JSON.stringify(made.body)}`);
  return { id: made.body.user.id, token: made.body.access_token };
}

async function initiate(code: string, guest: TestAccount, card = 'pm_card_visa', headers: Record<string, string> = {}) {
  return server.api('/v1/calls/initiate', { method: 'POST', token: guest.token, headers, body: { short_code: code, payment_method_id: card, guest_name: 'Alex' } });
}

/** What the SFU reports once both transports are DTLS-connected. */
async function mediaConnected(callId: string) {
  return server.ctx.billing.dispatch(callId, { type: 'media_connected', dtls: { host: 'connected', guest: 'connected' } });
}

/** A due job, as the job runner delivers it (the manual clock never reaches real job times). */
async function tick(callId: string, event: BillingEvent) {
  await server.ctx.paidCallEvents.tick({ callId, event, at: clock.nowMs() });
}

const opsOf = (callId: string) => server.ctx.db.selectFrom('payment_ops').selectAll().where('call_id', '=', callId).orderBy('created_at').execute();
const allDone = async (callId: string) => eventually(() => opsOf(callId), (ops) => ops.every((op) => op.status !== 'pending'));

t.test('initiate: 201 waiting with the seed shape, one window-1 hold, call.incoming to the host', async (t) => {
  const code = await link();
  const guest = await guestFor(code);
  const res = await initiate(code, guest);
  t.equal(res.status, 201, JSON.stringify(res.body));
  const call = res.body.call;
  t.equal(call.status, 'waiting');
  t.equal(call.short_code, code);
  t.same(call.host, { id: host.id, display_name: 'Jane Smith' });
  t.equal(call.rate_per_minute, '2.00');
  t.equal(call.window_size_minutes, 10);
  t.equal(call.created_at, new Date(T0).toISOString());
  t.match(res.body.signaling_token, /^st_/);
  t.match(res.body.turn_credentials, { urls: Array, username: String, credential: String });
  const holds = await provider.list(call.id);
  t.equal(holds.length, 1);
  t.match(holds[0], { window: 1, amountMinor: 2000, currency: 'usd', status: 'held', paymentMethodId: 'pm_card_visa' });
  const incoming = await hostSocket.waitFor((m) => m.event?.name === 'call.incoming' && m.data.call.id === call.id);
  t.equal(incoming.data.call.guest_name, 'Alex');
  const log = await server.ctx.db.selectFrom('call_events').select(['type', 'from_status', 'to_status']).where('call_id', '=', call.id).orderBy('id').execute();
  t.same(log, [
    { type: 'initiate_accepted', from_status: null, to_status: 'pending' },
    { type: 'hold_placed', from_status: 'pending', to_status: 'waiting' },
  ]);
});

t.test('seed 000: status at 270 s, end at 450 s → 8 minutes, 16.00, one capture of 1600', async (t) => {
  const code = await link();
  const guest = await guestFor(code);
  const callId = (await initiate(code, guest)).body.call.id;
  clock.advance(30_000); // the host joins 30 s later
  const start = clock.nowMs();
  t.equal((await mediaConnected(callId)).ok, true);
  clock.advance(270_000);
  const status = await server.api(`/v1/calls/${callId}/status`, { token: guest.token });
  t.equal(status.status, 200);
  t.match(status.body.call, {
    status: 'active',
    guest_name: 'Alex',
    current_window: 1,
    window_start_at: new Date(start).toISOString(),
    next_hold_at: new Date(start + 9 * MIN).toISOString(),
    elapsed_seconds: 270,
    estimated_charge: '9.00',
    started_at: new Date(start).toISOString(),
  });
  clock.advance(180_000); // 450 s
  const ended = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: guest.token, body: { reason: 'user_ended' } });
  t.equal(ended.status, 200, JSON.stringify(ended.body));
  t.match(ended.body.call, { id: callId, status: 'completed', duration_seconds: 450, billed_minutes: 8, total_charged: '16.00', currency: 'usd', ended_at: new Date(start + 450_000).toISOString(), end_reason: 'user_ended' });
  t.match(await provider.list(callId), [{ window: 1, status: 'captured', amountCapturedMinor: 1600 }]);
  const again = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: guest.token, body: {} });
  t.equal(again.status, 409);
  t.equal(again.body.error.code, 'invalid_state');
});

t.test('$3/min, 10-minute windows, 23 min 30 s → 72.00 in captures 3000 + 3000 + 1200', async (t) => {
  const code = await link({ rate_per_minute: '3.00' });
  const guest = await guestFor(code);
  const callId = (await initiate(code, guest)).body.call.id;
  await mediaConnected(callId);
  clock.advance(9 * MIN);
  await tick(callId, { type: 'next_hold_due', window: 2 });
  await allDone(callId);
  clock.advance(MIN);
  await tick(callId, { type: 'window_boundary', window: 1 });
  clock.advance(9 * MIN);
  await tick(callId, { type: 'next_hold_due', window: 3 });
  await allDone(callId);
  clock.advance(MIN);
  await tick(callId, { type: 'window_boundary', window: 2 });
  clock.advance(3.5 * MIN);
  const ended = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: host.token, body: {} });
  t.match(ended.body.call, { status: 'completed', duration_seconds: 1410, billed_minutes: 24, total_charged: '72.00', end_reason: 'host_ended' });
  const holds = await provider.list(callId);
  t.same(holds.map((h) => [h.window, h.amountMinor, h.status, h.amountCapturedMinor]), [
    [1, 3000, 'captured', 3000],
    [2, 3000, 'captured', 3000],
    [3, 3000, 'captured', 1200],
  ]);
});

t.test('errors: 402 declined (use released), 404 missing/expired link, 409 exhausted, 503 host unavailable, 403 non-participant end', async (t) => {
  const single = await link({ max_uses: 1 });
  const guest = await guestFor(single);
  const declined = await initiate(single, guest, 'pm_card_chargeDeclined');
  t.equal(declined.status, 402);
  t.equal(declined.body.error.code, 'payment_failed');
  t.equal(declined.body.error.details.decline_code, 'generic_decline');
  const useAfterDecline = await server.ctx.db.selectFrom('links').select('uses').where('short_code', '=', single).executeTakeFirstOrThrow();
  t.equal(useAfterDecline.uses, 0, 'a refused hold gives the link use back');

  const first = await initiate(single, guest);
  t.equal(first.status, 201);
  const second = await initiate(single, await guestFor(await link()), 'pm_card_visa');
  t.equal(second.status, 403, 'a guest token is scoped to its own link');
  const exhausted = await server.api('/v1/calls/initiate', { method: 'POST', token: (await createAccount(server, 'user', 'U')).token, body: { short_code: single, payment_method_id: 'pm_card_visa' } });
  t.equal(exhausted.status, 409);
  t.equal(exhausted.body.error.code, 'link_exhausted');

  const caller = await createAccount(server, 'user', 'Unscoped caller'); // a guest token would be refused for another code (403)
  const missing = await server.api('/v1/calls/initiate', { method: 'POST', token: caller.token, body: { short_code: 'nosuchcode', payment_method_id: 'pm_card_visa' } });
  t.equal(missing.status, 404);
  t.equal(missing.body.error.code, 'link_not_found');
  const soon = await link({ expires_at: new Date(clock.nowMs() + MIN).toISOString() });
  const soonGuest = await guestFor(soon);
  clock.advance(MIN);
  const expired = await initiate(soon, soonGuest);
  t.equal(expired.status, 404);
  t.equal(expired.body.error.code, 'link_not_found');

  const away = await server.api('/v1/hosts/me/availability', { method: 'PUT', token: host.token, body: { available: false } });
  t.equal(away.status, 200);
  const code = await link();
  const unavailable = await initiate(code, await guestFor(code));
  t.equal(unavailable.status, 503);
  t.equal(unavailable.body.error.code, 'host_unavailable');
  await server.api('/v1/hosts/me/availability', { method: 'PUT', token: host.token, body: { available: true } });

  const stranger = await createAccount(server, 'user', 'Stranger');
  const forbidden = await server.api(`/v1/calls/${first.body.call.id}/end`, { method: 'POST', token: stranger.token, body: {} });
  t.equal(forbidden.status, 403);
  t.equal(forbidden.body.error.code, 'forbidden');
  const statusForbidden = await server.api(`/v1/calls/${first.body.call.id}/status`, { token: stranger.token });
  t.equal(statusForbidden.status, 403);
});

t.test('cancellations: a no-show, a guest ending, link expiry and a reject while waiting are cancelled, hold released, nothing captured', async (t) => {
  const code = await link();
  const noShow = (await initiate(code, await guestFor(code))).body.call.id;
  clock.advance(119_000);
  await tick(noShow, { type: 'join_timeout' });
  t.equal((await server.api(`/v1/calls/${noShow}/status`, { apiKey: true })).body.call.status, 'waiting', 'not before the timeout');
  clock.advance(1000);
  await tick(noShow, { type: 'join_timeout' });
  await allDone(noShow);
  const cancelled = (await server.api(`/v1/calls/${noShow}/status`, { apiKey: true })).body.call;
  t.match(cancelled, { status: 'cancelled', end_reason: 'join_timeout', total_charged: '0.00', billed_minutes: 0 });
  t.match(await provider.list(noShow), [{ window: 1, status: 'released', amountCapturedMinor: 0 }]);

  const guest = await guestFor(code);
  const leaving = (await initiate(code, guest)).body.call.id;
  const ended = await server.api(`/v1/calls/${leaving}/end`, { method: 'POST', token: guest.token, body: {} });
  t.equal(ended.status, 200);
  t.match(ended.body.call, { status: 'cancelled', end_reason: 'user_ended', total_charged: '0.00' });
  t.match(await provider.list(leaving), [{ window: 1, status: 'released', amountCapturedMinor: 0 }]);

  const expiring = await link({ expires_at: new Date(clock.nowMs() + MIN).toISOString() });
  const expiringCall = (await initiate(expiring, await guestFor(expiring))).body.call.id;
  clock.advance(MIN);
  await tick(expiringCall, { type: 'link_expired' });
  await allDone(expiringCall);
  t.match((await server.api(`/v1/calls/${expiringCall}/status`, { apiKey: true })).body.call, { status: 'cancelled', end_reason: 'link_expired', total_charged: '0.00' });
  t.match(await provider.list(expiringCall), [{ window: 1, status: 'released', amountCapturedMinor: 0 }]);

  const rejected = (await initiate(code, await guestFor(code))).body.call.id;
  const reject = await server.api(`/v1/calls/${rejected}/reject`, { method: 'POST', token: host.token });
  t.equal(reject.status, 200);
  t.match(reject.body.call, { status: 'cancelled', end_reason: 'host_rejected' });
  t.match(await provider.list(rejected), [{ status: 'released' }]);
});

t.test('a refused window-2 hold: both warned, the call ends at window 1\'s end with billing_error, window 1 captured in full', async (t) => {
  const code = await link();
  const guest = await guestFor(code);
  const guestSocket = recorder(`${server.baseUrl.replace('http', 'ws')}/v1/ws?token=${guest.token}`);
  t.teardown(() => guestSocket.ws.close());
  await new Promise((resolve) => guestSocket.ws.once('open', resolve));
  const callId = (await initiate(code, guest, 'pm_card_callplane_declineAfterFirstHold')).body.call.id;
  await mediaConnected(callId);
  const start = clock.nowMs();
  clock.advance(9 * MIN);
  await tick(callId, { type: 'next_hold_due', window: 2 });
  await allDone(callId);
  const windowEnd = new Date(start + 10 * MIN).toISOString();
  for (const socket of [hostSocket, guestSocket]) {
    const warned = await socket.waitFor((m) => m.event?.name === 'call.updated' && m.data.call.id === callId && m.data.call.ends_at === windowEnd);
    t.equal(warned.data.call.status, 'active');
  }
  clock.advance(MIN);
  await tick(callId, { type: 'window_boundary', window: 1 });
  await allDone(callId);
  const final = await eventually(() => server.api(`/v1/calls/${callId}/status`, { apiKey: true }), (r) => r.body.call.status === 'completed');
  t.match(final.body.call, { status: 'completed', end_reason: 'billing_error', duration_seconds: 600, billed_minutes: 10, total_charged: '20.00' });
  t.same((await provider.list(callId)).map((h) => [h.window, h.status, h.amountCapturedMinor]), [[1, 'captured', 2000]]);
  const ended = await guestSocket.waitFor((m) => m.event?.name === 'call.ended' && m.data.call.id === callId);
  t.equal(ended.data.call.total_charged, '20.00');
});

t.test('idempotent initiate and end: the same key answers the same, one hold; another body → 409', async (t) => {
  const code = await link();
  const guest = await guestFor(code);
  const key = { 'x-idempotency-key': 'initiate-key-1' };
  const first = await initiate(code, guest, 'pm_card_visa', key);
  const replay = await initiate(code, guest, 'pm_card_visa', key);
  t.equal(first.status, 201);
  t.equal(replay.status, 201);
  t.same(replay.body, first.body);
  t.equal((await provider.list(first.body.call.id)).length, 1);
  const calls = await server.ctx.db.selectFrom('call_billing').select('call_id').where('guest_id', '=', guest.id).execute();
  t.equal(calls.length, 1, 'one call for one key');
  const conflict = await initiate(code, guest, 'pm_card_mastercard', key);
  t.equal(conflict.status, 409);
  t.equal(conflict.body.error.code, 'idempotency_conflict');

  const callId = first.body.call.id;
  await mediaConnected(callId);
  clock.advance(61_000);
  const endKey = { 'x-idempotency-key': 'end-key-1' };
  const ended = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: guest.token, headers: endKey, body: {} });
  const endedAgain = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: guest.token, headers: endKey, body: {} });
  t.equal(ended.status, 200);
  t.same(endedAgain.body, ended.body);
  t.match(ended.body.call, { billed_minutes: 2, total_charged: '4.00' });
  t.same((await provider.list(callId)).map((h) => h.amountCapturedMinor), [400]);
  const endConflict = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: guest.token, headers: endKey, body: { reason: 'timeout' } });
  t.equal(endConflict.status, 409);
  t.equal(endConflict.body.error.code, 'idempotency_conflict');
});

t.test('a free link (0.00) runs the same lifecycle without holds', async (t) => {
  const code = await link({ rate_per_minute: '0.00' });
  const guest = await guestFor(code);
  const res = await initiate(code, guest);
  t.equal(res.status, 201);
  const callId = res.body.call.id;
  t.equal((await provider.list(callId)).length, 0);
  await mediaConnected(callId);
  clock.advance(95_000);
  const ended = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: host.token, body: {} });
  t.match(ended.body.call, { status: 'completed', duration_seconds: 95, billed_minutes: 2, total_charged: '0.00' });
});

t.test('/metrics counts payment operations by outcome and paid calls by state', async (t) => {
  const metrics = await fetch(`${server.baseUrl}/metrics`).then((r) => r.text());
  const value = (pattern: RegExp) => Number(pattern.exec(metrics)?.[1] ?? NaN);
  t.ok(value(/^callplane_payment_operations_total\{op="hold",outcome="ok"\} (\d+)/m) >= 5, 'holds placed');
  t.ok(value(/^callplane_payment_operations_total\{op="hold",outcome="declined"\} (\d+)/m) >= 2, 'holds declined (first and next)');
  t.ok(value(/^callplane_payment_operations_total\{op="capture",outcome="ok"\} (\d+)/m) >= 4, 'captures');
  t.ok(value(/^callplane_payment_operations_total\{op="release",outcome="ok"\} (\d+)/m) >= 3, 'releases');
  const completed = await server.ctx.db.selectFrom('call_billing').select(server.ctx.db.fn.countAll<number>().as('n')).where('state', '=', 'completed').executeTakeFirstOrThrow();
  t.equal(value(/^callplane_paid_calls\{state="completed"\} (\d+)/m), Number(completed.n));
});
