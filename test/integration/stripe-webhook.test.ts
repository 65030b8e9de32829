// verifyStripeWebhook (the SDK's constructEvent, 300 s tolerance) against events signed and POSTed by the
// Stripe-compatible test server, received by a plain node:http endpoint that hands it the raw body.
import t from 'tap';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyStripeWebhook } from '../../src/billing/providers/stripe.ts';
import { AppError } from '../../src/shared/errors.ts';
import { startStripeServer } from '../stripe-server/server.ts';

interface Received {
  status: number;
  body: { received?: string; type?: string; object_id?: string; error?: { code: string; message: string } };
}

/** A webhook endpoint: verifies with the secret and answers 200 with the event id, or the AppError. */
async function startReceiver(secret: string) {
  const events: unknown[] = [];
  const http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const event = verifyStripeWebhook(Buffer.concat(chunks), req.headers['stripe-signature'], secret);
        events.push(event);
        const object = event.data.object as { id?: string };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ received: event.id, type: event.type, object_id: object.id }));
      } catch (err) {
        const e = err instanceof AppError ? err : new AppError('internal_error', String(err));
        res.writeHead(e.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(e.toBody()));
      }
    });
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const { port } = http.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1/webhooks/stripe`, events, close: () => new Promise<void>((r) => http.close(() => r())) };
}

const parse = (body: string) => JSON.parse(body) as Received['body'];

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'accepted';
  } catch (err) {
    return err instanceof AppError ? `${err.code}: ${err.message}` : `not an AppError: ${String(err)}`;
  }
}

t.test('a correctly signed event from the server is accepted and returned', async (t) => {
  const stripe = await startStripeServer();
  const receiver = await startReceiver(stripe.webhookSecret);
  t.teardown(async () => {
    await receiver.close();
    await stripe.close();
  });
  const d = await stripe.sendWebhook(receiver.url, {
    type: 'payment_intent.amount_capturable_updated',
    data: { object: { id: 'pi_123', object: 'payment_intent', status: 'requires_capture' } },
  });
  t.equal(d.status, 200, d.body);
  t.match(d.header, /^t=\d+,v1=[0-9a-f]{64}$/, 'Stripe-Signature as Stripe writes it');
  t.same(parse(d.body), { received: d.event.id, type: 'payment_intent.amount_capturable_updated', object_id: 'pi_123' });
  t.equal(receiver.events.length, 1);
  t.match(receiver.events[0], { id: /^evt_/, object: 'event', livemode: false, data: { object: { id: 'pi_123' } } });
});

t.test('a hold Stripe cancels itself is announced as payment_intent.canceled, verifiably', async (t) => {
  const stripe = await startStripeServer();
  const receiver = await startReceiver(stripe.webhookSecret);
  t.teardown(async () => {
    await receiver.close();
    await stripe.close();
  });
  const res = await fetch(`${stripe.url}/v1/payment_intents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stripe.secretKey}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'amount=1000&currency=usd&payment_method=pm_card_visa&confirm=true&capture_method=manual&payment_method_types[0]=card',
  });
  const pi = (await res.json()) as { id: string };
  const { paymentIntent, delivery } = await stripe.cancelHold(pi.id, 'automatic', { webhookUrl: receiver.url });
  t.match(paymentIntent, { id: pi.id, status: 'canceled', cancellation_reason: 'automatic', amount_capturable: 0 });
  t.equal(delivery?.status, 200, delivery?.body ?? 'no delivery');
  t.match(receiver.events[0], {
    type: 'payment_intent.canceled',
    data: { object: { id: pi.id, status: 'canceled', cancellation_reason: 'automatic' } },
  });
  t.same(stripe.state.historyOf(pi.id).map((h) => h.op), ['create', 'confirm', 'expire']);
});

t.test('a bad signature is refused with 400 validation_failed', async (t) => {
  const stripe = await startStripeServer();
  const receiver = await startReceiver(stripe.webhookSecret);
  t.teardown(async () => {
    await receiver.close();
    await stripe.close();
  });
  const event = { type: 'payment_intent.canceled', data: { object: { id: 'pi_1' } } };
  const wrongSecret = await stripe.sendWebhook(receiver.url, event, { secret: 'whsec_not_the_one' });
  t.equal(wrongSecret.status, 400);
  t.match(parse(wrongSecret.body).error, { code: 'validation_failed', message: 'Stripe webhook: signature does not match the payload' });
  const missing = await stripe.sendWebhook(receiver.url, event, { header: '' });
  t.equal(missing.status, 400);
  t.match(parse(missing.body).error, { code: 'validation_failed', message: /missing Stripe-Signature/ });
  const garbage = await stripe.sendWebhook(receiver.url, event, { header: 'v1=abc' });
  t.equal(garbage.status, 400);
  t.equal(receiver.events.length, 0, 'nothing accepted');

  // A valid header for one payload does not cover another (tampering), nor a v0 scheme signature.
  const payload = JSON.stringify({ id: 'evt_1', object: 'event', type: 'x', data: { object: {} } });
  const header = stripe.signWebhook(payload);
  t.equal(codeOf(() => verifyStripeWebhook(payload, header, stripe.webhookSecret)), 'accepted');
  t.match(codeOf(() => verifyStripeWebhook(payload.replace('"x"', '"y"'), header, stripe.webhookSecret)), /^validation_failed: .*does not match/);
  t.match(codeOf(() => verifyStripeWebhook(payload, header.replace('v1=', 'v0='), stripe.webhookSecret)), /^validation_failed/);
  t.match(codeOf(() => verifyStripeWebhook('not json', stripe.signWebhook('not json'), stripe.webhookSecret)), /^validation_failed: .*not JSON/);
});

t.test('a timestamp older than 300 s is refused; up to 300 s is accepted', async (t) => {
  const stripe = await startStripeServer();
  const receiver = await startReceiver(stripe.webhookSecret);
  t.teardown(async () => {
    await receiver.close();
    await stripe.close();
  });
  const event = { type: 'payment_intent.canceled', data: { object: { id: 'pi_1' } } };
  const nowS = Math.floor(Date.now() / 1000);
  const stale = await stripe.sendWebhook(receiver.url, event, { timestamp: nowS - 301 });
  t.equal(stale.status, 400);
  t.match(parse(stale.body).error, { code: 'validation_failed', message: 'Stripe webhook: signature timestamp is older than 300 s' });
  t.equal(receiver.events.length, 0);

  // Exact boundary, with the receive time given explicitly (the SDK's receivedAt, in milliseconds).
  const payload = JSON.stringify({ id: 'evt_2', object: 'event', type: 'x', data: { object: {} } });
  const t0 = 1_700_000_000;
  const header = stripe.signWebhook(payload, t0);
  t.equal(codeOf(() => verifyStripeWebhook(payload, header, stripe.webhookSecret, 300, (t0 + 300) * 1000)), 'accepted');
  t.match(codeOf(() => verifyStripeWebhook(payload, header, stripe.webhookSecret, 300, (t0 + 301) * 1000)), /older than 300 s/);
  t.match(codeOf(() => verifyStripeWebhook(payload, header, stripe.webhookSecret, 60, (t0 + 61) * 1000)), /older than 60 s/);
  t.throws(() => verifyStripeWebhook(payload, header, stripe.webhookSecret, 0), /toleranceSeconds must be positive/);
});
