/**
 * Requests that a crash cut off, retried after the restart with the same X-Idempotency-Key (docs/api.md,
 * "Idempotency keys"). The server runs in a process of its own and is SIGKILLed while the request is
 * still inside it: the Stripe test server holds the provider call unanswered, so the kill lands after
 * the request committed its call (initiate) or its end (end), before it could answer.
 *   - the retried initiate is answered at once with the call the first attempt created: one call, one hold;
 *   - the retried end is answered at once (no request_in_progress) with the call settled as of the first
 *     end, not as of the retry: the downtime in between is not billed.
 */
import t from 'tap';
import { NodePeer } from '../helpers/node-peer.ts';
import { keepHostAvailable, startPaidServerProcess, type ApiAnswer } from '../helpers/server-process.ts';
import { eventually } from '../helpers/wait.ts';

const SCALE = 10;
const { server, stripe, db, clock } = await startPaidServerProcess(t, {
  scale: SCALE,
  settings: {
    // Longer than the test holds a provider call unanswered: the request is still waiting when it is killed.
    CALLPLANE_PAYMENTS_STRIPE_TIMEOUT_MS: '60000',
    CALLPLANE_PAYMENTS_JOIN_TIMEOUT_SECONDS: '3600',
    CALLPLANE_PAYMENTS_MEDIA_GRACE_SECONDS: '30',
  },
});
await server.start();

const host = (await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Crash Host', role: 'host' } })).body.user;
const hostToken = (await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: host.id, ttl_seconds: 86400 } })).body.access_token as string;
const shortCode = (await server.api('/v1/links', { method: 'POST', token: hostToken, body: { rate_per_minute: '1.00', currency: 'usd', window_size_minutes: 1 } })).body.link.short_code as string;
keepHostAvailable(t, server, hostToken);
const hostAvailable = () => eventually(() => server.api(`/v1/links/${shortCode}`), (answer) => answer.body?.link?.available === true, 20_000);

/** Every answer to the retried request, to show that none was request_in_progress. */
function answersOf(answers: ApiAnswer[]) {
  return (answer: ApiAnswer) => answers.push(answer);
}

t.test('an initiate cut off by a crash while its hold was being placed: the retry returns the same call, with one hold', async (t) => {
  await hostAvailable();
  const guest = (await server.api(`/v1/links/${shortCode}/guest`, { method: 'POST', body: { guest_name: 'Ivy' } })).body;
  // Stripe creates the hold, the answer never arrives: the initiate waits on it.
  stripe.faults.next({ kind: 'timeout', path: /^\/v1\/payment_intents$/, method: 'POST', process: true, times: 5 });
  const before = stripe.state.calls.length ? stripe.state.calls.at(-1)!.seq : 0;
  const request = { method: 'POST', token: guest.access_token, key: 'initiate-cut-1', body: { short_code: shortCode, payment_method_id: 'pm_card_visa' } };
  const first = server.api('/v1/calls/initiate', request).catch((error: unknown) => error);
  await stripe.state.waitForCall((call) => call.seq > before && call.method === 'POST' && call.path === '/v1/payment_intents');
  await server.kill();
  t.ok((await first) instanceof Error, 'the first attempt got no answer');
  stripe.faults.clear();
  await server.start();
  await hostAvailable();

  const answers: ApiAnswer[] = [];
  const retried = await server.persist('/v1/calls/initiate', request, { onAnswer: answersOf(answers) });
  t.equal(retried.status, 201, JSON.stringify(retried.body));
  t.same(answers.map((a) => a.body?.error?.code).filter(Boolean), [], 'no request_in_progress, no error on the retry');
  const calls = await db.selectFrom('calls').select(['id', 'idempotency_key']).where('initiator_id', '=', guest.user.id).execute();
  t.same(calls, [{ id: retried.body.call.id, idempotency_key: 'initiate-cut-1' }], 'one call for the key: the one the first attempt stored');
  const holds = [...stripe.state.paymentIntents.values()].filter((pi) => pi.metadata.call_id === retried.body.call.id);
  t.equal(holds.length, 1, 'one hold at Stripe for the call');
  t.equal(retried.body.call.status, 'waiting');
  const again = await server.api('/v1/calls/initiate', request);
  t.same(again.body.call.id, retried.body.call.id, 'a replay of the key answers the same call');
  await server.api(`/v1/calls/${retried.body.call.id}/end`, { method: 'POST', token: guest.access_token, body: {} });
});

t.test('an end cut off by a crash while it was settling: the retry is answered at once, settled as of the first end', async (t) => {
  await hostAvailable();
  const guest = (await server.api(`/v1/links/${shortCode}/guest`, { method: 'POST', body: { guest_name: 'Jo' } })).body;
  const initiated = await server.persist('/v1/calls/initiate', { method: 'POST', token: guest.access_token, body: { short_code: shortCode, payment_method_id: 'pm_card_visa' } });
  t.equal(initiated.status, 201, JSON.stringify(initiated.body));
  const callId = initiated.body.call.id as string;
  const joined = await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: hostToken });
  const peers = [
    await NodePeer.connect({ signalingUrl: initiated.body.signaling_url, token: initiated.body.signaling_token, produce: { audio: true }, consume: false }),
    await NodePeer.connect({ signalingUrl: joined.body.signaling_url, token: joined.body.signaling_token, produce: { audio: true }, consume: false }),
  ];
  t.teardown(() => Promise.all(peers.map((peer) => peer.close())));
  const status = () => server.api(`/v1/calls/${callId}/status`, { token: guest.access_token });
  const active = await eventually(status, (answer) => answer.body.call.status === 'active' && answer.body.call.elapsed_seconds >= 20, 20_000);
  const startedAt = Date.parse(active.body.call.started_at);

  // The end commits (meter stopped), then waits on Stripe's capture answer, which never comes.
  stripe.faults.next({ kind: 'timeout', path: /\/capture$/, times: 5 });
  const before = stripe.state.calls.length ? stripe.state.calls.at(-1)!.seq : 0;
  const request = { method: 'POST', token: guest.access_token, key: 'end-cut-1', body: {} };
  const sentAt = clock.nowMs();
  const first = server.api(`/v1/calls/${callId}/end`, request).catch((error: unknown) => error);
  await stripe.state.waitForCall((call) => call.seq > before && call.path.endsWith('/capture'));
  const killedAt = clock.nowMs();
  await server.kill();
  t.ok((await first) instanceof Error, 'the first attempt got no answer');
  stripe.faults.clear();
  // The server stays down for a while: 20 s of call time the guest must not pay for.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  await server.start();

  const answers: ApiAnswer[] = [];
  const retriedAt = clock.nowMs();
  const retried = await server.persist(`/v1/calls/${callId}/end`, request, { onAnswer: answersOf(answers) });
  t.equal(retried.status, 200, JSON.stringify(retried.body));
  t.equal(answers.length, 1, 'answered at the first retry');
  t.same(answers.map((a) => a.body?.error?.code).filter(Boolean), [], 'no request_in_progress');
  const call = retried.body.call;
  t.equal(call.status, 'completed');
  t.equal(call.end_reason, 'user_ended');
  const low = Math.floor((sentAt - startedAt) / 1000);
  const high = Math.ceil((killedAt - startedAt) / 1000);
  t.ok(call.duration_seconds >= low && call.duration_seconds <= high, `billed ${call.duration_seconds} s: the end was received between ${low} s and ${high} s; retried at ${Math.round((retriedAt - startedAt) / 1000)} s`);
  t.equal(call.billed_minutes, Math.ceil(call.duration_seconds / 60));
  t.equal(call.total_charged, `${call.billed_minutes}.00`);
  const intents = [...stripe.state.paymentIntents.values()].filter((pi) => pi.metadata.call_id === callId);
  t.equal(intents.reduce((sum, pi) => sum + pi.amount_received, 0), call.billed_minutes * 100, 'Stripe captured exactly what was billed');
  t.ok(intents.every((pi) => pi.status === 'succeeded' || pi.status === 'canceled'), 'every hold captured or released');
});
