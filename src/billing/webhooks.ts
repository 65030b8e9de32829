/**
 * Stripe's webhooks, once verified (POST /v1/webhooks/stripe; docs/api.md): reconciles holds that Stripe
 * cancelled or let expire while the machine still counts them as `held`. Such a hold becomes a
 * `hold_canceled` event of the call's machine (a waiting call is cancelled, an active one ends with
 * billing_error, billed only through the money still held).
 *
 * Every outcome other than a transient failure (database down) is "received": Stripe retries anything
 * that is not 2xx for days, and an event about a hold we do not hold (our own release, a duplicate
 * delivery, another system's intent) will never become relevant.
 */
import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { Logger } from '../shared/logger.ts';
import type { BillingEngine } from './engine.ts';
import type { BillingSnapshot } from './model.ts';

/** The part of a Stripe event this needs (Stripe.Event fits). */
export interface StripeEventLike {
  id: string;
  type: string;
  data: { object: unknown };
}

export type StripeWebhookOutcome = { handled: 'hold_canceled'; callId: string; holdId: string } | { handled: 'ignored'; reason: string };

/**
 * Events that say a PaymentIntent can no longer be captured. `payment_failed` normally concerns an intent
 * that never got authorised (we learn that synchronously and never record it as held); for one we do
 * count as held it means the same as a cancellation, and the machine's guard ignores every other case.
 */
const HOLD_ENDED_EVENTS = new Set(['payment_intent.canceled', 'payment_intent.payment_failed']);

interface PaymentIntentLike {
  id?: unknown;
  cancellation_reason?: unknown;
  metadata?: unknown;
  last_payment_error?: { code?: unknown; decline_code?: unknown } | null;
}

const str = (value: unknown): string | null => (typeof value === 'string' && value !== '' ? value : null);

function isHeld(snapshot: BillingSnapshot, holdId: string): boolean {
  return snapshot.holds.some((hold) => hold.holdId === holdId && hold.status === 'held');
}

export class StripeWebhooks {
  constructor(private readonly deps: { db: Database; engine: BillingEngine; logger: Logger }) {}

  async handle(event: StripeEventLike): Promise<StripeWebhookOutcome> {
    if (!HOLD_ENDED_EVENTS.has(event.type)) return { handled: 'ignored', reason: `${event.type} is not handled` };
    const intent = (event.data.object ?? {}) as PaymentIntentLike;
    const holdId = str(intent.id);
    if (!holdId) return { handled: 'ignored', reason: 'the event carries no PaymentIntent id' };

    const found = await this.callOfHold(holdId, str((intent.metadata as Record<string, unknown> | undefined)?.call_id));
    if (!found) return { handled: 'ignored', reason: `no call holds ${holdId}` };
    // Our own releases are announced as payment_intent.canceled too: only a hold still held is news.
    // (Read without a lock to spare the call's row; the machine checks again under the lock.)
    if (!isHeld(found.snapshot, holdId)) return { handled: 'ignored', reason: `${holdId} is no longer held by call ${found.callId}` };

    const reason =
      event.type === 'payment_intent.canceled'
        ? `stripe: canceled (${str(intent.cancellation_reason) ?? 'no reason given'})`
        : `stripe: payment failed (${str(intent.last_payment_error?.decline_code) ?? str(intent.last_payment_error?.code) ?? 'no code given'})`;
    const applied = await this.deps.engine.dispatch(found.callId, { type: 'hold_canceled', holdId, reason });
    if (!applied.ok) {
      // A concurrent delivery or the end of the call got there first: nothing left to do.
      this.deps.logger.debug({ callId: found.callId, holdId, eventId: event.id, err: applied.error }, 'stripe webhook: hold_canceled refused (stale)');
      return { handled: 'ignored', reason: applied.error.message };
    }
    this.deps.logger.warn(
      { callId: found.callId, holdId, eventId: event.id, reason, state: applied.snapshot.state },
      'stripe webhook: the provider ended a hold the call still counted on; the call ends with billing_error',
    );
    return { handled: 'hold_canceled', callId: found.callId, holdId };
  }

  /**
   * The call that placed hold `holdId`. Our PaymentIntents carry the call id in their metadata (a key
   * lookup); without it, the payment outbox row of the hold, whose result names the hold id.
   */
  private async callOfHold(holdId: string, metadataCallId: string | null): Promise<{ callId: string; snapshot: BillingSnapshot } | null> {
    const { db, engine } = this.deps;
    if (metadataCallId) {
      const stored = await engine.load(db, metadataCallId);
      if (stored?.snapshot.holds.some((hold) => hold.holdId === holdId)) return { callId: metadataCallId, snapshot: stored.snapshot };
    }
    const op = await db
      .selectFrom('payment_ops')
      .select('call_id')
      .where('op', '=', 'hold')
      .where('status', '=', 'done')
      .where(sql<string>`result->>'hold_id'`, '=', holdId)
      .executeTakeFirst();
    if (!op) return null;
    const stored = await engine.load(db, op.call_id);
    return stored ? { callId: op.call_id, snapshot: stored.snapshot } : null;
  }
}
