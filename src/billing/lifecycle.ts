/**
 * The larger pure steps of the machine, kept out of the table so the table reads as a table:
 * creating a call's snapshot, stopping the meter (active → ending), failing a capture, and the
 * status figures of a call at an instant.
 */
import { findHold, placesHolds, releaseAllHeld, settle, settlementEffects, stopOffsetMs, updateHold } from './holds.ts';
import { defaultHoldLeadSeconds, durationSeconds, finalSummary, meterConfigProblem, meterStatus, type MeterStatus } from './meter.ts';
import type { BillingEffect, BillingSnapshot, EndReason, EventOf, InitiateAccepted } from './model.ts';

export const DEFAULT_GRACE_SECONDS = 30;
export const DEFAULT_JOIN_TIMEOUT_SECONDS = 120;

const CALL_ID = /^[A-Za-z0-9_-]{1,100}$/;

/** Why a call cannot be created with these parameters, or null. */
export function initiateProblem(e: InitiateAccepted): string | null {
  if (!CALL_ID.test(e.callId)) return 'call id must be a ULID-like token';
  if (!/^[a-z]{3}$/.test(e.currency)) return 'currency must be a lowercase ISO code';
  if (!e.paymentMethodId) return 'a payment method is required';
  const lead = e.holdLeadSeconds ?? defaultHoldLeadSeconds(e.windowSeconds);
  const problem = meterConfigProblem({ rateMinor: e.rateMinor, windowSeconds: e.windowSeconds, holdLeadSeconds: lead });
  if (problem) return problem;
  for (const [name, value] of [['grace', e.graceSeconds], ['join timeout', e.joinTimeoutSeconds]] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) return `${name} must be a whole number of seconds >= 1`;
  }
  const fee = e.destination?.feeBps;
  if (fee !== undefined && (!Number.isSafeInteger(fee) || fee < 0 || fee > 10_000)) return 'platform fee must be 0–10000 basis points';
  return null;
}

export function newSnapshot(e: InitiateAccepted, now: number): BillingSnapshot {
  return {
    callId: e.callId,
    state: 'pending',
    currency: e.currency,
    rateMinor: e.rateMinor,
    windowSeconds: e.windowSeconds,
    holdLeadSeconds: e.holdLeadSeconds ?? defaultHoldLeadSeconds(e.windowSeconds),
    graceSeconds: e.graceSeconds ?? DEFAULT_GRACE_SECONDS,
    joinTimeoutSeconds: e.joinTimeoutSeconds ?? DEFAULT_JOIN_TIMEOUT_SECONDS,
    paymentMethodId: e.paymentMethodId,
    customerRef: e.customerRef ?? null,
    // Frozen at initiate: a fee or expiry changed later does not reprice a call in progress.
    destination: e.destination ?? null,
    linkExpiresAtMs: e.linkExpiresAtMs ?? null,
    createdAtMs: now,
    waitingSinceMs: null,
    startedAtMs: null,
    currentWindow: 1,
    cutoffWindow: null,
    endedAtMs: null,
    meterStoppedAtMs: null,
    mediaGapSinceMs: null,
    endRequest: null,
    endReason: null,
    declineCode: null,
    holds: [],
    capturedMinor: 0,
    settlement: null,
    billedMinutes: null,
    totalChargedMinor: null,
    completedAtMs: null,
  };
}

/** The `call_status` message both sides get over signaling. */
export function statusNotice(to: 'host' | 'guest' | 'both', data: Record<string, unknown>): BillingEffect {
  return { type: 'notify', to, message: 'call_status', data };
}

/**
 * Active → ending: the meter stops at `requestedAtMs` (or at the open media gap's start, clamped by
 * stopOffsetMs()), the last window(s) are captured for what they cost and every other held hold is
 * released.
 */
export function enterEnding(s: BillingSnapshot, requestedAtMs: number, reason: EndReason, now: number): Partial<BillingSnapshot> {
  const stopMs = stopOffsetMs(s, requestedAtMs);
  const activeSeconds = durationSeconds(stopMs);
  const { settlement, holds } = settle(s, activeSeconds);
  return {
    holds,
    settlement,
    endReason: reason,
    endedAtMs: now,
    meterStoppedAtMs: s.startedAtMs! + stopMs,
    capturedMinor: s.capturedMinor + settlement.finalCaptureMinor,
    ...finalSummary(activeSeconds, s.rateMinor),
  };
}

/**
 * The provider ended hold `holdId` on its own (cancelled, or the authorisation expired): it is marked
 * released — by the provider, so no release intent is ever emitted for it — and, being no longer
 * `held`, it stops counting in heldThroughSeconds() and can never be part of a settlement's captures.
 */
export function providerReleased(s: BillingSnapshot, holdId: string): BillingSnapshot {
  return { ...s, holds: s.holds.map((hold) => (hold.holdId === holdId && hold.status === 'held' ? { ...hold, status: 'released' as const } : hold)) };
}

export function endingEffects(s: BillingSnapshot, next: BillingSnapshot): BillingEffect[] {
  return [
    { type: 'end_media', reason: next.endReason! },
    statusNotice('both', { status: 'ending', reason: next.endReason, ended_at: next.endedAtMs, duration_seconds: next.settlement!.activeSeconds }),
    ...settlementEffects(s, next.settlement!),
  ];
}

/** A capture failed for good: that money is lost, any hold still held is released, the call is over. */
export function captureFailed(s: BillingSnapshot, e: EventOf<'capture_impossible'>, now: number): Partial<BillingSnapshot> {
  const lost = findHold(s, e.window)!.capturedMinor;
  return {
    holds: updateHold({ ...s, holds: releaseAllHeld(s).holds }, e.window, { status: 'capture_failed', capturedMinor: 0 }),
    capturedMinor: s.capturedMinor - lost,
    totalChargedMinor: s.capturedMinor - lost,
    endReason: s.endReason ?? 'capture_failed',
    endedAtMs: s.endedAtMs ?? now,
    meterStoppedAtMs: s.meterStoppedAtMs ?? now,
  };
}

/** The operator is alerted: the wiring logs it at error level (a webhook event will carry it too, once webhooks exist). */
export function captureFailedEffects(s: BillingSnapshot, e: EventOf<'capture_impossible'>): BillingEffect[] {
  const amountMinor = findHold(s, e.window)!.capturedMinor;
  return [
    ...releaseAllHeld(s).effects,
    ...(s.state === 'active' ? [{ type: 'end_media', reason: 'capture_failed' } as const] : []),
    { type: 'notify', to: 'operator', message: 'billing.capture_failed', data: { call_id: s.callId, window: e.window, amount_minor: amountMinor, currency: s.currency, reason: e.reason } },
    statusNotice('both', { status: 'failed', reason: 'billing_error' }),
  ];
}

/**
 * `GET /calls/{id}/status` figures of a call at `now`: null until it is active. No next hold is
 * announced for free links, after a refused hold, or once the meter stopped.
 */
export function billingStatus(s: BillingSnapshot, now: number): MeterStatus | null {
  if (s.startedAtMs === null) return null;
  const config = { rateMinor: s.rateMinor, windowSeconds: s.windowSeconds, holdLeadSeconds: s.holdLeadSeconds };
  return meterStatus(config, s.startedAtMs, now, {
    stoppedAtMs: s.meterStoppedAtMs,
    placesHolds: placesHolds(s) && s.cutoffWindow === null && s.state === 'active',
  });
}
