// StripeProvider and Stripe's rule for cards used more than once: a PaymentMethod that paid without being
// attached to a Customer "may not be used again", so window 2, 3, … of a call could never be held on the
// guest's card. Each call gets one Customer (or the caller's `customerRef`); window 1 saves the card to it
// (`setup_future_usage: off_session`), later windows hold it off-session. Checked through the official SDK
// against the test server, which enforces the rule (test/stripe-server/payment-methods.ts).
import Stripe from 'stripe';
import t, { type Test } from 'tap';
import { idempotencyKey } from '../../src/billing/idempotency.ts';
import { AppError } from '../../src/shared/errors.ts';
import { canonical } from '../stripe-server/form.ts';
import { SPENT_MESSAGE, startStripeServer } from '../stripe-server/server.ts';
import { failure, providerFor } from '../helpers/stripe.ts';

const CALL = '01JCALLCUSTOMER00000000000';
const key = (window: number, op: 'hold' | 'capture' | 'release') => idempotencyKey(CALL, window, op);
const CUSTOMER_KEY = `callplane:${CALL}:w1:customer`;
const PI_CREATE = /^\/v1\/payment_intents$/;
const CUSTOMER_CREATE = /^\/v1\/customers$/;

async function setup(t: Test) {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const sdk = new Stripe(server.secretKey, { host: server.host, port: server.port, protocol: 'http', maxNetworkRetries: 0, telemetry: false });
  return { server, sdk, provider: providerFor(server) };
}


/** A guest's card as Stripe.js hands it over: a PaymentMethod of its own, attached to nobody. */
async function guestCard(sdk: Stripe, token = 'tok_visa'): Promise<string> {
  const pm = await sdk.paymentMethods.create({ type: 'card', card: { token } });
  return pm.id;
}

const hold = (window: number, paymentMethodId: string, extra: Record<string, unknown> = {}) => ({
  callId: CALL,
  window,
  amountMinor: 2000,
  currency: 'usd',
  paymentMethodId,
  idempotencyKey: key(window, 'hold'),
  ...extra,
});


t.test('three windows on one card: one Customer, the card saved on window 1 and held off-session after', async (t) => {
  const { server, sdk, provider } = await setup(t);
  const pm = await guestCard(sdk);
  const holds = [];
  for (const window of [1, 2, 3]) holds.push(await provider.placeHold(hold(window, pm)));
  t.same(holds.map((h) => h.status), ['held', 'held', 'held']);
  t.equal(new Set(holds.map((h) => h.holdId)).size, 3, 'three PaymentIntents');

  t.equal(server.state.customers.size, 1, 'one Customer for the call');
  const [customer] = [...server.state.customers.values()];
  t.match(customer, { id: /^cus_/, object: 'customer', metadata: { call_id: CALL } });
  const customerCalls = server.state.callsTo('POST', CUSTOMER_CREATE);
  t.same(customerCalls.map((c) => [c.idempotencyKey, c.status]), [[CUSTOMER_KEY, 200]], 'created once, under the call\'s key');
  t.same(customerCalls[0]?.params, { metadata: { call_id: CALL } });
  t.equal(server.state.paymentMethods.get(pm)?.customer, customer!.id, 'window 1 attached the card to it');

  const creates = server.state.callsTo('POST', PI_CREATE);
  t.same(creates.map((c) => c.idempotencyKey), [key(1, 'hold'), key(2, 'hold'), key(3, 'hold')]);
  t.match(creates[0]?.params, { customer: customer!.id, payment_method: pm, setup_future_usage: 'off_session', confirm: 'true', capture_method: 'manual' });
  t.notOk('off_session' in (creates[0]?.params ?? {}), 'window 1: the guest is present');
  for (const later of creates.slice(1)) {
    t.match(later.params, { customer: customer!.id, payment_method: pm, off_session: 'true', confirm: 'true', capture_method: 'manual' });
    t.notOk('setup_future_usage' in later.params, 'later windows: off-session, nothing more to save');
  }
  for (const [i, { holdId }] of holds.entries()) {
    t.match(server.state.paymentIntents.get(holdId), {
      status: 'requires_capture', customer: customer!.id, payment_method: pm, amount_capturable: 2000, metadata: { call_id: CALL, window: String(i + 1) },
    });
  }
  t.equal(server.state.paymentIntents.get(holds[0]!.holdId)?.setup_future_usage, 'off_session');

  // The holds settle as any other.
  t.same(await provider.capture({ holdId: holds[0]!.holdId, amountMinor: 2000, idempotencyKey: key(1, 'capture') }), { captured: 2000 });
  t.same(await provider.capture({ holdId: holds[1]!.holdId, amountMinor: 900, idempotencyKey: key(2, 'capture') }), { captured: 900 });
  await provider.release({ holdId: holds[2]!.holdId, idempotencyKey: key(3, 'release') });
  t.same(await provider.retrieve(holds[2]!.holdId), { status: 'released', amountCapturedMinor: 0 });
  t.same(server.state.internalErrors, []);
});

t.test('the rule is enforced: a card paid without a Customer is refused the second time', async (t) => {
  const { server, sdk } = await setup(t);
  // What the provider used to send: every window a PaymentIntent with the guest's card and no customer.
  const pm = await guestCard(sdk);
  const plain = { amount: 2000, currency: 'usd', payment_method: pm, payment_method_types: ['card'], confirm: true, capture_method: 'manual' as const };
  const first = await sdk.paymentIntents.create({ ...plain, metadata: { window: '1' } });
  t.equal(first.status, 'requires_capture', 'window 1 is held');
  const second = await failure(t, sdk.paymentIntents.create({ ...plain, metadata: { window: '2' } }));
  t.type(second, Stripe.errors.StripeInvalidRequestError);
  t.match(second, { statusCode: 400, type: 'StripeInvalidRequestError', code: 'payment_method_unexpected_state', param: 'payment_method', message: SPENT_MESSAGE });
  t.equal(SPENT_MESSAGE, 'This PaymentMethod was previously used without being attached to a Customer or was detached from a Customer, and may not be used again.');
  t.equal(server.state.paymentIntents.size, 1, 'window 2 was never held');
  t.equal(server.state.paymentMethods.get(pm)?.customer, null);

  // Naming a Customer is not enough: without setup_future_usage the card is spent all the same …
  const customer = await sdk.customers.create({ metadata: { call_id: CALL } });
  const card2 = await guestCard(sdk);
  await sdk.paymentIntents.create({ ...plain, payment_method: card2, customer: customer.id });
  t.match(await failure(t, sdk.paymentIntents.create({ ...plain, payment_method: card2, customer: customer.id, off_session: true })), {
    code: 'payment_method_unexpected_state',
  });
  // … and a spent card cannot be attached afterwards either.
  t.match(await failure(t, sdk.paymentMethods.attach(card2, { customer: customer.id })), { code: 'payment_method_unexpected_state', message: SPENT_MESSAGE });

  // Saved with setup_future_usage: reusable, but only for its own Customer.
  const card3 = await guestCard(sdk);
  await sdk.paymentIntents.create({ ...plain, payment_method: card3, customer: customer.id, setup_future_usage: 'off_session' });
  t.equal((await sdk.paymentMethods.retrieve(card3)).customer, customer.id);
  const again = await sdk.paymentIntents.create({ ...plain, payment_method: card3, customer: customer.id, off_session: true });
  t.equal(again.status, 'requires_capture');
  t.match(await failure(t, sdk.paymentIntents.create({ ...plain, payment_method: card3 })), { statusCode: 400, param: 'customer' }, 'no customer');
  const other = await sdk.customers.create({});
  t.match(await failure(t, sdk.paymentIntents.create({ ...plain, payment_method: card3, customer: other.id, off_session: true })), {
    statusCode: 400, code: 'resource_missing', param: 'payment_method',
  }, 'another customer');
  t.same(server.state.internalErrors, []);
});

t.test('a placeHold repeated after a crash is replayed: one Customer, one PaymentIntent, identical requests', async (t) => {
  const { server, sdk, provider } = await setup(t);
  const pm = await guestCard(sdk);
  const first = await provider.placeHold(hold(1, pm));
  const restarted = providerFor(server); // nothing remembered
  const again = await restarted.placeHold(hold(1, pm));
  t.equal(again.holdId, first.holdId);
  const customerCalls = server.state.callsTo('POST', CUSTOMER_CREATE);
  t.same(customerCalls.map((c) => [c.idempotencyKey, c.status, c.replayed]), [[CUSTOMER_KEY, 200, false], [CUSTOMER_KEY, 200, true]]);
  const creates = server.state.callsTo('POST', PI_CREATE);
  t.same(creates.map((c) => [c.idempotencyKey, c.status, c.replayed]), [[key(1, 'hold'), 200, false], [key(1, 'hold'), 200, true]]);
  t.equal(canonical(creates[1]?.params), canonical(creates[0]?.params), 'the same parameters');
  t.equal(server.state.customers.size, 1);
  t.equal(server.state.paymentIntents.size, 1);

  // Window 2 from yet another process: the same Customer (the one the card is attached to), and its
  // repetition is replayed too.
  const customerId = [...server.state.customers.keys()][0];
  const w2 = await providerFor(server).placeHold(hold(2, pm));
  const w2again = await providerFor(server).placeHold(hold(2, pm));
  t.equal(w2again.holdId, w2.holdId);
  const w2creates = server.state.callsTo('POST', PI_CREATE).slice(2);
  t.same(w2creates.map((c) => [c.idempotencyKey, c.status, c.replayed]), [[key(2, 'hold'), 200, false], [key(2, 'hold'), 200, true]]);
  t.match(w2creates[0]?.params, { customer: customerId, off_session: 'true' });
  t.equal(canonical(w2creates[1]?.params), canonical(w2creates[0]?.params));
  t.equal(server.state.customers.size, 1, 'still one Customer');
  t.equal(server.state.paymentIntents.size, 2);
  t.same(server.state.internalErrors, []);
});

t.test('a crash between the Customer and the hold, and a lost Customer answer: still one of each', async (t) => {
  const { server, sdk } = await setup(t);
  const pm = await guestCard(sdk);
  // The Customer is made, then the hold's request fails before Stripe sees it (the process dies, say).
  server.faults.next({ kind: 'http500', path: PI_CREATE });
  const provider = providerFor(server);
  t.match(await failure(t, provider.placeHold(hold(1, pm))), { code: 'service_unavailable', retryable: true });
  t.equal(server.state.customers.size, 1);
  t.equal(server.state.paymentIntents.size, 0);
  const placed = await providerFor(server).placeHold(hold(1, pm));
  t.equal(server.state.customers.size, 1, 'the retry found the same Customer');
  t.equal(server.state.paymentIntents.get(placed.holdId)?.customer, [...server.state.customers.keys()][0]);

  // Another call: Stripe made its Customer but the answer was lost; the retry gets the saved answer.
  const CALL2 = '01JCALLCUSTOMER00000000002';
  const pm2 = await guestCard(sdk, 'tok_mastercard');
  server.faults.next({ kind: 'http500', path: CUSTOMER_CREATE, process: true });
  const lost = await failure(t, provider.placeHold({ ...hold(1, pm2), callId: CALL2, idempotencyKey: idempotencyKey(CALL2, 1, 'hold') }));
  t.match(lost, { code: 'service_unavailable' });
  const ok = await provider.placeHold({ ...hold(1, pm2), callId: CALL2, idempotencyKey: idempotencyKey(CALL2, 1, 'hold') });
  t.equal(server.state.customers.size, 2, 'one Customer per call');
  const calls2 = server.state.callsTo('POST', CUSTOMER_CREATE).filter((c) => c.idempotencyKey === idempotencyKey(CALL2, 1, 'customer'));
  t.same(calls2.map((c) => [c.status, c.replayed]), [[500, false], [200, true]]);
  const customer2 = [...server.state.customers.values()].find((c) => c.metadata.call_id === CALL2);
  t.equal(server.state.paymentIntents.get(ok.holdId)?.customer, customer2?.id);
  t.same(server.state.internalErrors, []);
});

t.test('customerRef: the caller\'s Customer is used and none is created', async (t) => {
  const { server, sdk, provider } = await setup(t);
  const operator = await sdk.customers.create({ name: 'Operator customer', email: 'billing@example.com' });
  const saved = await guestCard(sdk);
  await sdk.paymentMethods.attach(saved, { customer: operator.id });
  const before = server.state.callsTo('POST', CUSTOMER_CREATE).length;

  const held = [];
  for (const window of [1, 2, 3]) held.push(await provider.placeHold(hold(window, saved, { customerRef: operator.id })));
  t.equal(server.state.callsTo('POST', CUSTOMER_CREATE).length, before, 'no Customer created');
  t.equal(server.state.customers.size, 1);
  t.same(held.map((h) => server.state.paymentIntents.get(h.holdId)?.customer), [operator.id, operator.id, operator.id]);
  const creates = server.state.callsTo('POST', PI_CREATE);
  t.match(creates[0]?.params, { customer: operator.id, setup_future_usage: 'off_session' });
  t.match(creates[2]?.params, { customer: operator.id, off_session: 'true' });

  // A card not yet saved: window 1 attaches it to the caller's Customer.
  const CALL2 = '01JCALLCUSTOMER00000000003';
  const fresh = await guestCard(sdk, 'tok_amex');
  for (const window of [1, 2]) {
    const placed = await provider.placeHold({ ...hold(window, fresh, { customerRef: operator.id }), callId: CALL2, idempotencyKey: idempotencyKey(CALL2, window, 'hold') });
    t.equal(server.state.paymentIntents.get(placed.holdId)?.status, 'requires_capture');
  }
  t.equal(server.state.paymentMethods.get(fresh)?.customer, operator.id);
  t.equal(server.state.customers.size, 1, 'still only the operator\'s');

  // An unknown Customer: Stripe's 400 (not retryable), nothing held.
  const CALL3 = '01JCALLCUSTOMER00000000004';
  const unknown = await failure(t, provider.placeHold({ ...hold(1, await guestCard(sdk), { customerRef: 'cus_nope' }), callId: CALL3, idempotencyKey: idempotencyKey(CALL3, 1, 'hold') }));
  t.type(unknown, AppError);
  t.match(unknown, { code: 'internal_error', details: { stripe_code: 'resource_missing' } });
  t.equal(server.state.paymentIntents.size, 5);
  t.same(server.state.internalErrors, []);
});

t.test('Stripe\'s test token (pm_card_visa): every use a fresh card; window 1\'s is saved to the Customer', async (t) => {
  const { server, provider } = await setup(t);
  const holds = [];
  for (const window of [1, 2, 3]) holds.push(await provider.placeHold(hold(window, 'pm_card_visa')));
  const intents = holds.map((h) => server.state.paymentIntents.get(h.holdId)!);
  t.same(intents.map((pi) => pi.status), ['requires_capture', 'requires_capture', 'requires_capture']);
  const cards = intents.map((pi) => pi.payment_method);
  t.equal(new Set(cards).size, 3, 'three fresh PaymentMethods');
  t.notOk(cards.includes('pm_card_visa'));
  const [customer] = [...server.state.customers.keys()];
  t.same(intents.map((pi) => pi.customer), [customer, customer, customer]);
  t.equal(server.state.paymentMethods.get(cards[0]!)?.customer, customer, 'window 1\'s card saved');
});
