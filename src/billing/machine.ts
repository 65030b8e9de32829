/**
 * The billing state machine of paid calls (docs/api.md, "What a paid call is billed"): ONE transition table of
 * {from, event, to, guard, update, effects}. Guards, updates and effects are pure functions of
 * (snapshot, event, now); effects are data (intents) that the caller stores in an outbox and
 * executes after the transaction commits. The caller also stores `log` in the call event log.
 *
 * Several rows may share (from, event) with exclusive guards; the first whose guard passes wins.
 * A pair with no row, or whose guards all refuse, is a 409 invalid_state: replayed or stale jobs
 * (a window_boundary that already ran, a join_timeout after the host joined) land there and are
 * dropped by the runner.
 */
import { AppError } from '../shared/errors.ts';
import {
  atOffset,
  captureEffect,
  findHold,
  hasPlacingHold,
  meterConfig,
  nextHoldWindow,
  placeHold,
  placesHolds,
  releaseAllHeld,
  releaseEffect,
  updateHold,
  windowEndAt,
} from './holds.ts';
import { holdDueSeconds, windowChargeMinor } from './meter.ts';
import {
  captureFailed,
  captureFailedEffects,
  endingEffects,
  enterEnding,
  initiateProblem,
  newSnapshot,
  providerReleased,
  statusNotice as status,
} from './lifecycle.ts';
import type {
  BillingEffect,
  BillingEvent,
  BillingEventType,
  BillingSnapshot,
  BillingState,
  CallEventRecord,
  EndReason,
  EndRequest,
  EndRequestFields,
  EventOf,
  Role,
} from './model.ts';

interface Ctx<E> {
  /** The snapshot before the event (rows from `null` must not read it: there is no call yet). */
  readonly s: BillingSnapshot;
  readonly e: E;
  readonly now: number;
}

export interface TransitionRule<T extends BillingEventType = BillingEventType> {
  from: BillingState | null;
  event: T;
  to: BillingState;
  /** Why the event is refused, or null when it is allowed. */
  guard?: (c: Ctx<EventOf<T>>) => string | null;
  update?: (c: Ctx<EventOf<T>>) => Partial<BillingSnapshot>;
  effects?: (c: Ctx<EventOf<T>>, next: BillingSnapshot) => BillingEffect[];
}

export type TransitionResult =
  | { ok: true; next: BillingSnapshot; effects: BillingEffect[]; log: CallEventRecord }
  | { ok: false; error: AppError };

// Erases the event type so rows of different events fit in one array; each row stays typed where written.
function rule<T extends BillingEventType>(r: TransitionRule<T>): TransitionRule {
  return r as unknown as TransitionRule;
}

/** A waiting call ends before it started: the window-1 hold is released, nothing is charged. */
function cancelWaiting<T extends 'guest_ended' | 'host_rejected' | 'join_timeout' | 'link_expired'>(
  event: T,
  reason: EndReason,
  guard?: (c: Ctx<EventOf<T>>) => string | null,
  /** Who asked, for the ends a participant sends (kept so that a retry of the request is recognised). */
  endedBy?: Role,
): TransitionRule {
  return rule<T>({
    from: 'waiting',
    event,
    to: 'cancelled',
    ...(guard ? { guard } : {}),
    update: ({ s, e, now }) => ({
      holds: releaseAllHeld(s).holds,
      endReason: reason,
      endedAtMs: now,
      totalChargedMinor: 0,
      billedMinutes: 0,
      ...(endedBy ? { endRequest: endRequestOf(e as EndRequestFields, endedBy, now) } : {}),
    }),
    effects: ({ s }) => [...releaseAllHeld(s).effects, { type: 'end_media', reason }, status('both', { status: 'cancelled', reason })],
  });
}

const endReasonOf = (by: Role): EndReason => (by === 'host' ? 'host_ended' : 'user_ended');

/** An end counts from when the server first received it (never later than now). */
function endRequestOf(e: EndRequestFields, by: Role, now: number): EndRequest {
  return { by, receivedAtMs: Math.min(e.receivedAtMs ?? now, now), requestKey: e.requestKey ?? null };
}

const receivedAtProblem = ({ s, e }: Ctx<EndRequestFields>): string | null =>
  e.receivedAtMs === undefined || (Number.isSafeInteger(e.receivedAtMs) && e.receivedAtMs >= s.createdAtMs) ? null : 'an end cannot be received before the call existed';

/** While media is gone, window boundaries wait for the gap's outcome: no window is captured in the dark. */
const gapOpen = (s: BillingSnapshot): string | null =>
  s.mediaGapSinceMs === null ? null : `media is gone since ${new Date(s.mediaGapSinceMs).toISOString()}: the boundary waits for the gap's outcome`;

const graceEndsAt = (s: BillingSnapshot): number => s.mediaGapSinceMs! + s.graceSeconds * 1000;

/**
 * A failed capture counts even while the next window's hold is being placed: refusing it would drop
 * the failure for good (the call would run on with that window never paid). The hold placed later
 * finds the call failed and is released by the payment outbox (billing/payments.ts, releaseOrphan).
 */
const capturedHold = ({ s, e }: Ctx<EventOf<'capture_impossible'>>): string | null =>
  findHold(s, e.window)?.status === 'captured' ? null : `window ${e.window} has no capture`;

const placingHold = ({ s, e }: Ctx<{ window: number }>): string | null =>
  findHold(s, e.window)?.status === 'placing' ? null : `no hold is being placed for window ${e.window}`;

/** A provider cancellation counts only for a hold we still hold; anything else is a stale or repeated webhook. */
const heldHold = ({ s, e }: Ctx<EventOf<'hold_canceled'>>): string | null =>
  s.holds.some((hold) => hold.holdId === e.holdId && hold.status === 'held') ? null : `hold ${e.holdId} is not held by this call`;

const boundaryDue = ({ s, e, now }: Ctx<EventOf<'window_boundary'>>): string | null => {
  if (e.window !== s.currentWindow) return `window ${e.window} is not the current window (${s.currentWindow})`;
  if (now < windowEndAt(s, e.window)) return `window ${e.window} has not ended yet`;
  if (placesHolds(s) && findHold(s, e.window)?.status !== 'held') return `window ${e.window} has no hold to capture`;
  return gapOpen(s);
};

export const TRANSITIONS: readonly TransitionRule[] = [
  rule({
    from: null,
    event: 'initiate_accepted',
    to: 'pending',
    guard: ({ e }) => initiateProblem(e),
    update: ({ e, now }) => {
      const s = newSnapshot(e, now);
      return placesHolds(s) ? { ...s, holds: [placeHold(s, 1).record] } : s;
    },
    effects: (_c, next) => [{ type: 'reserve_link_use' }, ...(placesHolds(next) ? [placeHold(next, 1).effect] : [])],
  }),
  rule({
    from: 'pending',
    event: 'hold_placed',
    to: 'waiting',
    guard: (c) => {
      if (c.e.window !== 1) return 'only the window-1 hold moves a pending call';
      if (!placesHolds(c.s)) return c.e.holdId === null ? null : 'a free link has no hold';
      return placingHold(c) ?? (c.e.holdId ? null : 'a hold id is required');
    },
    update: ({ s, e, now }) => ({ holds: placesHolds(s) ? updateHold(s, 1, { status: 'held', holdId: e.holdId }) : s.holds, waitingSinceMs: now }),
    effects: ({ s, now }) => {
      const timeoutAt = now + s.joinTimeoutSeconds * 1000;
      const expiry = s.linkExpiresAtMs !== null && s.linkExpiresAtMs < timeoutAt ? Math.max(now, s.linkExpiresAtMs) : null;
      // The guest's signaling token comes with the initiate answer (or POST /calls/{id}/token): not an effect.
      return [
        { type: 'notify', to: 'host', message: 'call.incoming', data: { call_id: s.callId } },
        { type: 'schedule', at: timeoutAt, job: { type: 'join_timeout' } },
        ...(expiry === null ? [] : [{ type: 'schedule', at: expiry, job: { type: 'link_expired' } } as const]),
      ];
    },
  }),
  rule({
    from: 'pending',
    event: 'hold_refused',
    to: 'cancelled',
    guard: (c) => (c.e.window !== 1 ? 'only the window-1 hold is refused at initiate' : placingHold(c)),
    update: ({ s, e, now }) => ({
      holds: updateHold(s, 1, { status: 'refused' }),
      endReason: 'payment_failed',
      declineCode: e.declineCode,
      endedAtMs: now,
      totalChargedMinor: 0,
      billedMinutes: 0,
    }),
    // The initiate request reads the cancelled state (with its decline code) and answers 402 payment_failed.
    effects: () => [{ type: 'release_link_use' }],
  }),
  rule({
    from: 'waiting',
    event: 'media_connected',
    to: 'active',
    // Only the SFU's view of DTLS counts: a client saying "we are connected" never starts the meter.
    guard: ({ e }) => (e.dtls.host === 'connected' && e.dtls.guest === 'connected' ? null : 'both transports must be DTLS-connected'),
    update: ({ now }) => ({ startedAtMs: now, currentWindow: 1, mediaGapSinceMs: null }),
    effects: (_c, next) => [
      status('both', { status: 'active', started_at: next.startedAtMs }),
      { type: 'schedule', at: windowEndAt(next, 1), job: { type: 'window_boundary', window: 1 } },
      ...(placesHolds(next) ? [{ type: 'schedule', at: atOffset(next, holdDueSeconds(2, meterConfig(next))), job: { type: 'next_hold_due', window: 2 } } as const] : []),
    ],
  }),
  cancelWaiting('guest_ended', 'user_ended', receivedAtProblem, 'guest'),
  cancelWaiting('host_rejected', 'host_rejected', receivedAtProblem, 'host'),
  cancelWaiting('join_timeout', 'join_timeout', ({ s, now }) => (now >= s.waitingSinceMs! + s.joinTimeoutSeconds * 1000 ? null : 'the host still has time to join')),
  cancelWaiting('link_expired', 'link_expired', ({ s, now }) => (s.linkExpiresAtMs !== null && now >= s.linkExpiresAtMs ? null : 'the link has not expired')),
  // hold_canceled — the provider cancelled (or let expire) a hold still `held` here. Only waiting and
  // active calls have such holds, so only they have rows:
  // - pending: its one hold is still `placing` (the hold id arrives with hold_placed, which moves the call
  //   to waiting), so there is nothing the webhook could name; a cancellation racing hold_placed ends up
  //   as a failed capture later (ending → failed below).
  // - ending: the settlement already turned every held hold into a capture or a release intent. A release
  //   of an already-cancelled hold counts as done (providers' release); a capture fails for good and takes
  //   the existing capture_impossible → failed path (operator alerted), which is what happened: that money
  //   is lost. Marking it here would change nothing else, so the event is refused (409, dropped).
  // - terminal states: refused like every other event.
  rule({
    from: 'waiting',
    event: 'hold_canceled',
    to: 'cancelled',
    // The window-1 hold is gone before the call started: it cannot start, nothing is charged.
    guard: heldHold,
    update: ({ s, e, now }) => ({
      holds: releaseAllHeld(providerReleased(s, e.holdId)).holds,
      endReason: 'billing_error',
      endedAtMs: now,
      totalChargedMinor: 0,
      billedMinutes: 0,
    }),
    effects: ({ s, e }) => [
      ...releaseAllHeld(providerReleased(s, e.holdId)).effects, // none: a waiting call holds window 1 only
      { type: 'end_media', reason: 'billing_error' },
      status('both', { status: 'cancelled', reason: 'billing_error' }),
    ],
  }),
  rule({
    from: 'active',
    event: 'hold_canceled',
    to: 'ending',
    // Ends now with billing_error. Without the cancelled hold, stopSeconds() clamps the meter to the money
    // still held: a cancelled current-window hold bills only what the boundaries captured; a cancelled
    // next-window hold bills the current window up to now. The settlement captures/releases the other held
    // holds and never touches the cancelled one (it is no longer held).
    guard: heldHold,
    update: ({ s, e, now }) => enterEnding(providerReleased(s, e.holdId), now, 'billing_error', now),
    effects: ({ s, e }, next) => endingEffects(providerReleased(s, e.holdId), next),
  }),
  rule({
    from: 'active',
    event: 'next_hold_due',
    to: 'active',
    guard: ({ s, e, now }) => {
      if (!placesHolds(s)) return 'a free link places no holds';
      if (s.cutoffWindow !== null) return 'a hold was refused: no further holds';
      // One hold in flight at a time keeps holds contiguous, so "held through" is well defined.
      if (hasPlacingHold(s)) return 'the previous hold is still being placed';
      if (e.window !== nextHoldWindow(s)) return `the next hold is for window ${nextHoldWindow(s)}`;
      return now >= atOffset(s, holdDueSeconds(e.window, meterConfig(s))) ? null : `the hold for window ${e.window} is not due yet`;
    },
    update: ({ s, e }) => ({ holds: [...s.holds, placeHold(s, e.window).record] }),
    effects: ({ s, e }) => [placeHold(s, e.window).effect],
  }),
  rule({
    from: 'active',
    event: 'hold_placed',
    to: 'active',
    guard: (c) => placingHold(c) ?? (c.e.holdId ? null : 'a hold id is required'),
    update: ({ s, e }) => ({ holds: updateHold(s, e.window, { status: 'held', holdId: e.holdId }) }),
    // The chain of holds continues only once this one is secured. A hold that arrives after its
    // window began may have made that window's boundary job be refused and dropped: schedule it again
    // (a duplicate is refused as stale).
    effects: ({ s, e }) => [
      { type: 'schedule', at: atOffset(s, holdDueSeconds(e.window + 1, meterConfig(s))), job: { type: 'next_hold_due', window: e.window + 1 } },
      ...(e.window === s.currentWindow ? [{ type: 'schedule', at: windowEndAt(s, e.window), job: { type: 'window_boundary', window: e.window } } as const] : []),
    ],
  }),
  rule({
    from: 'active',
    event: 'next_hold_refused',
    to: 'active',
    // The refused window has not started: warn both sides, the call ends when the paid window does.
    guard: (c) => placingHold(c) ?? (c.e.window > c.s.currentWindow ? null : 'the refused window has already started'),
    update: ({ s, e }) => ({ holds: updateHold(s, e.window, { status: 'refused' }), cutoffWindow: Math.min(s.cutoffWindow ?? e.window - 1, e.window - 1), declineCode: e.declineCode }),
    effects: ({ s, e }) => [status('both', { status: 'active', warning: 'billing_error', decline_code: e.declineCode, ends_at: windowEndAt(s, e.window - 1) })],
  }),
  rule({
    from: 'active',
    event: 'next_hold_refused',
    to: 'ending',
    // The refused window already started (its boundary ran while the hold was pending): end now,
    // billed only through the last held window.
    guard: (c) => placingHold(c) ?? (c.e.window <= c.s.currentWindow ? null : 'the refused window has not started'),
    update: (c) => {
      const s = { ...c.s, holds: updateHold(c.s, c.e.window, { status: 'refused' }) };
      return { ...enterEnding(s, c.now, 'billing_error', c.now), declineCode: c.e.declineCode };
    },
    effects: ({ s }, next) => endingEffects(s, next),
  }),
  rule({
    from: 'active',
    event: 'window_boundary',
    to: 'active',
    guard: (c) => boundaryDue(c) ?? (c.s.cutoffWindow === c.e.window ? 'the call ends at this boundary' : null),
    update: ({ s, e }) => {
      const amount = windowChargeMinor(e.window, meterConfig(s));
      const holds = placesHolds(s) ? updateHold(s, e.window, amount > 0 ? { status: 'captured', capturedMinor: amount } : { status: 'released' }) : s.holds;
      return { holds, currentWindow: e.window + 1, capturedMinor: s.capturedMinor + amount };
    },
    effects: ({ s, e }) => {
      const hold = findHold(s, e.window);
      const amount = windowChargeMinor(e.window, meterConfig(s));
      const money = !hold ? [] : amount > 0 ? [captureEffect(s, hold, amount)] : [releaseEffect(s, hold)];
      return [...money, { type: 'schedule', at: windowEndAt(s, e.window + 1), job: { type: 'window_boundary', window: e.window + 1 } }];
    },
  }),
  rule({
    from: 'active',
    event: 'window_boundary',
    to: 'ending',
    // The next hold was refused: the paid window is over, the call ends with billing_error.
    guard: (c) => boundaryDue(c) ?? (c.s.cutoffWindow === c.e.window ? null : 'the call continues past this boundary'),
    update: ({ s, e, now }) => enterEnding(s, windowEndAt(s, e.window), 'billing_error', now),
    effects: ({ s }, next) => endingEffects(s, next),
  }),
  rule({
    from: 'active',
    event: 'participant_ended',
    to: 'ending',
    guard: receivedAtProblem,
    // Settled as of the first receipt (a retry after a crash does not bill the time in between), and
    // at the open gap's start if media was gone by then.
    update: ({ s, e, now }) => {
      const endRequest = endRequestOf(e, e.by, now);
      return { ...enterEnding(s, endRequest.receivedAtMs, endReasonOf(e.by), endRequest.receivedAtMs), endRequest };
    },
    effects: ({ s }, next) => endingEffects(s, next),
  }),
  rule({
    from: 'active',
    event: 'media_gap_opened',
    to: 'active',
    guard: ({ s, e, now }) => {
      if (!Number.isSafeInteger(e.stoppedAtMs) || e.stoppedAtMs < s.startedAtMs!) return 'media cannot stop before the call started';
      if (e.stoppedAtMs > now) return 'media cannot stop in the future';
      return s.mediaGapSinceMs === null ? null : `a media gap is already open since ${new Date(s.mediaGapSinceMs).toISOString()}`;
    },
    update: ({ e }) => ({ mediaGapSinceMs: e.stoppedAtMs }),
    // The grace period counts in call time from the gap's start, whether the server was up or not.
    effects: ({ s, e }) => [{ type: 'schedule', at: e.stoppedAtMs + s.graceSeconds * 1000, job: { type: 'media_lost', stoppedAtMs: e.stoppedAtMs } }],
  }),
  rule({
    from: 'active',
    event: 'media_restored',
    to: 'active',
    guard: ({ s, now }) => {
      if (s.mediaGapSinceMs === null) return 'no media gap is open';
      return now < graceEndsAt(s) ? null : "the grace period ran out: the call ends at the gap's start";
    },
    // The gap is billed as call time. A boundary that fell due inside it was refused: run it now.
    update: () => ({ mediaGapSinceMs: null }),
    effects: ({ s, now }) =>
      now >= windowEndAt(s, s.currentWindow) ? [{ type: 'schedule', at: windowEndAt(s, s.currentWindow), job: { type: 'window_boundary', window: s.currentWindow } }] : [],
  }),
  rule({
    from: 'active',
    event: 'media_lost',
    to: 'ending',
    guard: ({ s, e, now }) => {
      if (s.mediaGapSinceMs === null) return 'media came back: no gap is open';
      if (e.stoppedAtMs !== s.mediaGapSinceMs) return 'this is the job of another gap';
      return now >= graceEndsAt(s) ? null : 'media may still come back (grace period)';
    },
    // Billed up to the moment media stopped, not to when the grace period ran out.
    update: ({ s, now }) => enterEnding(s, s.mediaGapSinceMs!, 'media_lost', now),
    effects: ({ s }, next) => endingEffects(s, next),
  }),
  rule({
    from: 'active',
    event: 'capture_impossible',
    to: 'failed',
    guard: capturedHold,
    update: ({ s, e, now }) => captureFailed(s, e, now),
    effects: ({ s, e }) => captureFailedEffects(s, e),
  }),
  rule({
    from: 'ending',
    event: 'hold_placed',
    to: 'ending',
    // A hold requested before the end and confirmed after it is unused: release it at once.
    guard: (c) => placingHold(c) ?? (c.e.holdId ? null : 'a hold id is required'),
    update: ({ s, e }) => ({ holds: updateHold(s, e.window, { status: 'released', holdId: e.holdId }) }),
    effects: ({ s, e }) => [releaseEffect(s, { ...findHold(s, e.window)!, holdId: e.holdId })],
  }),
  rule({
    from: 'ending',
    event: 'next_hold_refused',
    to: 'ending',
    guard: placingHold,
    update: ({ s, e }) => ({ holds: updateHold(s, e.window, { status: 'refused' }) }),
  }),
  rule({
    from: 'ending',
    event: 'final_capture_done',
    to: 'completed',
    guard: ({ s, e }) => {
      if (hasPlacingHold(s)) return 'a hold is still being placed: its release must come first';
      const expected = s.settlement!.finalCaptureMinor;
      return e.capturedMinor === expected ? null : `the settlement captures ${expected}, not ${e.capturedMinor}`;
    },
    // The completed call, with its figures, is announced by the transition itself (call.ended).
    update: ({ s, now }) => ({ completedAtMs: now, totalChargedMinor: s.capturedMinor }),
  }),
  rule({
    from: 'ending',
    event: 'capture_impossible',
    to: 'failed',
    guard: capturedHold,
    update: ({ s, e, now }) => captureFailed(s, e, now),
    effects: ({ s, e }) => captureFailedEffects(s, e),
  }),
];

function refuse(state: BillingState | null, event: BillingEventType, why: string): TransitionResult {
  const message = `${event} is not allowed ${state ? `when the call is ${state}` : 'before the call exists'}: ${why}`;
  return { ok: false, error: new AppError('invalid_state', message, { state, event }) };
}

/** Applies one event at `now` (epoch ms). Pure: same inputs, same result, nothing touched. */
export function transition(snapshot: BillingSnapshot | null, event: BillingEvent, now: number): TransitionResult {
  const from = snapshot?.state ?? null;
  if (!Number.isSafeInteger(now)) throw new Error(`billing: now must be epoch milliseconds (got ${now})`);
  const rows = TRANSITIONS.filter((row) => row.from === from && row.event === event.type);
  if (rows.length === 0) return refuse(from, event.type, 'no such transition');
  const ctx: Ctx<BillingEvent> = { s: snapshot as BillingSnapshot, e: event, now };
  const reasons: string[] = [];
  for (const row of rows) {
    const why = row.guard?.(ctx as never) ?? null;
    if (why !== null) {
      reasons.push(why);
      continue;
    }
    const next: BillingSnapshot = { ...(snapshot as BillingSnapshot), ...row.update?.(ctx as never), state: row.to };
    const effects = row.effects?.(ctx as never, next) ?? [];
    const { type, ...data } = event;
    const cause = next.endReason !== (snapshot?.endReason ?? null) ? next.endReason : null;
    return { ok: true, next, effects, log: { at: now, type, fromStatus: from, toStatus: row.to, cause, data } };
  }
  return refuse(from, event.type, reasons.join('; '));
}

/** Which event POST /calls/{id}/end means for the caller's role in the call's current state. */
export function endEventFor(state: BillingState, by: Role, request: EndRequestFields = {}): BillingEvent | null {
  if (state === 'waiting') return by === 'guest' ? { type: 'guest_ended', ...request } : { type: 'host_rejected', ...request };
  if (state === 'active') return { type: 'participant_ended', by, ...request };
  return null;
}
