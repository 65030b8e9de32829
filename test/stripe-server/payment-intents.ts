/**
 * The PaymentIntents API of the test server: create (optionally confirming), confirm, capture (partial with
 * `amount_to_capture`), cancel, retrieve, with Stripe's status machine and test payment methods. Every
 * operation is recorded in a per-PaymentIntent history so tests can assert "captured exactly once".
 *
 * Customers and saved cards, as on Stripe: `customer` names a Customer of this server (unknown: 400
 * resource_missing); `setup_future_usage` (`off_session` / `on_session`) with a `customer` attaches the
 * PaymentMethod to that Customer once the payment succeeds; `off_session=true` (only with `confirm=true`,
 * never together with `setup_future_usage`) pays with a saved card without the customer present (a card
 * that asks for 3-D Secure is then declined `authentication_required`). Which PaymentMethod may be used
 * again, and by whom: payment-methods.ts.
 */
import { randomBytes } from 'node:crypto';
import type { Customers } from './customers.ts';
import type { FormObject } from './form.ts';
import { declineFor, invalidRequest, noSuch, StripeApiError, unexpectedState, type Decline } from './errors.ts';
import { randomId } from './ids.ts';
import { allowOnly, bool, hash, int, metadata, oneOf, str, stringList } from './params.ts';
import type { PaymentMethods } from './payment-methods.ts';

export { randomId } from './ids.ts';

export type PaymentIntentStatus =
  | 'requires_payment_method'
  | 'requires_confirmation'
  | 'requires_action'
  | 'processing'
  | 'requires_capture'
  | 'succeeded'
  | 'canceled';

export interface PaymentIntent {
  id: string;
  object: 'payment_intent';
  amount: number;
  amount_capturable: number;
  amount_received: number;
  application_fee_amount: number | null;
  automatic_payment_methods: { enabled: boolean; allow_redirects?: string } | null;
  canceled_at: number | null;
  cancellation_reason: string | null;
  capture_method: 'automatic' | 'automatic_async' | 'manual';
  client_secret: string;
  confirmation_method: 'automatic' | 'manual';
  created: number;
  currency: string;
  customer: string | null;
  description: string | null;
  last_payment_error: Record<string, unknown> | null;
  latest_charge: string | null;
  livemode: false;
  metadata: Record<string, string>;
  next_action: Record<string, unknown> | null;
  on_behalf_of: string | null;
  payment_method: string | null;
  payment_method_types: string[];
  setup_future_usage: 'off_session' | 'on_session' | null;
  status: PaymentIntentStatus;
  transfer_data: { destination: string } | null;
}

export type HistoryOp = 'create' | 'confirm' | 'decline' | 'capture' | 'cancel' | 'expire';

export interface HistoryEntry {
  op: HistoryOp;
  /** The status after the operation. */
  status: PaymentIntentStatus;
  /** capture: the amount captured; create: the amount. */
  amount?: number;
  declineCode?: string;
  idempotencyKey: string | null;
  at: number;
}

/** Smallest chargeable amounts (minor units) for a few currencies; others use 50. */
const MINIMUM: Record<string, number> = { usd: 50, eur: 50, gbp: 30, jpy: 50, chf: 50, cad: 50, aud: 50 };

const CANCELABLE: PaymentIntentStatus[] = [
  'requires_payment_method',
  'requires_capture',
  'requires_confirmation',
  'requires_action',
  'processing',
];
const CONFIRMABLE: PaymentIntentStatus[] = ['requires_payment_method', 'requires_confirmation', 'requires_action'];

const CREATE_PARAMS = [
  'amount', 'currency', 'payment_method', 'confirm', 'capture_method', 'metadata', 'transfer_data',
  'application_fee_amount', 'on_behalf_of', 'description', 'customer', 'payment_method_types',
  'automatic_payment_methods', 'return_url', 'off_session', 'confirmation_method', 'receipt_email',
  'statement_descriptor', 'statement_descriptor_suffix', 'setup_future_usage', 'expand',
] as const;
const CONFIRM_PARAMS = ['payment_method', 'return_url', 'off_session', 'receipt_email', 'setup_future_usage', 'expand'];
const CAPTURE_PARAMS = [
  'amount_to_capture', 'application_fee_amount', 'metadata', 'final_capture', 'statement_descriptor',
  'statement_descriptor_suffix', 'expand',
];
const CANCEL_PARAMS = ['cancellation_reason', 'expand'];

export interface OperationContext {
  idempotencyKey: string | null;
  /** A pending `decline` fault for this request, if any (consumed only when a confirmation happens). */
  takeDecline: () => string | undefined;
}

export class PaymentIntents {
  readonly items = new Map<string, PaymentIntent>();
  readonly history = new Map<string, HistoryEntry[]>();

  constructor(
    private readonly now: () => number,
    private readonly methods: PaymentMethods,
    private readonly customers: Customers,
  ) {}

  private seconds(): number {
    return Math.floor(this.now() / 1000);
  }

  private record(pi: PaymentIntent, op: HistoryOp, ctx: { idempotencyKey: string | null }, extra: Partial<HistoryEntry> = {}) {
    const list = this.history.get(pi.id) ?? [];
    list.push({ op, status: pi.status, idempotencyKey: ctx.idempotencyKey, at: this.now(), ...extra });
    this.history.set(pi.id, list);
  }

  private find(id: string): PaymentIntent {
    const pi = this.items.get(id);
    if (!pi) throw noSuch('payment_intent', id, 'intent');
    return pi;
  }

  retrieve(id: string): PaymentIntent {
    return structuredClone(this.find(id));
  }

  create(params: FormObject, ctx: OperationContext): PaymentIntent {
    allowOnly(params, CREATE_PARAMS);
    const amount = int(params, 'amount', true);
    const currency = str(params, 'currency', true);
    if (!/^[a-z]{3}$/.test(currency)) throw invalidRequest(`Invalid currency: ${currency}`, { param: 'currency' });
    const minimum = MINIMUM[currency] ?? 50;
    if (amount < minimum) {
      throw invalidRequest(`Amount must be at least ${minimum} ${currency} minor units`, { param: 'amount', code: 'amount_too_small' });
    }
    if (amount > 99_999_999) throw invalidRequest('Amount must be no more than 99999999', { param: 'amount', code: 'amount_too_large' });
    const transfer = hash(params, 'transfer_data', ['destination', 'amount']);
    const destination = transfer ? str(transfer, 'destination', true) : undefined;
    if (destination !== undefined && !/^acct_\w+$/.test(destination)) {
      throw noSuch('destination', destination, 'transfer_data[destination]');
    }
    const fee = int(params, 'application_fee_amount');
    const onBehalfOf = str(params, 'on_behalf_of');
    if (fee !== undefined) {
      if (destination === undefined && onBehalfOf === undefined) {
        throw invalidRequest(
          'Can only apply an application_fee_amount when the PaymentIntent is attempting a direct payment ' +
            '(using an OAuth key or Stripe-Account header) or destination payment (using `transfer_data[destination]`).',
          { param: 'application_fee_amount' },
        );
      }
      if (fee < 0 || fee > amount) {
        throw invalidRequest('application_fee_amount must be between 0 and the amount', { param: 'application_fee_amount' });
      }
    }
    const apm = hash(params, 'automatic_payment_methods', ['enabled', 'allow_redirects']);
    const types = stringList(params, 'payment_method_types');
    const confirm = bool(params, 'confirm') ?? false;
    const paymentMethod = str(params, 'payment_method');
    if (paymentMethod !== undefined) this.methods.known(paymentMethod, 'payment_method');
    // With automatic payment methods (the default when payment_method_types is not given), a confirmation
    // needs a return_url unless redirects are turned off, as on Stripe.
    if (confirm && !types && str(params, 'return_url') === undefined && apm?.allow_redirects !== 'never') {
      throw invalidRequest(
        'This PaymentIntent is configured to accept payment methods enabled in your Dashboard, because some of these ' +
          'payment methods might redirect your customer off of your page, you must provide a `return_url`. If you ' +
          "don't want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` " +
          'and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents.',
      );
    }
    const customer = str(params, 'customer');
    if (customer !== undefined) this.customers.require(customer, 'customer');
    const setupFutureUsage = oneOf(params, 'setup_future_usage', ['off_session', 'on_session'] as const);
    const offSession = bool(params, 'off_session');
    if (offSession !== undefined && !confirm) {
      throw invalidRequest('The parameter `off_session` can only be used when `confirm` is `true`.', { param: 'off_session' });
    }
    if (offSession && setupFutureUsage) throw offSessionWithSetup();
    if (paymentMethod !== undefined) this.methods.assertUsable(paymentMethod, customer ?? null);
    const id = randomId('pi');
    const pi: PaymentIntent = {
      id,
      object: 'payment_intent',
      amount,
      amount_capturable: 0,
      amount_received: 0,
      application_fee_amount: fee ?? null,
      automatic_payment_methods: types
        ? null
        : { enabled: true, ...(typeof apm?.allow_redirects === 'string' ? { allow_redirects: apm.allow_redirects } : {}) },
      canceled_at: null,
      cancellation_reason: null,
      capture_method: oneOf(params, 'capture_method', ['automatic', 'automatic_async', 'manual'] as const) ?? 'automatic_async',
      client_secret: `${id}_secret_${randomBytes(12).toString('hex')}`,
      confirmation_method: oneOf(params, 'confirmation_method', ['automatic', 'manual'] as const) ?? 'automatic',
      created: this.seconds(),
      currency,
      customer: customer ?? null,
      description: str(params, 'description') ?? null,
      last_payment_error: null,
      latest_charge: null,
      livemode: false,
      metadata: metadata(params) ?? {},
      next_action: null,
      on_behalf_of: onBehalfOf ?? null,
      payment_method: paymentMethod !== undefined ? this.methods.use(paymentMethod) : null,
      payment_method_types: types ?? ['card'],
      setup_future_usage: setupFutureUsage ?? null,
      status: paymentMethod ? 'requires_confirmation' : 'requires_payment_method',
      transfer_data: destination ? { destination } : null,
    };
    this.items.set(id, pi);
    this.record(pi, 'create', ctx, { amount });
    if (confirm) this.runConfirmation(pi, params, ctx);
    return structuredClone(pi);
  }

  confirm(id: string, params: FormObject, ctx: OperationContext): PaymentIntent {
    allowOnly(params, CONFIRM_PARAMS);
    const pi = this.find(id);
    if (!CONFIRMABLE.includes(pi.status)) throw unexpectedState('confirmed', structuredClone(pi), CONFIRMABLE);
    const paymentMethod = str(params, 'payment_method');
    const setupFutureUsage = oneOf(params, 'setup_future_usage', ['off_session', 'on_session'] as const);
    if (bool(params, 'off_session') && (setupFutureUsage ?? pi.setup_future_usage)) throw offSessionWithSetup();
    if (paymentMethod !== undefined) this.methods.known(paymentMethod, 'payment_method');
    const using = paymentMethod ?? pi.payment_method;
    if (using !== null) this.methods.assertUsable(using, pi.customer);
    if (paymentMethod !== undefined) pi.payment_method = this.methods.use(paymentMethod);
    if (setupFutureUsage) pi.setup_future_usage = setupFutureUsage;
    this.runConfirmation(pi, params, ctx);
    return structuredClone(pi);
  }

  private runConfirmation(pi: PaymentIntent, params: FormObject, ctx: OperationContext): void {
    const pm = pi.payment_method;
    const card = pm ? this.methods.card(pm) : undefined;
    if (!pm || !card) {
      throw invalidRequest(
        "You cannot confirm this PaymentIntent because it's missing a payment method. Update the PaymentIntent with a payment method and then confirm it again.",
        { code: 'payment_intent_unexpected_state', payment_intent: structuredClone(pi) },
      );
    }
    this.methods.assertUsable(pm, pi.customer); // it may have been spent since it was set on this PaymentIntent
    const paymentMethod = this.methods.view(pm) ?? { id: pm, object: 'payment_method', type: 'card', card: { brand: card.brand, last4: card.last4 } };
    const declineCode = ctx.takeDecline() ?? card.decline;
    const offSession = bool(params, 'off_session') ?? false;
    if (declineCode !== undefined || (card.authentication && offSession)) {
      const decline: Decline = declineCode
        ? declineFor(declineCode)
        : {
            code: 'authentication_required',
            decline_code: 'authentication_required',
            message: 'Your card was declined. This transaction requires authentication.',
          };
      const charge = randomId('ch');
      const error = {
        type: 'card_error' as const,
        code: decline.code,
        ...(decline.decline_code ? { decline_code: decline.decline_code } : {}),
        message: decline.message,
        charge,
        doc_url: `https://stripe.com/docs/error-codes/${decline.code.replace(/_/g, '-')}`,
      };
      pi.status = 'requires_payment_method';
      pi.latest_charge = charge;
      pi.last_payment_error = { ...error, payment_method: paymentMethod };
      pi.payment_method = null;
      this.record(pi, 'decline', ctx, { declineCode: decline.decline_code ?? decline.code });
      throw new StripeApiError(402, { ...error, payment_intent: structuredClone(pi), payment_method: paymentMethod });
    }
    if (card.authentication) {
      pi.status = 'requires_action';
      pi.next_action = { type: 'use_stripe_sdk', use_stripe_sdk: { type: 'three_d_secure_redirect' } };
      this.record(pi, 'confirm', ctx);
      return;
    }
    pi.latest_charge = randomId('ch');
    pi.last_payment_error = null;
    pi.next_action = null;
    if (pi.capture_method === 'manual') {
      pi.status = 'requires_capture';
      pi.amount_capturable = pi.amount;
    } else {
      pi.status = 'succeeded';
      pi.amount_received = pi.amount;
    }
    this.methods.paid(pm, pi.customer, pi.setup_future_usage);
    this.record(pi, 'confirm', ctx);
  }

  capture(id: string, params: FormObject, ctx: OperationContext): PaymentIntent {
    allowOnly(params, CAPTURE_PARAMS);
    const pi = this.find(id);
    if (pi.status !== 'requires_capture') throw unexpectedState('captured', structuredClone(pi), ['requires_capture']);
    const amount = int(params, 'amount_to_capture') ?? pi.amount_capturable;
    if (amount <= 0) throw invalidRequest('amount_to_capture must be a positive integer', { param: 'amount_to_capture' });
    if (amount > pi.amount_capturable) {
      throw invalidRequest(
        `The amount to capture (${amount}) must be less than or equal to the amount capturable (${pi.amount_capturable}).`,
        { param: 'amount_to_capture', code: 'amount_too_large' },
      );
    }
    const fee = int(params, 'application_fee_amount');
    if (fee !== undefined) {
      if (!pi.transfer_data && !pi.on_behalf_of) {
        throw invalidRequest('Can only apply an application_fee_amount to a destination payment.', { param: 'application_fee_amount' });
      }
      if (fee < 0 || fee > amount) {
        throw invalidRequest('application_fee_amount must be between 0 and the amount captured', { param: 'application_fee_amount' });
      }
      pi.application_fee_amount = fee;
    }
    const meta = metadata(params);
    if (meta) pi.metadata = { ...pi.metadata, ...meta };
    pi.amount_received = amount;
    pi.amount_capturable = 0;
    pi.status = 'succeeded';
    this.record(pi, 'capture', ctx, { amount });
    return structuredClone(pi);
  }

  cancel(id: string, params: FormObject, ctx: OperationContext): PaymentIntent {
    allowOnly(params, CANCEL_PARAMS);
    const reason = oneOf(params, 'cancellation_reason', ['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned'] as const);
    const pi = this.find(id);
    if (!CANCELABLE.includes(pi.status)) throw unexpectedState('canceled', structuredClone(pi), CANCELABLE);
    this.markCanceled(pi, reason ?? null);
    this.record(pi, 'cancel', ctx);
    return structuredClone(pi);
  }

  /** Stripe's own cancellation (an uncaptured authorization expires after 7 days), not an API call. */
  expire(id: string, reason: string): PaymentIntent {
    const pi = this.find(id);
    if (!CANCELABLE.includes(pi.status)) throw new Error(`cannot expire ${id}: status ${pi.status}`);
    this.markCanceled(pi, reason);
    this.record(pi, 'expire', { idempotencyKey: null });
    return structuredClone(pi);
  }

  private markCanceled(pi: PaymentIntent, reason: string | null): void {
    pi.status = 'canceled';
    pi.canceled_at = this.seconds();
    pi.cancellation_reason = reason;
    pi.amount_capturable = 0;
    pi.next_action = null;
  }
}

function offSessionWithSetup(): StripeApiError {
  return invalidRequest(
    'You cannot confirm with the `off_session` parameter when `setup_future_usage` is also set on the PaymentIntent ' +
      'because you cannot set up future usages when processing payments off-session.',
    { param: 'off_session' },
  );
}
