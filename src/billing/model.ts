/**
 * The data of the billing state machine: states, events, the per-call snapshot and the effect
 * intents. Everything here is plain JSON-safe data so the DB layer can store the snapshot in a
 * row, the effects in an outbox and the event in the call event log, in one transaction.
 */

export const BILLING_STATES = ['pending', 'waiting', 'active', 'ending', 'completed', 'cancelled', 'failed'] as const;
export type BillingState = (typeof BILLING_STATES)[number];
export const TERMINAL_STATES: readonly BillingState[] = ['completed', 'cancelled', 'failed'];

export const BILLING_EVENTS = [
  'initiate_accepted',
  'hold_placed',
  'hold_refused',
  'media_connected',
  'media_gap_opened',
  'media_restored',
  'guest_ended',
  'host_rejected',
  'join_timeout',
  'link_expired',
  'next_hold_due',
  'window_boundary',
  'next_hold_refused',
  'participant_ended',
  'media_lost',
  'final_capture_done',
  'capture_impossible',
  'hold_canceled',
] as const;
export type BillingEventType = (typeof BILLING_EVENTS)[number];

import type { DtlsState } from '../sfu/types.ts';

export type { DtlsState };
export type Role = 'host' | 'guest';

/** Hosts with a Stripe Connect account: destination charges keeping a platform fee (basis points). */
export interface Destination {
  accountId: string;
  feeBps: number;
}

export interface InitiateAccepted {
  type: 'initiate_accepted';
  callId: string;
  currency: string;
  /** Minor units per minute; 0 for free links. */
  rateMinor: number;
  windowSeconds: number;
  /** Default: defaultHoldLeadSeconds(windowSeconds). */
  holdLeadSeconds?: number;
  /** Media may be gone this long before the call ends (default 30 s). */
  graceSeconds?: number;
  /** The host must join within this long (default 120 s). */
  joinTimeoutSeconds?: number;
  paymentMethodId: string;
  customerRef?: string | null;
  destination?: Destination | null;
  linkExpiresAtMs?: number | null;
}

/**
 * An end a participant asked for: `receivedAtMs` is when the server first received the request
 * (earlier than now for the retry of a request a crash cut off); `requestKey` names the request (its
 * X-Idempotency-Key) so that its retry is recognised and answered with the settled call.
 */
export interface EndRequestFields {
  receivedAtMs?: number;
  requestKey?: string | null;
}

/** One event per row of docs/api.md; payloads carry only what the guards need. */
export type BillingEvent =
  | InitiateAccepted
  /** A hold was authorised. Free links report window 1 with holdId null: no money, same path. */
  | { type: 'hold_placed'; window: number; holdId: string | null }
  /** The window-1 hold was declined (pending → cancelled). */
  | { type: 'hold_refused'; window: number; declineCode: string }
  /**
   * The DTLS state of both participants' transports, as the SFU sees them. Only the SFU wiring
   * (calls/paid/paid-call-events.ts) dispatches it: no client request maps to this event.
   */
  | { type: 'media_connected'; dtls: Record<Role, DtlsState> }
  | ({ type: 'guest_ended' } & EndRequestFields)
  | ({ type: 'host_rejected' } & EndRequestFields)
  | { type: 'join_timeout' }
  | { type: 'link_expired' }
  | { type: 'next_hold_due'; window: number }
  | { type: 'window_boundary'; window: number }
  | { type: 'next_hold_refused'; window: number; declineCode: string }
  | ({ type: 'participant_ended'; by: Role } & EndRequestFields)
  /**
   * Media is gone as of `stoppedAtMs`: one side's transport left or failed (from the SFU), or the
   * process died and `stoppedAtMs` is when media was last seen (from the reconciler).
   */
  | { type: 'media_gap_opened'; stoppedAtMs: number }
  /** Both participants' transports are DTLS-connected again (from the SFU). */
  | { type: 'media_restored' }
  /** The gap that opened at `stoppedAtMs` was still open when the grace period ran out. */
  | { type: 'media_lost'; stoppedAtMs: number }
  /** Every capture/release intent of the settlement succeeded; `capturedMinor` is their captured sum. */
  | { type: 'final_capture_done'; capturedMinor: number }
  /** A capture failed for good (hold expired, cancelled by the provider…). */
  | { type: 'capture_impossible'; window: number; reason: string }
  /**
   * The provider cancelled (or let expire) a hold we still count as `held` (Stripe's
   * payment_intent.canceled webhook): that money is gone before we could capture it.
   */
  | { type: 'hold_canceled'; holdId: string; reason: string };

export type EventOf<T extends BillingEventType> = Extract<BillingEvent, { type: T }>;

export type EndReason =
  | 'payment_failed'
  | 'user_ended'
  | 'host_ended'
  | 'host_rejected'
  | 'join_timeout'
  | 'link_expired'
  | 'media_lost'
  | 'billing_error'
  | 'capture_failed';

/**
 * placing → held | refused; held → captured | released (exactly once). A hold is marked
 * captured/released when the intent is emitted: the outbox then retries it with its idempotency
 * key until the provider answers, so "intent stored" is as good as done.
 */
export type HoldStatus = 'placing' | 'held' | 'refused' | 'captured' | 'released' | 'capture_failed';

export interface HoldRecord {
  window: number;
  amountMinor: number;
  status: HoldStatus;
  holdId: string | null;
  capturedMinor: number;
}

export interface EndRequest {
  by: Role;
  receivedAtMs: number;
  requestKey: string | null;
}

/** The final settlement, fixed when the call enters `ending`. */
export interface Settlement {
  activeSeconds: number;
  captures: Array<{ window: number; amountMinor: number }>;
  releases: number[];
  /** Sum of `captures`: what `final_capture_done` must report. */
  finalCaptureMinor: number;
}

export interface BillingSnapshot {
  callId: string;
  state: BillingState;
  currency: string;
  rateMinor: number;
  windowSeconds: number;
  holdLeadSeconds: number;
  graceSeconds: number;
  joinTimeoutSeconds: number;
  paymentMethodId: string;
  customerRef: string | null;
  destination: Destination | null;
  linkExpiresAtMs: number | null;
  createdAtMs: number;
  waitingSinceMs: number | null;
  startedAtMs: number | null;
  /** First window not yet captured at its boundary (1 until the call is active). */
  currentWindow: number;
  /** A next hold was refused: the call ends when this window ends (reason billing_error). */
  cutoffWindow: number | null;
  /** When the call ended (entered ending/cancelled). */
  endedAtMs: number | null;
  /** Where the meter stopped: ended_at, or when media stopped, or the end of the last held window. */
  meterStoppedAtMs: number | null;
  /**
   * Start of the open media gap (either side's media gone, or the server down), or null while media
   * flows. Window boundaries wait while it is open; an end meanwhile stops the meter here.
   */
  mediaGapSinceMs: number | null;
  /** The participant's end request that stopped the meter, as first received. */
  endRequest: EndRequest | null;
  endReason: EndReason | null;
  declineCode: string | null;
  holds: HoldRecord[];
  /** Sum of every capture intent emitted so far. */
  capturedMinor: number;
  settlement: Settlement | null;
  billedMinutes: number | null;
  totalChargedMinor: number | null;
  completedAtMs: number | null;
}

export type NotifyTarget = Role | 'both' | 'operator';

/** Intents, executed after the transaction commits (at least once, idempotently). Never side effects here. */
export type BillingEffect =
  | { type: 'reserve_link_use' }
  | { type: 'release_link_use' }
  | {
      type: 'place_hold';
      window: number;
      amountMinor: number;
      currency: string;
      paymentMethodId: string;
      customerRef: string | null;
      destination: { accountId: string; applicationFeeMinor: number } | null;
      idempotencyKey: string;
    }
  /** The provider restates a destination charge's fee pro rata from the hold's fee. */
  | { type: 'capture'; window: number; holdId: string; amountMinor: number; idempotencyKey: string }
  | { type: 'release_hold'; window: number; holdId: string; idempotencyKey: string }
  /** Close the call's media (SFU router) — the call is over for both sides. */
  | { type: 'end_media'; reason: EndReason }
  | { type: 'notify'; to: NotifyTarget; message: string; data: Record<string, unknown> }
  /** Fire `job` (an event of this machine) at `at` (epoch ms); a stale job is refused and dropped. */
  | { type: 'schedule'; at: number; job: BillingEvent };

/** One row of the call event log (table call_events). */
export interface CallEventRecord {
  at: number;
  type: BillingEventType;
  fromStatus: BillingState | null;
  toStatus: BillingState;
  cause: string | null;
  data: Record<string, unknown>;
}
