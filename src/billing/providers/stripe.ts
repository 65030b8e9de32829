/**
 * The Stripe payment provider: card holds as PaymentIntents with `capture_method: manual`, through the
 * official SDK.
 *
 * - placeHold → create + confirm in one call (`confirm: true`, card payment method types only, so no
 *   redirect-based method and no return_url). Destination charges for hosts with a Connect account:
 *   `transfer_data[destination]` + `application_fee_amount`.
 * - capture → `amount_to_capture` (partial captures release the rest). For destination charges the
 *   application fee is re-stated for the captured amount (Stripe would otherwise keep the hold's fee,
 *   only capped at the captured amount).
 * - release → cancel; a hold already canceled (by us or by Stripe) counts as released.
 * - One Customer per call, so the guest's card can be held window after window. Stripe refuses a
 *   PaymentMethod for a second payment unless it is attached to a Customer ("This PaymentMethod was
 *   previously used without being attached to a Customer … may not be used again"). So window 1 creates the
 *   call's Customer (idempotency key `callplane:<callId>:w1:customer`, metadata `call_id`) and holds with
 *   `customer` + `setup_future_usage: off_session`, which attaches the card to it once authorized; windows
 *   2, 3, … hold with the same `customer` and `off_session: true` (the guest is not asked again; a card that
 *   wants 3-D Secure then is declined `authentication_required`). A caller's `customerRef` (an operator's
 *   own Customer) is used instead and nothing is created.
 *   Where later windows get the Customer from: this process remembers it per call; otherwise (a restart,
 *   another process) from the card itself — once window 1 was authorized the PaymentMethod is attached to
 *   exactly that Customer (`customer` of GET /v1/payment_methods/:id), which is the only Customer Stripe
 *   would accept it for anyway, and that holds for as long as the call lasts. Only when the card names no
 *   Customer (Stripe's test tokens such as pm_card_visa, which are a fresh card on every use) is the
 *   Customer asked for again through its idempotent create, which Stripe answers with the same Customer
 *   for 24 h. Either way a hold repeated after a crash sends the same Customer, so byte-identical
 *   parameters under its key.
 * - Idempotency keys come from the caller (`src/billing/idempotency.ts`: call id + window + operation) and
 *   go to Stripe verbatim; the SDK's own network retries reuse them, so a retried request is answered once.
 *
 * Platform fee on destination charges, integer minor units, rounded down (the platform never takes more than
 * its rate; the odd minor unit stays with the host):
 *   hold fee    = the caller's `destination.applicationFeeMinor` (the engine's floor(amount × host fee bps /
 *                 10 000), meter.ts); only when a caller has none: floor(amount × platformFeeBps / 10 000)
 *   capture fee = floor(captured × hold fee / hold amount)              (= the hold fee on a full capture)
 * The hold fee is also kept in the PaymentIntent's metadata (`platform_fee_minor`), so the capture fee is
 * derived from values that never change — a capture retried after a restart sends the very same parameters.
 */
import Stripe from 'stripe';
import { AppError } from '../../shared/errors.ts';
import { idempotencyKey } from '../idempotency.ts';
import { applicationFeeMinor } from '../meter.ts';
import {
  PaymentDeclined,
  ProviderUnavailable,
  type CaptureInput,
  type PaymentProvider,
  type PlaceHoldInput,
  type ProviderHoldStatus,
  type ReleaseInput,
} from './types.ts';

export interface StripeProviderOptions {
  secretKey: string;
  /** Where the API lives; only for tests (the Stripe-compatible test server). Default: api.stripe.com. */
  apiBase?: { host: string; port: number; protocol: 'http' | 'https' };
  /**
   * Platform fee in basis points (0–10 000), for a destination that arrives without a fee of its own
   * (callers normally state it per hold: hosts can have their own rate). Default 0.
   */
  platformFeeBps?: number;
  /**
   * Per-attempt request timeout. A call gives up after at most (maxNetworkRetries + 1) × timeoutMs plus the
   * SDK's backoff (0.5 s doubling, jittered, at most 5 s per pause).
   */
  timeoutMs: number;
  /** The SDK's automatic retries on connection errors, 409 and 5xx (same idempotency key). Default 2. */
  maxNetworkRetries?: number;
}

/** The fee for a capture: the hold's fee pro rata, rounded down (exactly the hold fee on a full capture). */
export function captureFeeMinor(capturedMinor: number, holdAmountMinor: number, holdFeeMinor: number): number {
  if (holdAmountMinor <= 0) return 0;
  return Number((BigInt(capturedMinor) * BigInt(holdFeeMinor)) / BigInt(holdAmountMinor));
}

/** Stripe status → the provider contract's hold status. */
export function holdStatus(status: Stripe.PaymentIntent.Status): ProviderHoldStatus {
  switch (status) {
    case 'requires_capture':
    case 'processing': // in flight, not terminal: a capture now fails as unexpected state and is retried
      return 'held';
    case 'succeeded':
      return 'captured';
    case 'canceled':
      return 'released';
    default: // requires_payment_method (declined), requires_confirmation, requires_action
      return 'failed';
  }
}

/** Holds remembered for capture (oldest forgotten first; a forgotten one costs a retrieve, nothing else). */
const MAX_REMEMBERED_HOLDS = 10_000;
/** Calls' Customers remembered for their next windows (a forgotten one costs a PaymentMethod retrieve). */
const MAX_REMEMBERED_CUSTOMERS = 10_000;

interface HoldFacts {
  amount: number;
  destination: boolean;
  feeMinor: number;
}

export class StripeProvider implements PaymentProvider {
  private readonly stripe: Stripe;
  private readonly feeBps: number;
  /** Holds placed by this process; a miss (another process placed it) costs one retrieve. */
  private readonly holds = new Map<string, HoldFacts>();
  /** Call id → the call's Customer (created by this provider; a caller's customerRef is never kept here). */
  private readonly customers = new Map<string, string>();

  constructor(options: StripeProviderOptions) {
    if (!options.secretKey) throw new Error('StripeProvider: secretKey is required');
    this.feeBps = options.platformFeeBps ?? 0;
    applicationFeeMinor(0, this.feeBps); // validates the bps
    this.stripe = new Stripe(options.secretKey, {
      timeout: options.timeoutMs,
      maxNetworkRetries: options.maxNetworkRetries ?? 2,
      telemetry: false,
      appInfo: { name: 'callplane' },
      ...(options.apiBase ? { host: options.apiBase.host, port: options.apiBase.port, protocol: options.apiBase.protocol } : {}),
    });
  }

  async placeHold(input: PlaceHoldInput): Promise<{ holdId: string; status: 'held' }> {
    const stated: unknown = input.destination?.applicationFeeMinor;
    const feeMinor = !input.destination
      ? 0
      : typeof stated === 'number'
        ? stated
        : applicationFeeMinor(input.amountMinor, this.feeBps);
    const customer = await this.customerFor(input);
    const params: Stripe.PaymentIntentCreateParams = {
      amount: input.amountMinor,
      currency: input.currency.toLowerCase(),
      payment_method: input.paymentMethodId,
      payment_method_types: ['card'],
      confirm: true,
      capture_method: 'manual',
      metadata: {
        call_id: input.callId,
        window: String(input.window),
        ...(input.destination ? { platform_fee_minor: String(feeMinor) } : {}),
      },
      customer,
      // Window 1 saves the card to the Customer (the guest is there); later windows use it off-session.
      ...(input.window === 1 ? { setup_future_usage: 'off_session' as const } : { off_session: true }),
      ...(input.destination
        ? { transfer_data: { destination: input.destination.accountId }, application_fee_amount: feeMinor }
        : {}),
    };
    let pi: Stripe.PaymentIntent;
    try {
      pi = await this.stripe.paymentIntents.create(params, { idempotencyKey: input.idempotencyKey });
    } catch (err) {
      // Off-session, a card that wants 3-D Secure is declined instead of asking (requires_action below):
      // the same dead end, and its PaymentIntent is abandoned the same way.
      const declined = err instanceof Stripe.errors.StripeCardError && err.code === 'authentication_required' ? err.payment_intent?.id : undefined;
      if (declined) await this.stripe.paymentIntents.cancel(declined, {}).catch(() => undefined);
      throw mapStripeError(err, 'placeHold');
    }
    if (pi.status !== 'requires_capture') {
      // 3-D Secure (requires_action) or anything else that is not an authorized hold: nobody can complete it
      // in a call, so it is abandoned (a cancel that fails is harmless: Stripe drops it after a while).
      await this.stripe.paymentIntents.cancel(pi.id, {}).catch(() => undefined);
      throw new PaymentDeclined(pi.status === 'requires_action' ? 'authentication_required' : pi.status);
    }
    if (this.holds.size >= MAX_REMEMBERED_HOLDS) this.holds.delete(this.holds.keys().next().value as string);
    this.holds.set(pi.id, { amount: pi.amount, destination: Boolean(input.destination), feeMinor });
    return { holdId: pi.id, status: 'held' };
  }

  /** The Customer a hold is placed for: the caller's, or the call's own (see the header). */
  private async customerFor(input: PlaceHoldInput): Promise<string> {
    if (input.customerRef) return input.customerRef;
    const known = this.customers.get(input.callId);
    if (known) return known;
    const id = (input.window > 1 ? await this.customerOfCard(input.paymentMethodId) : null) ?? (await this.createCustomer(input.callId));
    if (this.customers.size >= MAX_REMEMBERED_CUSTOMERS) this.customers.delete(this.customers.keys().next().value as string);
    this.customers.set(input.callId, id);
    return id;
  }

  /** The call's Customer; the same one however often it is asked for (idempotent, Stripe keeps keys 24 h). */
  private async createCustomer(callId: string): Promise<string> {
    let key: string;
    try {
      key = idempotencyKey(callId, 1, 'customer');
    } catch (err) {
      throw new AppError('internal_error', 'stripe placeHold: no idempotency key for the call\'s customer', { cause: String(err) });
    }
    try {
      const customer = await this.stripe.customers.create({ metadata: { call_id: callId } }, { idempotencyKey: key });
      return customer.id;
    } catch (err) {
      throw mapStripeError(err, 'placeHold');
    }
  }

  /** The Customer the card is attached to (null: none, or a card Stripe does not know as such). */
  private async customerOfCard(paymentMethodId: string): Promise<string | null> {
    try {
      const pm = await this.stripe.paymentMethods.retrieve(paymentMethodId);
      return typeof pm.customer === 'string' ? pm.customer : (pm.customer?.id ?? null);
    } catch (err) {
      if (err instanceof Stripe.errors.StripeInvalidRequestError && err.code === 'resource_missing') return null;
      throw mapStripeError(err, 'placeHold');
    }
  }

  async capture(input: CaptureInput): Promise<{ captured: number }> {
    if (!Number.isSafeInteger(input.amountMinor) || input.amountMinor <= 0) {
      throw new AppError('internal_error', `capture: amount must be a positive integer (got ${input.amountMinor}); release the hold instead`);
    }
    const facts = this.holds.get(input.holdId) ?? (await this.facts(input.holdId));
    const params: Stripe.PaymentIntentCaptureParams = {
      amount_to_capture: input.amountMinor,
      ...(facts.destination ? { application_fee_amount: captureFeeMinor(input.amountMinor, facts.amount, facts.feeMinor) } : {}),
    };
    let pi: Stripe.PaymentIntent;
    try {
      pi = await this.stripe.paymentIntents.capture(input.holdId, params, { idempotencyKey: input.idempotencyKey });
    } catch (err) {
      throw mapStripeError(err, 'capture', input.holdId);
    }
    this.holds.delete(input.holdId);
    return { captured: pi.amount_received };
  }

  async release(input: ReleaseInput): Promise<void> {
    try {
      await this.stripe.paymentIntents.cancel(input.holdId, {}, { idempotencyKey: input.idempotencyKey });
    } catch (err) {
      if (!(err instanceof Stripe.errors.StripeInvalidRequestError) || err.code !== 'payment_intent_unexpected_state') {
        throw mapStripeError(err, 'release', input.holdId);
      }
      const status = (err.payment_intent ?? (await this.retrieveIntent(input.holdId))).status;
      if (status !== 'canceled') throw mapStripeError(err, 'release', input.holdId);
    }
    this.holds.delete(input.holdId);
  }

  async retrieve(holdId: string): Promise<{ status: ProviderHoldStatus; amountCapturedMinor: number }> {
    const pi = await this.retrieveIntent(holdId);
    return { status: holdStatus(pi.status), amountCapturedMinor: pi.amount_received };
  }

  private async retrieveIntent(holdId: string): Promise<Stripe.PaymentIntent> {
    try {
      return await this.stripe.paymentIntents.retrieve(holdId);
    } catch (err) {
      throw mapStripeError(err, 'retrieve', holdId);
    }
  }

  /** What capture needs to know about a hold this process did not place (e.g. after a restart). */
  private async facts(holdId: string): Promise<HoldFacts> {
    const pi = await this.retrieveIntent(holdId);
    const stated = pi.metadata.platform_fee_minor;
    const feeMinor = stated !== undefined && /^\d{1,15}$/.test(stated) ? Number(stated) : (pi.application_fee_amount ?? 0);
    return { amount: pi.amount, destination: Boolean(pi.transfer_data), feeMinor };
  }
}

/**
 * Stripe's errors in the provider contract: card errors → PaymentDeclined (with the decline code);
 * connection errors, timeouts, 5xx, rate limits and "request in progress" conflicts → ProviderUnavailable
 * (retry later with the same key); a hold in the wrong state → invalid_state; an idempotency key reused
 * with other parameters → idempotency_conflict; anything else → internal_error.
 */
export function mapStripeError(err: unknown, operation: string, holdId?: string): Error {
  if (err instanceof AppError) return err; // PaymentDeclined and ProviderUnavailable included
  if (!(err instanceof Stripe.errors.StripeError)) return new AppError('internal_error', `stripe ${operation} failed`, { cause: String(err) });
  const details = {
    provider: 'stripe',
    operation,
    ...(holdId ? { hold_id: holdId } : {}),
    stripe_type: err.type,
    ...(err.code ? { stripe_code: err.code } : {}),
    ...(err.requestId ? { request_id: err.requestId } : {}),
  };
  if (err instanceof Stripe.errors.StripeCardError) {
    return new PaymentDeclined(err.decline_code ?? err.code ?? 'card_declined', err.message);
  }
  const status = err.statusCode ?? 0;
  if (
    err instanceof Stripe.errors.StripeConnectionError ||
    err instanceof Stripe.errors.StripeRateLimitError ||
    status >= 500 ||
    status === 429 ||
    (err instanceof Stripe.errors.StripeIdempotencyError && status === 409)
  ) {
    return new ProviderUnavailable(`stripe ${operation}: ${err.message}`, { cause: err });
  }
  if (err instanceof Stripe.errors.StripeIdempotencyError) {
    return new AppError('idempotency_conflict', `stripe ${operation}: idempotency key reused with different parameters`, details);
  }
  if (err.code === 'payment_intent_unexpected_state') {
    const state = err.payment_intent?.status;
    return new AppError('invalid_state', `stripe ${operation}: the hold is ${state ? holdStatus(state) : 'in another state'}`, {
      ...details,
      ...(state ? { hold_status: holdStatus(state), stripe_status: state } : {}),
    });
  }
  return new AppError('internal_error', `stripe ${operation} failed: ${err.message}`, details);
}

/**
 * Verifies a Stripe webhook (`Stripe-Signature: t=…,v1=…`) with the SDK against the raw body and returns
 * the event. A missing or wrong signature, or a timestamp older than the tolerance, is a 400
 * validation_failed (the endpoint answers 400, so Stripe shows the delivery as failed and retries).
 */
export function verifyStripeWebhook(
  payload: Buffer | string,
  signatureHeader: string | string[] | undefined,
  secret: string,
  toleranceSeconds = 300,
  nowMs?: number,
): Stripe.Event {
  if (!(toleranceSeconds > 0)) throw new Error('verifyStripeWebhook: toleranceSeconds must be positive'); // the SDK reads 0 as "default"
  if (typeof signatureHeader !== 'string' || signatureHeader === '') {
    throw new AppError('validation_failed', 'Stripe webhook: missing Stripe-Signature header');
  }
  try {
    return Stripe.webhooks.constructEvent(payload, signatureHeader, secret, toleranceSeconds, undefined, nowMs);
  } catch (err) {
    if (err instanceof Stripe.errors.StripeSignatureVerificationError) {
      const reason = /Timestamp outside the tolerance zone/.test(err.message)
        ? `signature timestamp is older than ${toleranceSeconds} s`
        : /No signatures found matching/.test(err.message)
          ? 'signature does not match the payload'
          : (err.message.split('\n')[0] ?? 'invalid signature');
      throw new AppError('validation_failed', `Stripe webhook: ${reason}`, { reason: err.message.split('\n')[0] });
    }
    if (err instanceof SyntaxError) throw new AppError('validation_failed', 'Stripe webhook: the signed payload is not JSON');
    throw err;
  }
}
