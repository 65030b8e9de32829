/**
 * What the billing engine needs from the outside, as interfaces: the job queue (graphile-worker) and
 * the link use counter. Its notices go to a BillingListener (engine.ts) that the paid-call layer
 * implements: the engine never touches a socket, a router or a timer itself.
 */
import type { DbHandle } from '../db/database.ts';
import type { BillingEvent } from './model.ts';

export interface TickJob {
  callId: string;
  event: BillingEvent;
  /** When the event is due on the application clock (epoch ms); the job queue runs on real time. */
  at: number;
}

export interface PaymentJob {
  /** payment_ops.idempotency_key */
  key: string;
}

export interface JobQueue {
  /**
   * Adds a job inside the caller's transaction, so it exists exactly when the decision that made it
   * was committed. `jobKey` replaces an earlier job with the same key instead of adding another.
   */
  add(db: DbHandle, task: 'billing_tick', payload: TickJob, options?: { runAt?: Date; jobKey?: string }): Promise<void>;
  add(db: DbHandle, task: 'billing_payment', payload: PaymentJob, options?: { runAt?: Date; jobKey?: string }): Promise<void>;
}

export interface LinkUseCounter {
  reserveUse(db: DbHandle, linkId: string): Promise<void>;
  releaseUse(db: DbHandle, linkId: string): Promise<void>;
}

/** Who is who in one paid call (call_billing). */
export interface PaidCallParties {
  callId: string;
  linkId: string;
  hostId: string;
  guestId: string;
}
