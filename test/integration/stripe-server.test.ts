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
