// The Stripe-compatible test server itself, over raw HTTP: it is the oracle the provider tests trust, so its
// wire behaviour (auth, form nesting, error objects, idempotent replay, faults, webhooks) is checked here.
import t from 'tap';
import { startStripeServer, type StripeServer } from '../stripe-server/server.ts';

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown> & { error?: Record<string, unknown> };
}

async function post(server: StripeServer, path: string, body: string, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${server.secretKey}`,
      'content-type': 'application/x-www-form-urlencoded',
      ...headers,
    },
    body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: JSON.parse(text) };
}

const HOLD = 'amount=1500&currency=usd&payment_method=pm_card_visa&confirm=true&capture_method=manual&payment_method_types[0]=card';

t.test('auth: no key and a wrong key get 401 with an error object', async (t) => {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const none = await fetch(`${server.url}/v1/payment_intents/pi_x`);
  t.equal(none.status, 401);
  const noneBody = (await none.json()) as { error: { type: string; message: string } };
  t.equal(noneBody.error.type, 'invalid_request_error');
  t.match(noneBody.error.message, /did not provide an API key/);
  const wrong = await post(server, '/v1/payment_intents', HOLD, { authorization: 'Bearer sk_test_wrongwrongwrong' });
  t.equal(wrong.status, 401);
  t.match(wrong.json.error?.message, /^Invalid API Key provided: sk_test_\**rong$/);
  t.equal(server.state.paymentIntents.size, 0, 'nothing created without a valid key');
});

t.test('create: bracket-nested form fields land in the PaymentIntent', async (t) => {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const r = await post(
    server,
    '/v1/payment_intents',
    `${HOLD}&metadata[call_id]=01JCALL&metadata[window]=3&transfer_data[destination]=acct_host1&application_fee_amount=150&description=a%20call`,
  );
  t.equal(r.status, 200);
  t.match(r.json, {
    object: 'payment_intent',
    id: /^pi_/,
    status: 'requires_capture',
    amount: 1500,
    amount_capturable: 1500,
    amount_received: 0,
    currency: 'usd',
    capture_method: 'manual',
    metadata: { call_id: '01JCALL', window: '3' },
    transfer_data: { destination: 'acct_host1' },
    application_fee_amount: 150,
    payment_method_types: ['card'],
    latest_charge: /^ch_/,
    description: 'a call',
    livemode: false,
  });
  t.type(r.json.created, 'number');
  t.match(r.headers.get('request-id'), /^req_/);
});

t.test('parameter errors: unknown parameter, missing amount, fee without destination, unknown id', async (t) => {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const unknown = await post(server, '/v1/payment_intents', `${HOLD}&colour=red`);
  t.equal(unknown.status, 400);
  t.match(unknown.json.error, { type: 'invalid_request_error', code: 'parameter_unknown', param: 'colour' });
  const missing = await post(server, '/v1/payment_intents', 'currency=usd');
  t.match(missing.json.error, { code: 'parameter_missing', param: 'amount' });
  const fee = await post(server, '/v1/payment_intents', `${HOLD}&application_fee_amount=10`);
  t.match(fee.json.error, { type: 'invalid_request_error', param: 'application_fee_amount' });
  const noPi = await post(server, '/v1/payment_intents/pi_nope/capture', '');
  t.equal(noPi.status, 404);
  t.match(noPi.json.error, { code: 'resource_missing', message: "No such payment_intent: 'pi_nope'" });
  const redirect = await post(server, '/v1/payment_intents', 'amount=1500&currency=usd&payment_method=pm_card_visa&confirm=true');
  t.equal(redirect.status, 400, 'automatic payment methods need a return_url, as on Stripe');
  t.match(redirect.json.error?.message, /return_url/);
  t.equal(server.state.paymentIntents.size, 0);
});

t.test('idempotency: same key + same params replays byte for byte; other params give idempotency_error', async (t) => {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const first = await post(server, '/v1/payment_intents', HOLD, { 'idempotency-key': 'k-1' });
  const again = await post(server, '/v1/payment_intents', HOLD, { 'idempotency-key': 'k-1' });
  t.equal(again.status, 200);
  t.equal(again.text, first.text, 'identical body');
  t.equal(again.headers.get('idempotent-replayed'), 'true');
  t.equal(again.headers.get('original-request'), first.headers.get('request-id'));
  t.equal(first.headers.get('idempotent-replayed'), null);
  t.equal(server.state.paymentIntents.size, 1, 'one PaymentIntent');
  const other = await post(server, '/v1/payment_intents', HOLD.replace('1500', '1600'), { 'idempotency-key': 'k-1' });
  t.equal(other.status, 400);
  t.match(other.json.error, { type: 'idempotency_error', message: /same parameters/ });
  const otherPath = await post(server, `/v1/payment_intents/${String(first.json.id)}/cancel`, '', { 'idempotency-key': 'k-1' });
  t.match(otherPath.json.error, { type: 'idempotency_error' }, 'a key is bound to its endpoint too');
  t.equal(server.state.historyOf(String(first.json.id), 'cancel').length, 0, 'not canceled');
  t.same(
    server.state.calls.map((c) => [c.idempotencyKey, c.status, c.replayed]),
    [['k-1', 200, false], ['k-1', 200, true], ['k-1', 400, false], ['k-1', 400, false]],
  );
});

t.test('declines: 402 card_error carrying the failed PaymentIntent; replayed under the same key', async (t) => {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const body = HOLD.replace('pm_card_visa', 'pm_card_chargeDeclined');
  const r = await post(server, '/v1/payment_intents', body, { 'idempotency-key': 'd-1' });
  t.equal(r.status, 402);
  t.match(r.json.error, {
    type: 'card_error',
    code: 'card_declined',
    decline_code: 'generic_decline',
    message: 'Your card was declined.',
    charge: /^ch_/,
    payment_intent: { id: /^pi_/, status: 'requires_payment_method', last_payment_error: { decline_code: 'generic_decline' } },
  });
  const again = await post(server, '/v1/payment_intents', body, { 'idempotency-key': 'd-1' });
  t.equal(again.status, 402);
  t.equal(again.headers.get('idempotent-replayed'), 'true');
  t.equal(server.state.paymentIntents.size, 1);
  const funds = await post(server, '/v1/payment_intents', HOLD.replace('pm_card_visa', 'pm_card_insufficientFunds'));
  t.match(funds.json.error, { code: 'card_declined', decline_code: 'insufficient_funds' });
  server.faults.next({ kind: 'decline', declineCode: 'stolen_card' });
  const faulted = await post(server, '/v1/payment_intents', HOLD);
  t.match(faulted.json.error, { type: 'card_error', decline_code: 'stolen_card' }, 'a decline fault declines a good card');
  const ok = await post(server, '/v1/payment_intents', HOLD);
  t.equal(ok.status, 200, 'the fault fired once');
});

t.test('capture and cancel state machine', async (t) => {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const pi = (await post(server, '/v1/payment_intents', HOLD)).json;
  const path = `/v1/payment_intents/${String(pi.id)}`;
  const tooMuch = await post(server, `${path}/capture`, 'amount_to_capture=1501');
  t.match(tooMuch.json.error, { code: 'amount_too_large', param: 'amount_to_capture' });
  const cap = await post(server, `${path}/capture`, 'amount_to_capture=700');
  t.match(cap.json, { status: 'succeeded', amount_received: 700, amount_capturable: 0 });
  const twice = await post(server, `${path}/capture`, 'amount_to_capture=700');
  t.equal(twice.status, 400);
  t.match(twice.json.error, { code: 'payment_intent_unexpected_state', payment_intent: { status: 'succeeded' } });
  const cancel = await post(server, `${path}/cancel`, '');
  t.match(cancel.json.error, { code: 'payment_intent_unexpected_state' });
  t.same(server.state.historyOf(String(pi.id)).map((h) => h.op), ['create', 'confirm', 'capture']);

  const other = (await post(server, '/v1/payment_intents', HOLD)).json;
  const canceled = await post(server, `/v1/payment_intents/${String(other.id)}/cancel`, 'cancellation_reason=abandoned');
  t.match(canceled.json, { status: 'canceled', cancellation_reason: 'abandoned', amount_capturable: 0 });
  const capAfter = await post(server, `/v1/payment_intents/${String(other.id)}/capture`, '');
  t.match(capAfter.json.error, { code: 'payment_intent_unexpected_state', payment_intent: { status: 'canceled' } });
});

t.test('faults: http500, close, timeout; process=true keeps the result for the key', async (t) => {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const f500 = server.faults.next({ kind: 'http500', path: /^\/v1\/payment_intents$/ });
  const r500 = await post(server, '/v1/payment_intents', HOLD, { 'idempotency-key': 'f-1' });
  t.equal(r500.status, 500);
  t.match(r500.json.error, { type: 'api_error' });
  t.equal(f500.fired, 1);
  t.equal(server.state.paymentIntents.size, 0, 'a fault without process never reaches the API');
  const after = await post(server, '/v1/payment_intents', HOLD, { 'idempotency-key': 'f-1' });
  t.equal(after.status, 200, 'the same key executes afresh: nothing was saved for it');
  t.equal(after.headers.get('idempotent-replayed'), null);

  server.faults.next({ kind: 'close' });
  await t.rejects(post(server, '/v1/payment_intents', HOLD), 'connection closed without an answer');

  server.faults.next({ kind: 'timeout', process: true });
  const started = Date.now();
  await t.rejects(
    fetch(`${server.url}/v1/payment_intents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.secretKey}`, 'idempotency-key': 't-1' },
      body: HOLD,
      signal: AbortSignal.timeout(300),
    }),
  );
  t.ok(Date.now() - started < 5000, 'the client gave up; the server never answered');
  const hung = server.state.calls.at(-1);
  t.match(hung, { fault: 'timeout', status: null, idempotencyKey: 't-1' });
  t.equal(server.state.paymentIntents.size, 2, 'the operation ran (process=true); the closed one never did');
  const retry = await post(server, '/v1/payment_intents', HOLD, { 'idempotency-key': 't-1' });
  t.equal(retry.headers.get('idempotent-replayed'), 'true', 'the retry gets the stored answer');
  t.equal(server.state.paymentIntents.size, 2, 'no second PaymentIntent');
  t.same(server.faults.pending(), []);
  t.same(server.state.internalErrors, []);
});

t.test('close() ends a request held by a timeout fault', async (t) => {
  const server = await startStripeServer();
  server.faults.next({ kind: 'timeout' });
  const pending = fetch(`${server.url}/v1/payment_intents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.secretKey}` },
    body: HOLD,
  });
  await server.state.waitForCall((c) => c.fault === 'timeout'); // the server holds it now
  await server.close();
  await t.rejects(pending, 'the held request fails when the server closes');
});

async function get(server: StripeServer, path: string): Promise<Reply> {
  const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${server.secretKey}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: JSON.parse(text) };
}

const SPENT = 'This PaymentMethod was previously used without being attached to a Customer or was detached from a Customer, and may not be used again.';

t.test('customers: create (form body, metadata), Idempotency-Key replay, retrieve, unknown ones', async (t) => {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const body = 'metadata[call_id]=01JCALL&description=a%20guest&email=guest%40example.com&name=Guest%20One';
  const created = await post(server, '/v1/customers', body, { 'idempotency-key': 'c-1' });
  t.equal(created.status, 200);
  t.match(created.json, {
    id: /^cus_/, object: 'customer', metadata: { call_id: '01JCALL' }, description: 'a guest', email: 'guest@example.com', name: 'Guest One', livemode: false,
  });
  t.type(created.json.created, 'number');
  const again = await post(server, '/v1/customers', body, { 'idempotency-key': 'c-1' });
  t.equal(again.text, created.text, 'replayed byte for byte');
  t.equal(again.headers.get('idempotent-replayed'), 'true');
  const other = await post(server, '/v1/customers', 'metadata[call_id]=01JOTHER', { 'idempotency-key': 'c-1' });
  t.match(other.json.error, { type: 'idempotency_error' }, 'the key is bound to its parameters');
  t.equal(server.state.customers.size, 1);

  const got = await get(server, `/v1/customers/${String(created.json.id)}`);
  t.equal(got.status, 200);
  t.same(got.json, created.json);
  const missing = await get(server, '/v1/customers/cus_nope');
  t.equal(missing.status, 404);
  t.match(missing.json.error, { type: 'invalid_request_error', code: 'resource_missing', message: "No such customer: 'cus_nope'" });
  const unknownParam = await post(server, '/v1/customers', 'colour=red');
  t.match(unknownParam.json.error, { code: 'parameter_unknown', param: 'colour' });
  const bare = await post(server, '/v1/customers', '');
  t.match(bare.json, { id: /^cus_/, metadata: {}, email: null, name: null, description: null }, 'every field optional');

  // A PaymentIntent naming a customer that does not exist: 400 on the parameter, nothing created.
  const noCustomer = await post(server, '/v1/payment_intents', `${HOLD}&customer=cus_nope`);
  t.equal(noCustomer.status, 400);
  t.match(noCustomer.json.error, { type: 'invalid_request_error', code: 'resource_missing', param: 'customer', message: "No such customer: 'cus_nope'" });
  t.equal(server.state.paymentIntents.size, 0);
});

t.test('payment methods: tok_ tokens make cards; pm_card_ test tokens are a fresh card on every use', async (t) => {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const created = await post(server, '/v1/payment_methods', 'type=card&card[token]=tok_visa');
  t.equal(created.status, 200);
  t.match(created.json, { id: /^pm_/, object: 'payment_method', type: 'card', customer: null, card: { brand: 'visa', last4: '4242' } });
  t.notMatch(String(created.json.id), /^pm_card_/);
  t.same((await get(server, `/v1/payment_methods/${String(created.json.id)}`)).json, created.json);
  const badToken = await post(server, '/v1/payment_methods', 'type=card&card[token]=tok_nope');
  t.match(badToken.json.error, { code: 'resource_missing', param: 'card[token]' });
  t.equal((await get(server, '/v1/payment_methods/pm_nope')).status, 404);

  const a = await post(server, '/v1/payment_intents', HOLD);
  const b = await post(server, '/v1/payment_intents', HOLD);
  t.same([a.status, b.status], [200, 200], 'pm_card_visa can be used again and again');
  t.match(a.json.payment_method, /^pm_/);
  t.not(a.json.payment_method, 'pm_card_visa', 'the PaymentIntent carries the fresh card');
  t.not(a.json.payment_method, b.json.payment_method);
  t.equal(server.state.paymentMethods.size, 3);
  const reused = await post(server, '/v1/payment_intents', HOLD.replace('pm_card_visa', String(a.json.payment_method)));
  t.equal(reused.status, 400, 'but the card it became is spent like any other');
  t.match(reused.json.error, { code: 'payment_method_unexpected_state', message: SPENT });
});

t.test('reuse: a card that paid without a Customer is refused again, as on Stripe', async (t) => {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const pm = String((await post(server, '/v1/payment_methods', 'type=card&card[token]=tok_mastercard')).json.id);
  const hold = HOLD.replace('pm_card_visa', pm);
  const first = await post(server, '/v1/payment_intents', hold, { 'idempotency-key': 'r-1' });
  t.equal(first.status, 200);
  t.match(first.json, { status: 'requires_capture', payment_method: pm, customer: null, setup_future_usage: null });
  const second = await post(server, '/v1/payment_intents', hold, { 'idempotency-key': 'r-2' });
  t.equal(second.status, 400);
  t.same(second.json.error, {
    type: 'invalid_request_error',
    message: SPENT,
    doc_url: 'https://stripe.com/docs/error-codes/payment-method-unexpected-state',
    param: 'payment_method',
    code: 'payment_method_unexpected_state',
  });
  t.equal(server.state.paymentIntents.size, 1, 'no second PaymentIntent');
  t.equal((await post(server, '/v1/payment_intents', hold, { 'idempotency-key': 'r-1' })).headers.get('idempotent-replayed'), 'true', 'the first request still replays');

  // A PaymentIntent made before the card was spent elsewhere cannot be confirmed with it afterwards.
  const pm2 = String((await post(server, '/v1/payment_methods', 'type=card&card[token]=tok_visa')).json.id);
  const pending = await post(server, '/v1/payment_intents', `amount=1500&currency=usd&payment_method=${pm2}&capture_method=manual&payment_method_types[0]=card`);
  t.equal(pending.json.status, 'requires_confirmation');
  t.equal((await post(server, '/v1/payment_intents', HOLD.replace('pm_card_visa', pm2))).status, 200, 'spent by another PaymentIntent');
  const confirm = await post(server, `/v1/payment_intents/${String(pending.json.id)}/confirm`, '');
  t.equal(confirm.status, 400);
  t.match(confirm.json.error, { code: 'payment_method_unexpected_state', message: SPENT });
  t.equal(server.state.paymentIntents.get(String(pending.json.id))?.status, 'requires_confirmation', 'unchanged');
});

t.test('saved cards: setup_future_usage attaches to the customer; off_session reuses it; attach', async (t) => {
  const server = await startStripeServer();
  t.teardown(() => server.close());
  const customer = String((await post(server, '/v1/customers', 'metadata[call_id]=01JCALL')).json.id);
  const pm = String((await post(server, '/v1/payment_methods', 'type=card&card[token]=tok_visa')).json.id);
  const hold = HOLD.replace('pm_card_visa', pm);
  const w1 = await post(server, '/v1/payment_intents', `${hold}&customer=${customer}&setup_future_usage=off_session`);
  t.equal(w1.status, 200);
  t.match(w1.json, { status: 'requires_capture', customer, payment_method: pm, setup_future_usage: 'off_session' });
  t.equal((await get(server, `/v1/payment_methods/${pm}`)).json.customer, customer, 'attached once authorized');
  for (const window of [2, 3]) {
    const later = await post(server, '/v1/payment_intents', `${hold}&customer=${customer}&off_session=true&metadata[window]=${window}`);
    t.equal(later.status, 200);
    t.match(later.json, { status: 'requires_capture', customer, payment_method: pm, setup_future_usage: null });
  }
  const noCustomer = await post(server, '/v1/payment_intents', hold);
  t.equal(noCustomer.status, 400, 'a saved card needs its customer');
  t.match(noCustomer.json.error, { type: 'invalid_request_error', param: 'customer' });
  const stranger = String((await post(server, '/v1/customers', '')).json.id);
  const wrongCustomer = await post(server, '/v1/payment_intents', `${hold}&customer=${stranger}&off_session=true`);
  t.match(wrongCustomer.json.error, { code: 'resource_missing', param: 'payment_method' }, 'and no other customer');

  // off_session: only when confirming, and never together with setup_future_usage.
  const unconfirmed = await post(server, '/v1/payment_intents', `amount=1500&currency=usd&payment_method=${pm}&customer=${customer}&off_session=true&payment_method_types[0]=card`);
  t.equal(unconfirmed.status, 400);
  t.match(unconfirmed.json.error, { param: 'off_session', message: /only be used when `confirm` is `true`/ });
  const both = await post(server, '/v1/payment_intents', `${hold}&customer=${customer}&off_session=true&setup_future_usage=off_session`);
  t.match(both.json.error, { param: 'off_session', message: /setup_future_usage/ });
  t.match((await post(server, '/v1/payment_intents', `${hold}&customer=${customer}&setup_future_usage=later`)).json.error, { param: 'setup_future_usage' });

  // A 3-D Secure card off-session is declined rather than challenged.
  const sca = String((await post(server, '/v1/payment_methods', 'type=card&card[token]=tok_authenticationRequired')).json.id);
  await post(server, `/v1/payment_methods/${sca}/attach`, `customer=${customer}`);
  const offSca = await post(server, '/v1/payment_intents', `${HOLD.replace('pm_card_visa', sca)}&customer=${customer}&off_session=true`);
  t.equal(offSca.status, 402);
  t.match(offSca.json.error, { type: 'card_error', code: 'authentication_required' });

  // attach: a fresh card, a test token (a fresh copy), a spent one (refused), an unknown customer.
  const fresh = String((await post(server, '/v1/payment_methods', 'type=card&card[token]=tok_amex')).json.id);
  const attached = await post(server, `/v1/payment_methods/${fresh}/attach`, `customer=${customer}`);
  t.match(attached.json, { id: fresh, customer });
  const copy = await post(server, '/v1/payment_methods/pm_card_mastercard/attach', `customer=${customer}`);
  t.match(copy.json, { id: /^pm_/, customer, card: { brand: 'mastercard' } });
  t.not(copy.json.id, 'pm_card_mastercard');
  const spent = String((await post(server, '/v1/payment_methods', 'type=card&card[token]=tok_visa')).json.id);
  await post(server, '/v1/payment_intents', HOLD.replace('pm_card_visa', spent));
  const lateAttach = await post(server, `/v1/payment_methods/${spent}/attach`, `customer=${customer}`);
  t.match(lateAttach.json.error, { code: 'payment_method_unexpected_state', message: SPENT });
  t.match((await post(server, `/v1/payment_methods/${fresh}/attach`, 'customer=cus_nope')).json.error, { code: 'resource_missing', param: 'customer' });
  t.match((await post(server, `/v1/payment_methods/${fresh}/attach`, `customer=${stranger}`)).json.error, { param: 'payment_method' }, 'attached elsewhere');
  t.same(server.state.internalErrors, []);
});
