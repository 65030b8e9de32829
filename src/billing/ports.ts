/**
 * What the billing engine needs from the outside, as interfaces: its two kinds of job (on the shared
 * job queue, src/jobs/) and the link use counter. Its notices go to a BillingListener (engine.ts) that the paid-call layer
 * implements: the engine never touches a socket, a router or a timer itself.
 */
import type { DbHandle, Tx } from '../db/database.ts';
import { taskKind } from '../jobs/index.ts';
import type { BillingEvent, BillingSnapshot, CallEventRecord } from './model.ts';

export type { JobQueue } from '../jobs/index.ts';

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

/** A machine event due at a time: window boundaries, next holds, timeouts, media-loss decisions. */
export const BILLING_TICK = taskKind<TickJob>('billing_tick');
/** One payment outbox row to execute against the provider. */
export const BILLING_PAYMENT = taskKind<PaymentJob>('billing_payment');

/**
 * The call a billing snapshot belongs to (tables calls and call_events, owned by calls/): each
 * transition is mirrored on the call and logged there, in the transaction that decided it.
 */
export interface BilledCall {
  transitioned(tx: Tx, callId: string, snapshot: BillingSnapshot, log: CallEventRecord): Promise<void>;
  /** The provider's final answer to one payment operation, recorded in the same transaction. */
  paymentSettled(tx: Tx, outcome: PaymentSettled): Promise<void>;
}

/** One payment operation as the provider finally answered it. */
export interface PaymentSettled {
  callId: string;
  op: 'hold' | 'capture' | 'release';
  window: number;
  holdId: string | null;
  /** Holds: the amount asked; captures: the amount captured; releases: 0. */
  amountMinor: number;
  ok: boolean;
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
