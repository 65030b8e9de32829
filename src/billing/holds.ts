/**
 * Pure helpers of the machine for holds and the final settlement: which holds exist, how far
 * the held money reaches, and the capture/release intents that end each hold exactly once.
 */
import { idempotencyKey } from './idempotency.ts';
import {
  applicationFeeMinor,
  chargeMinor,
  holdAmountMinor,
  lastWindow,
  windowChargeMinor,
  windowEndSeconds,
  windowStartSeconds,
  type MeterConfig,
} from './meter.ts';
import type { BillingEffect, BillingSnapshot, HoldRecord, Settlement } from './model.ts';

export function meterConfig(s: BillingSnapshot): MeterConfig {
  return { rateMinor: s.rateMinor, windowSeconds: s.windowSeconds, holdLeadSeconds: s.holdLeadSeconds };
}

/** Free links place no holds; every other rule is the same for them. */
export function placesHolds(s: BillingSnapshot): boolean {
  return s.rateMinor > 0;
}

export function findHold(s: BillingSnapshot, window: number): HoldRecord | undefined {
  return s.holds.find((hold) => hold.window === window);
}

/** Holds are placed in window order, one at a time, so the next one is always the count + 1. */
export function nextHoldWindow(s: BillingSnapshot): number {
  return s.holds.length + 1;
}

export function hasPlacingHold(s: BillingSnapshot): boolean {
  return s.holds.some((hold) => hold.status === 'placing');
}

/** A copy of the holds with one of them changed: snapshots are never mutated. */
export function updateHold(s: BillingSnapshot, window: number, patch: Partial<HoldRecord>): HoldRecord[] {
  return s.holds.map((hold) => (hold.window === window ? { ...hold, ...patch } : hold));
}

/** Absolute instant (ms) of an offset in seconds from started_at. */
export function atOffset(s: BillingSnapshot, seconds: number): number {
  return s.startedAtMs! + seconds * 1000;
}

export function windowEndAt(s: BillingSnapshot, window: number): number {
  return atOffset(s, windowEndSeconds(window, s.windowSeconds));
}

export function placeHold(s: BillingSnapshot, window: number): { record: HoldRecord; effect: BillingEffect } {
  const amountMinor = holdAmountMinor(meterConfig(s));
  return {
    record: { window, amountMinor, status: 'placing', holdId: null, capturedMinor: 0 },
    effect: {
      type: 'place_hold',
      window,
      amountMinor,
      currency: s.currency,
      paymentMethodId: s.paymentMethodId,
      customerRef: s.customerRef,
      destination: s.destination
        ? { accountId: s.destination.accountId, applicationFeeMinor: applicationFeeMinor(amountMinor, s.destination.feeBps) }
        : null,
      idempotencyKey: idempotencyKey(s.callId, window, 'hold'),
    },
  };
}

export function captureEffect(s: BillingSnapshot, hold: HoldRecord, amountMinor: number): BillingEffect {
  return {
    type: 'capture',
    window: hold.window,
    holdId: hold.holdId!,
    amountMinor,
    idempotencyKey: idempotencyKey(s.callId, hold.window, 'capture'),
  };
}

export function releaseEffect(s: BillingSnapshot, hold: HoldRecord): BillingEffect {
  return { type: 'release_hold', window: hold.window, holdId: hold.holdId!, idempotencyKey: idempotencyKey(s.callId, hold.window, 'release') };
}

/** Releases for every hold still held (cancellations, failures). */
export function releaseAllHeld(s: BillingSnapshot): { holds: HoldRecord[]; effects: BillingEffect[] } {
  const effects = s.holds.filter((hold) => hold.status === 'held').map((hold) => releaseEffect(s, hold));
  const holds = s.holds.map((hold) => (hold.status === 'held' ? { ...hold, status: 'released' as const } : hold));
  return { holds, effects };
}

/**
 * How far (seconds after the start) money is held: the end of the last window whose hold is
 * held or captured. Billing never runs past it, so a late job or a refused hold can cost the
 * platform a few seconds but never charge a window that has no authorisation. Free links: no limit.
 */
export function heldThroughSeconds(s: BillingSnapshot): number {
  if (!placesHolds(s)) return Number.POSITIVE_INFINITY;
  // Windows before the current one were settled at their boundaries (captured, or released when they cost 0).
  let through = windowStartSeconds(s.currentWindow, s.windowSeconds);
  for (let window = s.currentWindow; findHold(s, window)?.status === 'held'; window += 1) {
    through = windowEndSeconds(window, s.windowSeconds);
  }
  return through;
}

/**
 * Where the meter stops, in milliseconds after the start, for a call asked to stop at `requestedAtMs`.
 * Active time is media time: an open media gap stops it at the gap's start. It never stops before
 * what boundaries already captured (captures are not reversed), nor past the held money.
 */
export function stopOffsetMs(s: BillingSnapshot, requestedAtMs: number): number {
  const at = s.mediaGapSinceMs !== null ? Math.min(requestedAtMs, s.mediaGapSinceMs) : requestedAtMs;
  const capturedThroughMs = windowStartSeconds(s.currentWindow, s.windowSeconds) * 1000;
  return Math.min(Math.max(at - s.startedAtMs!, 0, capturedThroughMs), heldThroughSeconds(s) * 1000);
}

/**
 * The final settlement for a meter stopped at `activeSeconds`: each held window captures its share
 * (or is released when its share is 0) and the whole call comes to exactly chargeMinor(activeSeconds).
 */
export function settle(s: BillingSnapshot, activeSeconds: number): { settlement: Settlement; holds: HoldRecord[] } {
  const config = meterConfig(s);
  const captures: Settlement['captures'] = [];
  const releases: number[] = [];
  const holds = s.holds.map((hold) => {
    if (hold.status !== 'held') return hold;
    const amountMinor = windowChargeMinor(hold.window, config, activeSeconds);
    if (amountMinor === 0) {
      releases.push(hold.window);
      return { ...hold, status: 'released' as const };
    }
    captures.push({ window: hold.window, amountMinor });
    return { ...hold, status: 'captured' as const, capturedMinor: amountMinor };
  });
  // A window that costs something must have had its hold; stopSeconds() guarantees it.
  for (let window = s.currentWindow; window <= lastWindow(activeSeconds, s.windowSeconds); window += 1) {
    const owed = windowChargeMinor(window, config, activeSeconds);
    if (owed > 0 && !captures.some((c) => c.window === window)) throw new Error(`billing: window ${window} owes ${owed} without a hold`);
  }
  const finalCaptureMinor = captures.reduce((sum, c) => sum + c.amountMinor, 0);
  if (s.capturedMinor + finalCaptureMinor !== chargeMinor(activeSeconds, s.rateMinor)) {
    throw new Error(`billing: captures ${s.capturedMinor} + ${finalCaptureMinor} != charge of ${activeSeconds} s`);
  }
  return { settlement: { activeSeconds, captures, releases, finalCaptureMinor }, holds };
}

/** The capture/release intents of a settlement, in window order. */
export function settlementEffects(s: BillingSnapshot, settlement: Settlement): BillingEffect[] {
  const effects: BillingEffect[] = [];
  for (const hold of s.holds) {
    const capture = settlement.captures.find((c) => c.window === hold.window);
    if (capture) effects.push(captureEffect(s, hold, capture.amountMinor));
    else if (settlement.releases.includes(hold.window)) effects.push(releaseEffect(s, hold));
  }
  return effects;
}
