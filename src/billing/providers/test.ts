/**
 * The in-process payment provider: the embedded default and the demo page, and the provider of
 * every billing test. It mimics Stripe's test PaymentMethods and Stripe's idempotency, strictly
 * enough that a double capture or a forgotten hold fails a test.
 *
 * Its holds and idempotency replies live in a store (./test-stores.ts): in memory by default
 * (`new TestPaymentProvider()`, tests), or in the server's database (`payments.provider: test`,
 * built by createPaymentProvider), where they survive a restart as Stripe's would.
 *
 * Cards (Stripe test PaymentMethod ids):
 *   succeed: pm_card_visa, pm_card_visa_debit, pm_card_mastercard, pm_card_amex
 *   decline: pm_card_chargeDeclined (generic_decline),
 *            pm_card_chargeDeclinedInsufficientFunds and pm_card_insufficientFunds (insufficient_funds),
 *            pm_card_chargeDeclinedLostCard (lost_card), pm_card_chargeDeclinedStolenCard (stolen_card),
 *            pm_card_chargeDeclinedExpiredCard (expired_card)
 *   callplane only: pm_card_callplane_declineAfterFirstHold — window 1 is held, later windows are
 *            declined (insufficient_funds): drives the refused-next-hold path end to end.
 *   anything else: declined with resource_missing, as Stripe refuses an unknown PaymentMethod.
 */
import { AppError } from '../../shared/errors.ts';
import { systemClock, type Clock } from '../../shared/clock.ts';
import {
  PaymentDeclined,
  ProviderUnavailable,
  type CaptureInput,
  type PaymentProvider,
  type PlaceHoldInput,
  type ProviderHoldStatus,
  type ReleaseInput,
} from './types.ts';
import { MemoryTestPaymentStore, type TestHold, type TestHoldAccess, type TestPaymentStore } from './test-stores.ts';

export { MemoryTestPaymentStore, PgTestPaymentStore } from './test-stores.ts';
export type { TestHold, TestPaymentStore } from './test-stores.ts';

export const DECLINE_AFTER_FIRST_HOLD_CARD = 'pm_card_callplane_declineAfterFirstHold';

/** null: the card authorises; otherwise the decline code it answers with. */
export const TEST_CARDS: Readonly<Record<string, string | null>> = {
  pm_card_visa: null,
  pm_card_visa_debit: null,
  pm_card_mastercard: null,
  pm_card_amex: null,
  pm_card_chargeDeclined: 'generic_decline',
  pm_card_chargeDeclinedInsufficientFunds: 'insufficient_funds',
  pm_card_insufficientFunds: 'insufficient_funds',
  pm_card_chargeDeclinedLostCard: 'lost_card',
  pm_card_chargeDeclinedStolenCard: 'stolen_card',
  pm_card_chargeDeclinedExpiredCard: 'expired_card',
  [DECLINE_AFTER_FIRST_HOLD_CARD]: null,
};

function declineMessage(code: string): string {
  if (code === 'insufficient_funds') return 'Your card has insufficient funds.';
  if (code === 'expired_card') return 'Your card has expired.';
  if (code === 'resource_missing') return 'No such PaymentMethod.';
  return 'Your card was declined.';
}

function notFound(holdId: string): AppError {
  return new AppError('not_found', `no such hold ${holdId}`, { hold_id: holdId });
}

function invalidState(hold: TestHold, operation: string): AppError {
  return new AppError('invalid_state', `cannot ${operation} hold ${hold.holdId}: it is ${hold.status}`, {
    hold_id: hold.holdId,
    hold_status: hold.status,
  });
}

export class TestPaymentProvider implements PaymentProvider {
  private readonly clock: Clock;
  private readonly store: TestPaymentStore;
  private outages = 0;

  constructor(options: { clock?: Clock; store?: TestPaymentStore } = {}) {
    this.clock = options.clock ?? systemClock;
    this.store = options.store ?? new MemoryTestPaymentStore();
  }

  async placeHold(input: PlaceHoldInput): Promise<{ holdId: string; status: 'held' }> {
    const { callId, window, amountMinor, currency, paymentMethodId, idempotencyKey } = input;
    const destination = input.destination ?? null;
    const fingerprint = JSON.stringify(['hold', callId, window, amountMinor, currency, paymentMethodId, input.customerRef ?? null, destination]);
    return this.once(idempotencyKey, fingerprint, async (holds) => {
      if (!Number.isSafeInteger(amountMinor) || amountMinor < 1) throw new AppError('validation_failed', `hold amount must be a positive integer (got ${amountMinor})`);
      if (!/^[a-z]{3}$/.test(currency)) throw new AppError('validation_failed', `currency must be a lowercase ISO code (got ${currency})`);
      const fee = destination?.applicationFeeMinor;
      if (fee !== undefined && (!Number.isSafeInteger(fee) || fee < 0 || fee > amountMinor)) {
        throw new AppError('validation_failed', 'the application fee must be between 0 and the amount');
      }
      const declineCode = Object.hasOwn(TEST_CARDS, paymentMethodId) ? TEST_CARDS[paymentMethodId] : 'resource_missing';
      if (declineCode) throw new PaymentDeclined(declineCode, declineMessage(declineCode));
      if (paymentMethodId === DECLINE_AFTER_FIRST_HOLD_CARD && window > 1) {
        throw new PaymentDeclined('insufficient_funds', declineMessage('insufficient_funds'));
      }
      const holdId = await holds.add({ callId, window, amountMinor, currency, paymentMethodId, destination, placedAtMs: this.clock.nowMs() });
      return { holdId, status: 'held' as const };
    });
  }

  async capture(input: CaptureInput): Promise<{ captured: number }> {
    const fingerprint = JSON.stringify(['capture', input.holdId, input.amountMinor]);
    return this.once(input.idempotencyKey, fingerprint, async (holds) => {
      const hold = await this.hold(holds, input.holdId);
      if (hold.status !== 'held') throw invalidState(hold, 'capture');
      if (!Number.isSafeInteger(input.amountMinor) || input.amountMinor < 1 || input.amountMinor > hold.amountMinor) {
        throw new AppError('validation_failed', `capture must be between 1 and the held ${hold.amountMinor} (got ${input.amountMinor})`);
      }
      // A partial capture releases the rest of the authorisation, as Stripe's does.
      await holds.update(hold.holdId, { status: 'captured', amountCapturedMinor: input.amountMinor, settledAtMs: this.clock.nowMs() });
      return { captured: input.amountMinor };
    });
  }

  async release(input: ReleaseInput): Promise<void> {
    const fingerprint = JSON.stringify(['release', input.holdId]);
    await this.once(input.idempotencyKey, fingerprint, async (holds) => {
      const hold = await this.hold(holds, input.holdId);
      // An authorisation the provider already dropped is released: our release just acknowledges it, once.
      if (hold.status === 'released' && hold.releasedBy === 'provider') {
        await holds.update(hold.holdId, { releasedBy: 'caller' });
        return undefined;
      }
      if (hold.status !== 'held') throw invalidState(hold, 'release');
      await holds.update(hold.holdId, { status: 'released', releasedBy: 'caller', settledAtMs: this.clock.nowMs() });
      return undefined;
    });
  }

  async retrieve(holdId: string): Promise<{ status: ProviderHoldStatus; amountCapturedMinor: number }> {
    this.outage();
    const hold = await this.store.find(holdId);
    if (!hold) throw notFound(holdId);
    return { status: hold.status, amountCapturedMinor: hold.amountCapturedMinor };
  }

  // ---- test hooks -------------------------------------------------------------------------

  /** The next `count` calls of this instance fail with ProviderUnavailable before reaching the "provider" (nothing recorded). */
  failNext(count = 1): void {
    this.outages += count;
  }

  /** The authorisation lapsed (Stripe drops uncaptured holds after 7 days): captures now fail. */
  async expireHold(holdId: string): Promise<void> {
    await this.store.atomically(async (holds) => {
      const hold = await this.hold(holds, holdId);
      if (hold.status !== 'held') throw invalidState(hold, 'expire');
      await holds.update(holdId, { status: 'released', releasedBy: 'provider', settledAtMs: this.clock.nowMs() });
    });
  }

  /** Copies of the holds (of one call, or all), in the order they were placed. */
  list(callId?: string): Promise<TestHold[]> {
    return this.store.list(callId);
  }

  // ---- internals --------------------------------------------------------------------------

  private outage(): void {
    if (this.outages > 0) {
      this.outages -= 1;
      throw new ProviderUnavailable('test provider: simulated outage');
    }
  }

  private async hold(holds: TestHoldAccess, holdId: string): Promise<TestHold> {
    const hold = await holds.get(holdId);
    if (!hold) throw notFound(holdId);
    return hold;
  }

  /**
   * Runs `operation` once per idempotency key (atomically, in the store): the same key with the same
   * arguments replays the first answer (value or error); with other arguments it is an idempotency_conflict.
   */
  private async once<T>(key: string, fingerprint: string, operation: (holds: TestHoldAccess) => Promise<T>): Promise<T> {
    this.outage();
    if (!key) throw new AppError('validation_failed', 'an idempotency key is required');
    return this.store.once(key, fingerprint, operation);
  }
}
