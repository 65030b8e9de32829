/**
 * PaymentMethods of the test server and Stripe's rules for using one more than once.
 *
 *   POST /v1/payment_methods                 create (`type=card`, `card[token]=tok_visa` …)
 *   GET  /v1/payment_methods/:id             retrieve
 *   POST /v1/payment_methods/:id/attach      attach to a Customer (`customer`)
 *
 * Test cards. `pm_card_visa`, `pm_card_chargeDeclined`, … are Stripe's test tokens: as on Stripe, each use
 * (a PaymentIntent's `payment_method`, an attach) makes a fresh PaymentMethod (`pm_…`) from the template, so
 * a token can be used any number of times; the PaymentIntent carries the fresh id. `tok_visa`,
 * `tok_chargeDeclined`, … (the same names with `tok_`) create one with `POST /v1/payment_methods` — what
 * Stripe.js does with a guest's card.
 *
 * Reuse (Stripe's rule): a PaymentMethod that paid (an authorization or a charge) without being attached to
 * a Customer is spent — using it again, or attaching it, is a 400 `payment_method_unexpected_state`:
 * "This PaymentMethod was previously used without being attached to a Customer or was detached from a
 * Customer, and may not be used again." It is attached by `POST …/attach`, or by a PaymentIntent with
 * `customer` and `setup_future_usage` once it succeeds; an attached one may be used again any number of
 * times, but only by PaymentIntents of its Customer.
 * Simplified: `setup_future_usage` without a `customer` spends the PaymentMethod like any other use (Stripe
 * would still let it be attached afterwards); there is no detach.
 */
import { createHash } from 'node:crypto';
import type { Customers } from './customers.ts';
import { invalidRequest, missingParameter, noSuch, type StripeApiError } from './errors.ts';
import type { FormObject } from './form.ts';
import { randomId } from './ids.ts';
import { allowOnly, hash, metadata, oneOf, str } from './params.ts';

export interface TestCard {
  brand: string;
  last4: string;
  /** The decline code every payment with it gets. */
  decline?: string;
  /** Asks for 3-D Secure (on session: requires_action; off session: declined authentication_required). */
  authentication?: true;
}

/** Stripe's test PaymentMethods: `undefined` = approves; a decline code; or a 3-D Secure challenge. */
export const TEST_CARDS: Record<string, TestCard> = {
  pm_card_visa: { brand: 'visa', last4: '4242' },
  pm_card_visa_debit: { brand: 'visa', last4: '5556' },
  pm_card_mastercard: { brand: 'mastercard', last4: '4444' },
  pm_card_amex: { brand: 'amex', last4: '8431' },
  pm_card_chargeDeclined: { brand: 'visa', last4: '0002', decline: 'generic_decline' },
  pm_card_chargeDeclinedInsufficientFunds: { brand: 'visa', last4: '9995', decline: 'insufficient_funds' },
  pm_card_insufficientFunds: { brand: 'visa', last4: '9995', decline: 'insufficient_funds' },
  pm_card_chargeDeclinedLostCard: { brand: 'visa', last4: '9987', decline: 'lost_card' },
  pm_card_chargeDeclinedStolenCard: { brand: 'visa', last4: '9979', decline: 'stolen_card' },
  pm_card_chargeDeclinedExpiredCard: { brand: 'visa', last4: '0069', decline: 'expired_card' },
  pm_card_chargeDeclinedIncorrectCvc: { brand: 'visa', last4: '0127', decline: 'incorrect_cvc' },
  pm_card_chargeDeclinedProcessingError: { brand: 'visa', last4: '0119', decline: 'processing_error' },
  pm_card_authenticationRequired: { brand: 'visa', last4: '3184', authentication: true },
};

export interface PaymentMethod {
  id: string;
  object: 'payment_method';
  billing_details: {
    address: { city: null; country: null; line1: null; line2: null; postal_code: null; state: null };
    email: string | null;
    name: string | null;
    phone: null;
  };
  card: {
    brand: string;
    checks: { address_line1_check: null; address_postal_code_check: null; cvc_check: 'pass' };
    country: 'US';
    exp_month: number;
    exp_year: number;
    fingerprint: string;
    funding: 'credit' | 'debit';
    last4: string;
    three_d_secure_usage: { supported: true };
    wallet: null;
  };
  created: number;
  customer: string | null;
  livemode: false;
  metadata: Record<string, string>;
  type: 'card';
}

const CREATE_PARAMS = ['type', 'card', 'billing_details', 'metadata', 'expand'];
const ATTACH_PARAMS = ['customer', 'expand'];

/** The rule's message, as Stripe words it. */
export const SPENT_MESSAGE =
  'This PaymentMethod was previously used without being attached to a Customer or was detached from a Customer, and may not be used again.';

export class PaymentMethods {
  readonly items = new Map<string, PaymentMethod>();
  /** The test card each PaymentMethod was made from, and whether it is spent (paid once, unattached). */
  private readonly facts = new Map<string, { template: string; spent: boolean }>();

  constructor(
    private readonly now: () => number,
    private readonly customers: Customers,
  ) {}

  create(params: FormObject): PaymentMethod {
    allowOnly(params, CREATE_PARAMS);
    oneOf(params, 'type', ['card'] as const);
    if (str(params, 'type') === undefined) throw missingParameter('type');
    const card = hash(params, 'card', ['token']);
    if (!card) throw missingParameter('card');
    const token = str(card, 'token');
    if (token === undefined) throw missingParameter('card[token]');
    const template = `pm_card_${token.replace(/^tok_/, '')}`;
    if (!token.startsWith('tok_') || !TEST_CARDS[template]) throw noSuch('token', token, 'card[token]', 400);
    const billing = hash(params, 'billing_details', ['name', 'email']);
    const pm = this.make(template, {
      name: billing ? (str(billing, 'name') ?? null) : null,
      email: billing ? (str(billing, 'email') ?? null) : null,
    });
    pm.metadata = metadata(params) ?? {};
    return structuredClone(pm);
  }

  /** A test token reads as its template (a fresh PaymentMethod is only made when one is used). */
  retrieve(id: string): PaymentMethod {
    const pm = this.items.get(id);
    if (pm) return structuredClone(pm);
    if (TEST_CARDS[id]) return { ...this.build(id, { name: null, email: null }), id };
    throw noSuch('PaymentMethod', id, 'payment_method');
  }

  attach(id: string, params: FormObject): PaymentMethod {
    allowOnly(params, ATTACH_PARAMS);
    const customer = str(params, 'customer');
    if (customer === undefined) throw missingParameter('customer');
    this.customers.require(customer, 'customer');
    this.known(id, 'payment_method');
    const pm = this.items.get(this.use(id)) as PaymentMethod;
    if (pm.customer === customer) return structuredClone(pm);
    if (pm.customer !== null) {
      throw invalidRequest('The payment method you provided has already been attached to a customer.', { param: 'payment_method' });
    }
    if (this.facts.get(pm.id)?.spent) throw spent();
    pm.customer = customer;
    return structuredClone(pm);
  }

  /** `payment_method=<id>` names a test token or a PaymentMethod of this server; no side effect. */
  known(id: string, param: string): void {
    if (!TEST_CARDS[id] && !this.items.has(id)) throw noSuch('PaymentMethod', id, param);
  }

  /**
   * Stripe's rules for paying with `id` on a PaymentIntent of `customer` (null: none). A test token is
   * always usable (every use is a fresh PaymentMethod).
   */
  assertUsable(id: string, customer: string | null): void {
    const pm = this.items.get(id);
    if (!pm) return;
    if (pm.customer !== null && customer === null) {
      throw invalidRequest(
        `The provided PaymentMethod ${id} is attached to a Customer. To use it, pass that Customer's ID in \`customer\`.`,
        { param: 'customer' },
      );
    }
    if (pm.customer !== null && pm.customer !== customer) {
      throw invalidRequest(
        `The customer does not have a payment method with the ID ${id}. The payment method must be attached to the customer.`,
        { param: 'payment_method', code: 'resource_missing' },
      );
    }
    if (pm.customer === null && this.facts.get(id)?.spent) throw spent();
  }

  /** The PaymentMethod a PaymentIntent gets for `id`: a fresh one for a test token, else `id` itself. */
  use(id: string): string {
    if (this.items.has(id)) return id;
    if (!TEST_CARDS[id]) throw noSuch('PaymentMethod', id, 'payment_method');
    return this.make(id, { name: null, email: null }).id;
  }

  /** After a successful payment: attached to `customer` (with setup_future_usage), else spent unless attached. */
  paid(id: string, customer: string | null, setupFutureUsage: string | null): void {
    const pm = this.items.get(id);
    const facts = this.facts.get(id);
    if (!pm || !facts || pm.customer !== null) return;
    if (customer !== null && setupFutureUsage !== null) pm.customer = customer;
    else facts.spent = true;
  }

  card(id: string): TestCard | undefined {
    const template = this.facts.get(id)?.template ?? id;
    return TEST_CARDS[template];
  }

  view(id: string): PaymentMethod | undefined {
    const pm = this.items.get(id);
    return pm ? structuredClone(pm) : undefined;
  }

  private make(template: string, billing: { name: string | null; email: string | null }): PaymentMethod {
    const pm = this.build(template, billing);
    this.items.set(pm.id, pm);
    this.facts.set(pm.id, { template, spent: false });
    return pm;
  }

  private build(template: string, billing: { name: string | null; email: string | null }): PaymentMethod {
    const card = TEST_CARDS[template] as TestCard;
    return {
      id: randomId('pm'),
      object: 'payment_method',
      billing_details: {
        address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null },
        email: billing.email,
        name: billing.name,
        phone: null,
      },
      card: {
        brand: card.brand,
        checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'pass' },
        country: 'US',
        exp_month: 12,
        exp_year: new Date(this.now()).getUTCFullYear() + 3,
        fingerprint: createHash('sha256').update(template).digest('base64url').replace(/[-_]/g, '').slice(0, 16),
        funding: template.endsWith('_debit') ? 'debit' : 'credit',
        last4: card.last4,
        three_d_secure_usage: { supported: true },
        wallet: null,
      },
      created: Math.floor(this.now() / 1000),
      customer: null,
      livemode: false,
      metadata: {},
      type: 'card',
    };
  }
}

function spent(): StripeApiError {
  return invalidRequest(SPENT_MESSAGE, { param: 'payment_method', code: 'payment_method_unexpected_state' });
}
