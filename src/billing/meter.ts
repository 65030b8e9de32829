/**
 * Window and money arithmetic of paid calls. Pure and integer-only: money is in minor units
 * (cents), time offsets are whole seconds since `started_at`, instants are epoch milliseconds.
 *
 * Definitions (W = window length in seconds, rate = minor units per started minute):
 *   window k covers [(k-1)·W, k·W) seconds after the start;
 *   charge(s)  = ⌈s / 60⌉ × rate                — what `s` active seconds cost (the invariant);
 *   window k's capture = charge(min(stop, k·W)) − charge((k-1)·W)
 * so the captures of windows 1..n telescope to exactly charge(stop), whatever W is. For whole-minute
 * windows a full window is W/60 × rate and the last one ⌈seconds in it / 60⌉ × rate (the spec's
 * wording); sub-minute test windows (10 s) keep the same invariant, some of their windows cost 0.
 */

export const SECONDS_PER_MINUTE = 60;
/** Lead of the next hold for real (whole-minute) windows: it is placed at window start + W − 60 s. */
export const HOLD_LEAD_SECONDS = 60;

export interface MeterConfig {
  /** Minor units per minute; 0 for free links. */
  rateMinor: number;
  windowSeconds: number;
  /** How long before a window ends the hold for the next one is placed. */
  holdLeadSeconds: number;
}

function assertSafe(value: number, what: string): number {
  if (!Number.isSafeInteger(value)) throw new Error(`billing: ${what} is not a safe integer (${value})`);
  return value;
}

function assertSeconds(seconds: number, what = 'seconds'): void {
  if (!Number.isSafeInteger(seconds) || seconds < 0) throw new Error(`billing: ${what} must be a whole number >= 0 (got ${seconds})`);
}

/** Links speak minutes (1–60); the meter speaks seconds so tests can run 10-second windows. */
export function windowSecondsFromMinutes(minutes: number): number {
  if (!Number.isSafeInteger(minutes) || minutes < 1) throw new Error(`billing: window minutes must be an integer >= 1 (got ${minutes})`);
  return minutes * SECONDS_PER_MINUTE;
}

/**
 * The spec's 60 s lead for every real window (W ≥ 1 min; at W = 1 min the next hold is due as the
 * window starts, still a full window ahead). Sub-minute test windows cannot have a 60 s lead, so
 * they use half the window: the hold is then placed mid-window, ahead of the boundary, as in production.
 */
export function defaultHoldLeadSeconds(windowSeconds: number): number {
  return windowSeconds >= SECONDS_PER_MINUTE ? HOLD_LEAD_SECONDS : Math.floor(windowSeconds / 2);
}

/** Refuses configurations the window math cannot honour (called once, when a call is created). */
export function meterConfigProblem(config: MeterConfig): string | null {
  const { rateMinor, windowSeconds, holdLeadSeconds } = config;
  if (!Number.isSafeInteger(rateMinor) || rateMinor < 0) return 'rate must be an integer number of minor units >= 0';
  if (!Number.isSafeInteger(windowSeconds) || windowSeconds < 2) return 'window must be a whole number of seconds >= 2';
  if (!Number.isSafeInteger(holdLeadSeconds) || holdLeadSeconds < 1 || holdLeadSeconds > windowSeconds) {
    return 'hold lead must be a whole number of seconds between 1 and the window length';
  }
  return null;
}

/** Whole seconds between two instants; a started second is not billed (the guest's favour). */
export function secondsBetween(fromMs: number, toMs: number): number {
  return Math.max(0, Math.floor((toMs - fromMs) / 1000));
}

/** `duration_seconds`: ⌈active milliseconds / 1000⌉, exactly (no snapping to windows). */
export function durationSeconds(activeMs: number): number {
  if (!Number.isSafeInteger(activeMs) || activeMs < 0) throw new Error(`billing: active milliseconds must be a whole number >= 0 (got ${activeMs})`);
  return Math.ceil(activeMs / 1000);
}

/** ⌈seconds / 60⌉: every started minute is billed. */
export function billedMinutes(activeSeconds: number): number {
  assertSeconds(activeSeconds, 'active seconds');
  return Math.ceil(activeSeconds / SECONDS_PER_MINUTE);
}

/** The invariant: what `activeSeconds` of a call cost, ⌈seconds / 60⌉ × rate. */
export function chargeMinor(activeSeconds: number, rateMinor: number): number {
  return assertSafe(billedMinutes(activeSeconds) * rateMinor, 'charge');
}

/**
 * `estimated_charge` of the status endpoint: elapsed minutes × rate, NOT rounded up to the
 * minute. Sub-cent remainders are floored (never show more than would be owed at that second);
 * BigInt so the product cannot lose precision. 270 s at 200/min → 900.
 */
export function estimatedChargeMinor(elapsedSeconds: number, rateMinor: number): number {
  assertSeconds(elapsedSeconds, 'elapsed seconds');
  return assertSafe(Number((BigInt(elapsedSeconds) * BigInt(rateMinor)) / 60n), 'estimated charge');
}

/** The window (1-based) that second `elapsedSeconds` falls in; a boundary second opens the next window. */
export function windowAt(elapsedSeconds: number, windowSeconds: number): number {
  assertSeconds(elapsedSeconds, 'elapsed seconds');
  return Math.floor(elapsedSeconds / windowSeconds) + 1;
}

export function windowStartSeconds(window: number, windowSeconds: number): number {
  return (window - 1) * windowSeconds;
}

export function windowEndSeconds(window: number, windowSeconds: number): number {
  return window * windowSeconds;
}

/** When the hold for `window` (≥ 2) is due: the previous window's start + W − lead. */
export function holdDueSeconds(window: number, config: MeterConfig): number {
  if (window < 2) throw new Error('billing: the hold for window 1 is placed at initiate, not on a timer');
  return windowStartSeconds(window - 1, config.windowSeconds) + config.windowSeconds - config.holdLeadSeconds;
}

/**
 * Every hold is for ⌈W / 60⌉ minutes: no window can cost more, because
 * ⌈(a + W)/60⌉ − ⌈a/60⌉ ≤ ⌈W/60⌉ for any start a. For whole-minute windows it is exactly W/60 × rate.
 */
export function holdAmountMinor(config: MeterConfig): number {
  return assertSafe(Math.ceil(config.windowSeconds / SECONDS_PER_MINUTE) * config.rateMinor, 'hold amount');
}

/** Window `window`'s share of a call that stopped at `stopSeconds` (Infinity: a full window). */
export function windowChargeMinor(window: number, config: MeterConfig, stopSeconds = Number.POSITIVE_INFINITY): number {
  const start = windowStartSeconds(window, config.windowSeconds);
  if (stopSeconds <= start) return 0;
  const end = Math.min(stopSeconds, windowEndSeconds(window, config.windowSeconds));
  return chargeMinor(end, config.rateMinor) - chargeMinor(start, config.rateMinor);
}

/** The window holding the last billed second (window 1 for a zero-second call). */
export function lastWindow(stopSeconds: number, windowSeconds: number): number {
  assertSeconds(stopSeconds, 'stop seconds');
  return Math.max(1, Math.ceil(stopSeconds / windowSeconds));
}

/** What each window of a call of `activeSeconds` captures, in order; the sum is chargeMinor(activeSeconds). */
export function captureSchedule(activeSeconds: number, config: MeterConfig): Array<{ window: number; amountMinor: number }> {
  const schedule: Array<{ window: number; amountMinor: number }> = [];
  for (let window = 1; window <= lastWindow(activeSeconds, config.windowSeconds); window += 1) {
    schedule.push({ window, amountMinor: windowChargeMinor(window, config, activeSeconds) });
  }
  return schedule;
}

/** The end-of-call figures: `billed_minutes` and `total_charged` (minor units). */
export function finalSummary(activeSeconds: number, rateMinor: number): { billedMinutes: number; totalChargedMinor: number } {
  return { billedMinutes: billedMinutes(activeSeconds), totalChargedMinor: chargeMinor(activeSeconds, rateMinor) };
}

/** A Connect platform fee in basis points of an amount, floored so it never exceeds its share. */
export function applicationFeeMinor(amountMinor: number, feeBps: number): number {
  if (!Number.isSafeInteger(feeBps) || feeBps < 0 || feeBps > 10_000) throw new Error(`billing: fee must be 0–10000 basis points (got ${feeBps})`);
  return Number((BigInt(assertSafe(amountMinor, 'amount')) * BigInt(feeBps)) / 10_000n);
}

export interface MeterStatus {
  elapsedSeconds: number;
  currentWindow: number;
  windowStartAtMs: number;
  /** null when no further hold will be placed (free link, refused hold, call over). */
  nextHoldAtMs: number | null;
  estimatedChargeMinor: number;
}

/**
 * The figures of `GET /calls/{id}/status`, computed from the clock (not from which jobs have run):
 * the documented example: 270 s on 2.00/min with 10-minute windows → window 1, 900, next hold at start + 9 min.
 * Once the meter stopped (`stoppedAtMs`), elapsed time is frozen there.
 */
export function meterStatus(
  config: MeterConfig,
  startedAtMs: number,
  nowMs: number,
  options: { stoppedAtMs?: number | null; placesHolds?: boolean } = {},
): MeterStatus {
  const stopped = options.stoppedAtMs !== undefined && options.stoppedAtMs !== null;
  const elapsedSeconds = secondsBetween(startedAtMs, stopped ? Math.min(nowMs, options.stoppedAtMs!) : nowMs);
  const currentWindow = stopped ? lastWindow(elapsedSeconds, config.windowSeconds) : windowAt(elapsedSeconds, config.windowSeconds);
  const placesHolds = (options.placesHolds ?? true) && config.rateMinor > 0 && !stopped;
  return {
    elapsedSeconds,
    currentWindow,
    windowStartAtMs: startedAtMs + windowStartSeconds(currentWindow, config.windowSeconds) * 1000,
    nextHoldAtMs: placesHolds ? startedAtMs + holdDueSeconds(currentWindow + 1, config) * 1000 : null,
    estimatedChargeMinor: estimatedChargeMinor(elapsedSeconds, config.rateMinor),
  };
}
