// StripeProvider (the official SDK) against the Stripe-compatible test server over HTTP: holds, partial
// captures, releases, declines, idempotency, timeouts / 5xx / dropped connections, destination charges.
// The server's audit (every request, every PaymentIntent's operations) is the evidence for "exactly once".
import t, { type Test } from 'tap';
import { idempotencyKey } from '../../src/billing/idempotency.ts';
import { captureFeeMinor, StripeProvider, type StripeProviderOptions } from '../../src/billing/providers/stripe.ts';
import { PaymentDeclined, ProviderUnavailable } from '../../src/billing/providers/types.ts';
import { AppError } from '../../src/shared/errors.ts';
import { startStripeServer } from '../stripe-server/server.ts';
import { failure, providerFor } from '../helpers/stripe.ts';

const CALL = '01JCALLSTRIPE0000000000000';
const key = (window: number, op: 'hold' | 'capture' | 'release') => idempotencyKey(CALL, window, op);
const CREATE = /^\/v1\/payment_intents$/;
const CAPTURE = /\/capture$/;

async function setup(t: Test, options: Partial<StripeProviderOptions> = {}) {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const provider = providerFor(server, options);
  return { server, provider };
}


const hold = (window = 1, extra: Record<string, unknown> = {}) => ({
  callId: CALL,
  window,
  amountMinor: 2000,
  currency: 'usd',
  paymentMethodId: 'pm_card_visa',
  idempotencyKey: key(window, 'hold'),
  ...extra,
});


t.test('hold, partial capture: a manual-capture PaymentIntent, captured once for the amount', async (t) => {
  const { server, provider } = await setup(t);
  const placed = await provider.placeHold(hold());
  t.match(placed, { holdId: /^pi_/, status: 'held' });
  const pi = server.state.paymentIntents.get(placed.holdId);
  t.match(pi, {
    status: 'requires_capture',
    capture_method: 'manual',
    amount: 2000,
    amount_capturable: 2000,
    currency: 'usd',
    payment_method_types: ['card'],
    metadata: { call_id: CALL, window: '1' },
    transfer_data: null,
    application_fee_amount: null,
  });
  t.same(server.state.callsTo('POST', CREATE).map((c) => c.idempotencyKey), [key(1, 'hold')], 'the caller key, verbatim');
  t.same(await provider.retrieve(placed.holdId), { status: 'held', amountCapturedMinor: 0 });

  t.same(await provider.capture({ holdId: placed.holdId, amountMinor: 700, idempotencyKey: key(1, 'capture') }), { captured: 700 });
  t.same(await provider.retrieve(placed.holdId), { status: 'captured', amountCapturedMinor: 700 });
  const captures = server.state.historyOf(placed.holdId, 'capture');
  t.equal(captures.length, 1);
  t.match(captures[0], { amount: 700, idempotencyKey: key(1, 'capture') });
  t.same(server.state.callsTo('POST', CAPTURE)[0]?.params, { amount_to_capture: '700' }, 'no fee on a plain charge');
});

t.test('hold, release: canceled; releasing again (same or new key) is still released', async (t) => {
  const { server, provider } = await setup(t);
  const { holdId } = await provider.placeHold(hold());
  await provider.release({ holdId, idempotencyKey: key(1, 'release') });
  t.same(await provider.retrieve(holdId), { status: 'released', amountCapturedMinor: 0 });
  await provider.release({ holdId, idempotencyKey: key(1, 'release') });
  t.equal(server.state.callsTo('POST', /\/cancel$/).at(-1)?.replayed, true, 'same key: the saved answer');
  await provider.release({ holdId, idempotencyKey: 'another-key' });
  t.equal(server.state.callsTo('POST', /\/cancel$/).at(-1)?.status, 400, 'new key: Stripe says unexpected state…');
  t.equal(server.state.historyOf(holdId, 'cancel').length, 1, '…and the provider reads it as released; canceled once');
});

t.test('a hold Stripe canceled on its own: release succeeds, capture is an invalid_state the caller sees', async (t) => {
  const { server, provider } = await setup(t);
  const { holdId } = await provider.placeHold(hold());
  await server.cancelHold(holdId, 'automatic');
  t.same(await provider.retrieve(holdId), { status: 'released', amountCapturedMinor: 0 });
  const err = await failure(t, provider.capture({ holdId, amountMinor: 500, idempotencyKey: key(1, 'capture') }));
  t.type(err, AppError);
  t.match(err, { code: 'invalid_state', status: 409, details: { hold_status: 'released', stripe_code: 'payment_intent_unexpected_state' } });
  await provider.release({ holdId, idempotencyKey: key(1, 'release') });
  t.equal(server.state.historyOf(holdId, 'capture').length, 0);
});

t.test('declines: PaymentDeclined (402 payment_failed) carrying the decline code', async (t) => {
  const { server, provider } = await setup(t);
  const generic = await failure(t, provider.placeHold(hold(1, { paymentMethodId: 'pm_card_chargeDeclined' })));
  t.type(generic, PaymentDeclined);
  t.match(generic, { code: 'payment_failed', status: 402, declineCode: 'generic_decline', details: { decline_code: 'generic_decline' } });
  const funds = await failure(t, provider.placeHold(hold(2, { paymentMethodId: 'pm_card_insufficientFunds' })));
  t.match(funds, { declineCode: 'insufficient_funds', message: 'Your card has insufficient funds.' });
  const expired = await failure(t, provider.placeHold(hold(3, { paymentMethodId: 'pm_card_chargeDeclinedExpiredCard' })));
  t.match(expired, { declineCode: 'expired_card' }, 'no decline_code: the error code stands in');
  server.faults.next({ kind: 'decline', declineCode: 'lost_card' });
  const faulted = await failure(t, provider.placeHold(hold(4)));
  t.match(faulted, { declineCode: 'lost_card' });

  // 3-D Secure cannot be completed inside a call: declined, and the half-made PaymentIntent is canceled.
  const sca = await failure(t, provider.placeHold(hold(5, { paymentMethodId: 'pm_card_authenticationRequired' })));
  t.match(sca, { code: 'payment_failed', declineCode: 'authentication_required' });
  const scaPi = [...server.state.paymentIntents.values()].find((pi) => pi.metadata.window === '5');
  t.equal(scaPi?.status, 'canceled');
  t.equal([...server.state.paymentIntents.values()].filter((pi) => pi.status === 'requires_capture').length, 0, 'nothing held');
});

t.test('idempotent placeHold: the same key gives the same PaymentIntent, replayed by the server', async (t) => {
  const { server, provider } = await setup(t);
  const first = await provider.placeHold(hold());
  const second = await provider.placeHold(hold());
  t.equal(second.holdId, first.holdId);
  const creates = server.state.callsTo('POST', CREATE);
  t.same(creates.map((c) => [c.idempotencyKey, c.status, c.replayed]), [
    [key(1, 'hold'), 200, false],
    [key(1, 'hold'), 200, true],
  ]);
  t.equal(server.state.paymentIntents.size, 1);

  const conflict = await failure(t, provider.placeHold(hold(1, { amountMinor: 2500 })));
  t.type(conflict, AppError);
  t.match(conflict, { code: 'idempotency_conflict', status: 409, details: { stripe_type: 'StripeIdempotencyError' } });
  t.notOk(conflict instanceof ProviderUnavailable, 'not retryable');
  t.equal(server.state.paymentIntents.size, 1, 'no second hold');
});

t.test('timeout: ProviderUnavailable after the configured timeout; attempts as configured, one key', async (t) => {
  const { server } = await setup(t);
  const once = providerFor(server, { timeoutMs: 500, maxNetworkRetries: 0 });
  server.faults.next({ kind: 'timeout', path: CREATE });
  let started = performance.now();
  const err = await failure(t, once.placeHold(hold()));
  const elapsed = performance.now() - started;
  t.type(err, ProviderUnavailable);
  t.match(err, { code: 'service_unavailable', retryable: true, message: /timeout/ });
  t.ok(elapsed >= 490 && elapsed < 1500, `gave up after the 500 ms timeout (took ${Math.round(elapsed)} ms)`);
  t.equal(server.state.callsTo('POST', CREATE).length, 1, 'maxNetworkRetries 0: one attempt');

  // maxNetworkRetries 2: three attempts (backoff 0.25–0.5 s, then 0.5–1 s), all under the caller's key.
  const retrying = providerFor(server, { timeoutMs: 500, maxNetworkRetries: 2 });
  server.faults.next({ kind: 'timeout', path: CREATE, times: 3 });
  started = performance.now();
  t.type(await failure(t, retrying.placeHold(hold(2))), ProviderUnavailable);
  const took = performance.now() - started;
  t.ok(took >= 3 * 490 && took < 3 * 500 + 1500 + 1000, `three timeouts plus backoff (took ${Math.round(took)} ms)`);
  const attempts = server.state.callsTo('POST', CREATE).slice(1);
  t.same(attempts.map((c) => [c.idempotencyKey, c.fault, c.status]), Array(3).fill([key(2, 'hold'), 'timeout', null]));
  t.equal(server.state.paymentIntents.size, 0, 'nothing was created');
});

t.test('a lost answer (Stripe did it, the response timed out): the retry is replayed, one hold', async (t) => {
  const { server } = await setup(t);
  const provider = providerFor(server, { timeoutMs: 500, maxNetworkRetries: 1 });
  server.faults.next({ kind: 'timeout', path: CREATE, process: true });
  const placed = await provider.placeHold(hold());
  const attempts = server.state.callsTo('POST', CREATE);
  t.same(attempts.map((c) => [c.fault, c.replayed]), [['timeout', false], [null, true]]);
  t.equal(server.state.paymentIntents.size, 1);
  t.ok(server.state.paymentIntents.has(placed.holdId));

  // The same for a capture whose answer was lost, then retried by the caller after a restart.
  server.faults.next({ kind: 'http500', path: CAPTURE, process: true, times: 2 });
  const lost = await failure(t, provider.capture({ holdId: placed.holdId, amountMinor: 2000, idempotencyKey: key(1, 'capture') }));
  t.type(lost, ProviderUnavailable);
  const restarted = providerFor(server);
  t.same(await restarted.capture({ holdId: placed.holdId, amountMinor: 2000, idempotencyKey: key(1, 'capture') }), { captured: 2000 });
  t.equal(server.state.historyOf(placed.holdId, 'capture').length, 1, 'captured exactly once');
  t.equal(server.state.callsTo('POST', CAPTURE).at(-1)?.replayed, true);
});

t.test('http500 and dropped connections: ProviderUnavailable; a transient one is retried by the SDK', async (t) => {
  const { server } = await setup(t);
  const provider = providerFor(server, { maxNetworkRetries: 1 });
  server.faults.next({ kind: 'http500', path: CREATE, times: 2 });
  const err = await failure(t, provider.placeHold(hold()));
  t.type(err, ProviderUnavailable);
  t.equal(server.state.callsTo('POST', CREATE).length, 2, 'one retry');

  server.faults.next({ kind: 'http500', path: CREATE });
  const placed = await provider.placeHold(hold());
  t.match(placed, { status: 'held' }, 'a single 500 is absorbed by the retry');
  t.same(server.state.callsTo('POST', CREATE).slice(2).map((c) => c.status), [500, 200]);

  // The SDK retries a reset connection once even with maxNetworkRetries 0 (same key): two resets fail.
  const noRetries = providerFor(server, { maxNetworkRetries: 0 });
  server.faults.next({ kind: 'close', path: /\/v1\/payment_intents\/pi_/, times: 2 });
  t.type(await failure(t, noRetries.retrieve(placed.holdId)), ProviderUnavailable);
  t.equal(server.state.callsTo('GET', /\/v1\/payment_intents\/pi_/).length, 2);
  t.same(server.faults.pending(), []);
});

t.test('destination charges: transfer_data + application_fee_amount; the fee restated pro rata on capture', async (t) => {
  const { server, provider } = await setup(t);
  // Hold 1999 at the host's 12.5 %: floor(1999 × 1250 / 10 000) = floor(249.875) = 249 (stated by the caller).
  const destination = { accountId: 'acct_host1', applicationFeeMinor: 249 };
  const a = await provider.placeHold(hold(1, { amountMinor: 1999, destination }));
  t.match(server.state.paymentIntents.get(a.holdId), {
    transfer_data: { destination: 'acct_host1' },
    application_fee_amount: 249,
    metadata: { call_id: CALL, window: '1', platform_fee_minor: '249' },
  });
  t.match(server.state.callsTo('POST', CREATE)[0]?.params, {
    transfer_data: { destination: 'acct_host1' },
    application_fee_amount: '249',
    capture_method: 'manual',
    confirm: 'true',
  });
  // Partial capture 1001: floor(1001 × 249 / 1999) = floor(124.69) = 124.
  t.equal(captureFeeMinor(1001, 1999, 249), 124);
  await provider.capture({ holdId: a.holdId, amountMinor: 1001, idempotencyKey: key(1, 'capture') });
  t.same(server.state.callsTo('POST', CAPTURE)[0]?.params, { amount_to_capture: '1001', application_fee_amount: '124' });
  t.equal(server.state.paymentIntents.get(a.holdId)?.application_fee_amount, 124);

  // A hold placed by another process (restart): the provider reads the fee back from the PaymentIntent.
  const b = await providerFor(server).placeHold(hold(2, { amountMinor: 1999, destination }));
  const gets = server.state.callsTo('GET', /\/v1\/payment_intents\/pi_/).length;
  await provider.capture({ holdId: b.holdId, amountMinor: 1999, idempotencyKey: key(2, 'capture') });
  t.equal(server.state.callsTo('GET', /\/v1\/payment_intents\/pi_/).length, gets + 1, 'one retrieve first');
  t.same(server.state.callsTo('POST', CAPTURE)[1]?.params, { amount_to_capture: '1999', application_fee_amount: '249' }, 'full capture: the hold fee');

  // Without a stated fee, the configured platformFeeBps applies (floor).
  const fallback = providerFor(server, { platformFeeBps: 1000 });
  const c = await fallback.placeHold(hold(3, { amountMinor: 1999, destination: { accountId: 'acct_host1' } }));
  t.equal(server.state.paymentIntents.get(c.holdId)?.application_fee_amount, 199, 'floor(199.9)');
  t.throws(() => providerFor(server, { platformFeeBps: 10_001 }), /basis points/);
});

t.test('capture twice: the second (new key) fails as invalid_state, the same key replays; one capture', async (t) => {
  const { server, provider } = await setup(t);
  const { holdId } = await provider.placeHold(hold());
  t.same(await provider.capture({ holdId, amountMinor: 1200, idempotencyKey: key(1, 'capture') }), { captured: 1200 });
  t.same(await provider.capture({ holdId, amountMinor: 1200, idempotencyKey: key(1, 'capture') }), { captured: 1200 }, 'retry: replayed');
  const second = await failure(t, provider.capture({ holdId, amountMinor: 800, idempotencyKey: 'a-different-key' }));
  t.match(second, { code: 'invalid_state', details: { hold_status: 'captured', stripe_status: 'succeeded' } });
  const released = await failure(t, provider.release({ holdId, idempotencyKey: key(1, 'release') }));
  t.match(released, { code: 'invalid_state', details: { hold_status: 'captured' } }, 'a captured hold cannot be released');
  t.equal(server.state.historyOf(holdId, 'capture').length, 1, 'captured exactly once');
  t.same(server.state.callsTo('POST', CAPTURE).map((c) => [c.status, c.replayed]), [[200, false], [200, true], [400, false]]);
  t.same(await provider.retrieve(holdId), { status: 'captured', amountCapturedMinor: 1200 });
  await t.rejects(provider.capture({ holdId, amountMinor: 0, idempotencyKey: 'zero' }), { code: 'internal_error' }, 'zero is a release, not a capture');
});

t.test('a wrong secret key is an internal error, not retried', async (t) => {
  const { server } = await setup(t);
  const provider = new StripeProvider({
    secretKey: 'sk_test_not_the_key',
    apiBase: { host: server.host, port: server.port, protocol: 'http' },
    timeoutMs: 2000,
    maxNetworkRetries: 2,
  });
  const err = await failure(t, provider.placeHold(hold()));
  t.match(err, { code: 'internal_error', details: { stripe_type: 'StripeAuthenticationError' } });
  t.notOk(err instanceof ProviderUnavailable);
  t.equal(server.state.calls.length, 1, 'no retries on 401');
  t.same(server.state.internalErrors, []);
});
