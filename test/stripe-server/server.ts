/**
 * A Stripe-compatible HTTP test server for the PaymentIntents API, for the official SDK pointed at it with
 * `new Stripe(server.secretKey, { host: server.host, port: server.port, protocol: 'http' })`.
 *
 *   POST /v1/payment_intents                 create (confirm=true confirms at once)
 *   GET  /v1/payment_intents/:id             retrieve
 *   POST /v1/payment_intents/:id/confirm     confirm
 *   POST /v1/payment_intents/:id/capture     capture (amount_to_capture ≤ amount_capturable)
 *   POST /v1/payment_intents/:id/cancel      cancel
 *   POST /v1/customers                       create (metadata, description, email, name)
 *   GET  /v1/customers/:id                   retrieve
 *   POST /v1/payment_methods                 create (type=card, card[token]=tok_visa …)
 *   GET  /v1/payment_methods/:id             retrieve
 *   POST /v1/payment_methods/:id/attach      attach to a Customer
 *
 * Stripe's rule for cards used more than once is enforced (payment-methods.ts): a PaymentMethod that paid
 * without being attached to a Customer may not be used again (400 `payment_method_unexpected_state`); one
 * attached (`setup_future_usage` with a `customer`, or attach) may, by its Customer's PaymentIntents.
 *
 * As on Stripe: form-encoded bodies with bracket nesting; Bearer (or Basic) auth with the secret key, else
 * 401; Stripe's error objects; `Idempotency-Key` on POST — the same key with the same method, path and
 * parameters replays the saved status and body byte for byte with `Idempotent-Replayed: true`, with
 * different ones gives 400 `idempotency_error`. Results are saved once the endpoint executed (2xx, card
 * declines, wrong-state errors); parameter errors are not saved. Test cards: see payment-intents.ts.
 *
 * For tests: `faults` (faults.ts), `sendWebhook` / `signWebhook` (webhooks.ts), `cancelHold` (Stripe
 * cancelling an uncaptured PaymentIntent itself, optionally announcing `payment_intent.canceled`), and the
 * audit in `state`: every request in `calls`, every PaymentIntent's operations in `history`.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiError, idempotencyMismatch, StripeApiError, unauthorized, unrecognizedUrl } from './errors.ts';
import { FaultQueue, type FaultKind } from './faults.ts';
import { canonical, FormError, parseForm, type FormObject } from './form.ts';
import { PaymentIntents, randomId, type HistoryEntry, type HistoryOp, type OperationContext, type PaymentIntent } from './payment-intents.ts';
import { Customers, type Customer } from './customers.ts';
import { PaymentMethods, type PaymentMethod } from './payment-methods.ts';
import { API_VERSION, buildEvent, deliver, signatureHeader, type Delivery, type EventInput, type SendOptions } from './webhooks.ts';

export type { FaultKind, FaultSpec } from './faults.ts';
export type { HistoryEntry, PaymentIntent } from './payment-intents.ts';
export type { Customer } from './customers.ts';
export type { PaymentMethod } from './payment-methods.ts';
export { SPENT_MESSAGE, TEST_CARDS } from './payment-methods.ts';
export type { Delivery, EventInput, StripeEvent } from './webhooks.ts';

export interface StripeServerOptions {
  secretKey?: string;
  webhookSecret?: string;
  /** Clock in milliseconds (PaymentIntent `created`, webhook timestamps); default Date.now. */
  now?: () => number;
}

export interface RecordedCall {
  seq: number;
  method: string;
  path: string;
  idempotencyKey: string | null;
  params: FormObject;
  /** The status sent; null while unanswered or when the answer was never sent (timeout, close). */
  status: number | null;
  replayed: boolean;
  fault: FaultKind | null;
  requestId: string;
  at: number;
}

interface SavedResponse {
  fingerprint: string;
  status: number;
  body: string;
  requestId: string;
}

export interface StripeServerState {
  calls: RecordedCall[];
  paymentIntents: Map<string, PaymentIntent>;
  customers: Map<string, Customer>;
  /** PaymentMethods made by this server (created, or fresh ones from a test token such as pm_card_visa). */
  paymentMethods: Map<string, PaymentMethod>;
  history: Map<string, HistoryEntry[]>;
  idempotency: Map<string, SavedResponse>;
  /** Exceptions the server did not expect (answered with 500); tests can assert there were none. */
  internalErrors: unknown[];
  /** Requests to a method + path pattern, in order. */
  callsTo(method: string, path: RegExp): RecordedCall[];
  /** A PaymentIntent's recorded operations, optionally only those of one kind. */
  historyOf(id: string, op?: HistoryOp): HistoryEntry[];
  /** Resolves with the first request (already recorded or yet to arrive) that matches; no polling. */
  waitForCall(match?: (call: RecordedCall) => boolean): Promise<RecordedCall>;
}

export interface StripeServer {
  url: string;
  host: string;
  port: number;
  secretKey: string;
  webhookSecret: string;
  state: StripeServerState;
  faults: FaultQueue;
  /** Signs `event` (filled in to a full event object) like Stripe and POSTs it to `url`. */
  sendWebhook(url: string, event: EventInput, options?: SendOptions): Promise<Delivery>;
  /** The `Stripe-Signature` header for a raw payload (server secret, server clock unless given). */
  signWebhook(payload: string, timestampSeconds?: number): string;
  /**
   * Stripe cancelling an uncaptured PaymentIntent on its own (authorizations lapse after 7 days). With
   * `webhookUrl`, `payment_intent.canceled` is sent there and its delivery returned.
   */
  cancelHold(id: string, reason?: string, options?: { webhookUrl?: string }): Promise<{ paymentIntent: PaymentIntent; delivery?: Delivery }>;
  close(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;
const PI_PATH = /^\/v1\/payment_intents\/([A-Za-z0-9_]+)(?:\/(confirm|capture|cancel))?$/;
const CUSTOMER_PATH = /^\/v1\/customers\/([A-Za-z0-9_]+)$/;
const PM_PATH = /^\/v1\/payment_methods\/([A-Za-z0-9_]+)(?:\/(attach))?$/;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new StripeApiError(413, { type: 'invalid_request_error', message: 'Request body too large' }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function mask(key: string): string {
  return `${key.slice(0, 8)}${'*'.repeat(Math.max(0, key.length - 12))}${key.slice(-4)}`;
}

export async function startStripeServer(options: StripeServerOptions = {}): Promise<StripeServer> {
  const secretKey = options.secretKey ?? `sk_test_${randomBytes(18).toString('hex')}`;
  const webhookSecret = options.webhookSecret ?? `whsec_${randomBytes(24).toString('base64url')}`;
  const now = options.now ?? Date.now;
  const customers = new Customers(now);
  const methods = new PaymentMethods(now, customers);
  const intents = new PaymentIntents(now, methods, customers);
  const faults = new FaultQueue();

  const state: StripeServerState = {
    calls: [],
    paymentIntents: intents.items,
    customers: customers.items,
    paymentMethods: methods.items,
    history: intents.history,
    idempotency: new Map(),
    internalErrors: [],
    callsTo: (method, path) =>
      state.calls.filter((c) => c.method === method.toUpperCase() && ((path.lastIndex = 0), path.test(c.path))),
    historyOf: (id, op) => (intents.history.get(id) ?? []).filter((h) => op === undefined || h.op === op),
    waitForCall: (match = () => true) => {
      const seen = state.calls.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
  const waiters: { match: (call: RecordedCall) => boolean; resolve: (call: RecordedCall) => void }[] = [];
  const recorded = (call: RecordedCall) => {
    call.seq = state.calls.length + 1;
    state.calls.push(call);
    for (const w of waiters.splice(0)) {
      if (w.match(call)) w.resolve(call);
      else waiters.push(w);
    }
  };

  function authenticate(req: IncomingMessage): void {
    const header = req.headers.authorization;
    let key: string | undefined;
    if (header?.startsWith('Bearer ')) key = header.slice(7).trim();
    else if (header?.startsWith('Basic ')) key = Buffer.from(header.slice(6), 'base64').toString('utf8').split(':')[0];
    if (!key) {
      throw unauthorized(
        "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
      );
    }
    if (key !== secretKey) throw unauthorized(`Invalid API Key provided: ${mask(key)}`);
  }

  function route(method: string, path: string, params: FormObject, ctx: OperationContext): PaymentIntent | Customer | PaymentMethod {
    if (path === '/v1/payment_intents' && method === 'POST') return intents.create(params, ctx);
    if (path === '/v1/customers' && method === 'POST') return customers.create(params);
    if (path === '/v1/payment_methods' && method === 'POST') return methods.create(params);
    const c = CUSTOMER_PATH.exec(path);
    if (c && method === 'GET') return customers.retrieve(c[1] as string);
    const p = PM_PATH.exec(path);
    if (p && !p[2] && method === 'GET') return methods.retrieve(p[1] as string);
    if (p && p[2] === 'attach' && method === 'POST') return methods.attach(p[1] as string, params);
    const m = PI_PATH.exec(path);
    if (m) {
      const id = m[1] as string;
      const action = m[2];
      if (!action && method === 'GET') return intents.retrieve(id);
      if (method === 'POST' && action === 'confirm') return intents.confirm(id, params, ctx);
      if (method === 'POST' && action === 'capture') return intents.capture(id, params, ctx);
      if (method === 'POST' && action === 'cancel') return intents.cancel(id, params, ctx);
    }
    throw unrecognizedUrl(method, path);
  }

  /** Whether Stripe would have saved this result for its idempotency key: the endpoint ran. */
  function savable(status: number, error: StripeApiError | null): boolean {
    if (status < 400) return true;
    if (!error) return false;
    return error.error.type === 'card_error' || ['payment_intent_unexpected_state', 'amount_too_large'].includes(error.error.code ?? '');
  }

  const hanging = new Set<ServerResponse>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://stripe.test');
    const path = url.pathname;
    const keyHeader = req.headers['idempotency-key'];
    const idempotencyKey = method === 'POST' && typeof keyHeader === 'string' && keyHeader !== '' ? keyHeader : null;
    const requestId = randomId('req', 14);
    const fault = faults.take(['timeout', 'http500', 'close'], method, path);
    const call: RecordedCall = {
      seq: 0, method, path, idempotencyKey, params: {}, status: null, replayed: false, fault: fault?.kind ?? null, requestId, at: now(),
    };
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'request-id': requestId,
      'stripe-version': typeof req.headers['stripe-version'] === 'string' ? req.headers['stripe-version'] : API_VERSION,
      ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
    };
    const send = (status: number, body: string, extra: Record<string, string> = {}) => {
      call.status = status;
      res.writeHead(status, { ...headers, ...extra, 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    };
    const failTransport = (kind: FaultKind) => {
      if (kind === 'http500') send(500, JSON.stringify(apiError().body(), null, 2));
      else if (kind === 'close') req.socket.destroy();
      else {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
      }
    };

    let raw = '';
    try {
      raw = await readBody(req);
    } catch (err) {
      recorded(call);
      if (err instanceof StripeApiError) send(err.status, JSON.stringify(err.body(), null, 2));
      return;
    }
    try {
      call.params = parseForm(method === 'GET' ? url.search.slice(1) : raw); // for the audit; errors are reported below
    } catch {
      call.params = {};
    }
    recorded(call); // in arrival order of complete requests
    if (fault && !fault.spec.process) return failTransport(fault.kind);

    let status: number;
    let body: string;
    let replayed: SavedResponse | undefined;
    try {
      authenticate(req);
      let params: FormObject;
      try {
        params = parseForm(method === 'GET' ? url.search.slice(1) : raw);
      } catch (err) {
        if (err instanceof FormError) throw new StripeApiError(400, { type: 'invalid_request_error', message: err.message });
        throw err;
      }
      const fingerprint = `${method} ${path} ${canonical(params)}`;
      const saved = idempotencyKey ? state.idempotency.get(idempotencyKey) : undefined;
      if (saved && saved.fingerprint !== fingerprint) throw idempotencyMismatch(idempotencyKey as string);
      if (saved) {
        replayed = saved;
        status = saved.status;
        body = saved.body;
      } else {
        let error: StripeApiError | null = null;
        try {
          const ctx: OperationContext = {
            idempotencyKey,
            takeDecline: () => {
              const d = faults.take(['decline'], method, path);
              return d ? (d.spec.declineCode ?? 'generic_decline') : undefined;
            },
          };
          body = JSON.stringify(route(method, path, params, ctx), null, 2);
          status = 200;
        } catch (err) {
          if (!(err instanceof StripeApiError)) throw err;
          error = err;
          status = err.status;
          body = JSON.stringify(err.body(), null, 2);
        }
        if (idempotencyKey && savable(status, error)) state.idempotency.set(idempotencyKey, { fingerprint, status, body, requestId });
      }
    } catch (err) {
      const error = err instanceof StripeApiError ? err : apiError();
      if (!(err instanceof StripeApiError)) state.internalErrors.push(err);
      status = error.status;
      body = JSON.stringify(error.body(), null, 2);
    }

    if (fault) return failTransport(fault.kind);
    if (replayed) {
      call.replayed = true;
      send(status, body, { 'idempotent-replayed': 'true', 'original-request': replayed.requestId });
    } else {
      send(status, body);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      state.internalErrors.push(err);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify(apiError().body()));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const host = '127.0.0.1';

  const signWebhook = (payload: string, timestampSeconds?: number) =>
    signatureHeader(webhookSecret, payload, timestampSeconds ?? Math.floor(now() / 1000));

  const sendWebhook = (target: string, input: EventInput, opts: SendOptions = {}) => {
    const event = buildEvent(input, now());
    const payload = JSON.stringify(event, null, 2);
    const timestamp = opts.timestamp ?? Math.floor(now() / 1000);
    const header = opts.header ?? signatureHeader(opts.secret ?? webhookSecret, payload, timestamp);
    return deliver(target, event, header, payload);
  };

  return {
    url: `http://${host}:${port}`,
    host,
    port,
    secretKey,
    webhookSecret,
    state,
    faults,
    sendWebhook,
    signWebhook,
    async cancelHold(id, reason = 'automatic', opts = {}) {
      const paymentIntent = intents.expire(id, reason);
      if (!opts.webhookUrl) return { paymentIntent };
      const delivery = await sendWebhook(opts.webhookUrl, { type: 'payment_intent.canceled', data: { object: { ...paymentIntent } } });
      return { paymentIntent, delivery };
    },
    async close() {
      for (const res of hanging) res.destroy();
      hanging.clear();
      const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      server.closeAllConnections();
      await closed;
    },
  };
}
