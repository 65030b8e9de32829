/**
 * When a failed delivery is tried again (docs/webhooks.md, "Retries"): 5 s after the first failure,
 * doubling, at most 1 h apart, for 24 h from the first attempt; then the delivery is `failed`.
 */
export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  /** How long after the first attempt a delivery is still tried. */
  giveUpAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { initialMs: 5000, maxMs: 3600_000, giveUpAfterMs: 24 * 3600_000 };

/** After `attempts` failed attempts (≥ 1), the next attempt's time, or null: give up. */
export function nextAttemptAt(policy: RetryPolicy, attempts: number, firstAttemptAtMs: number, nowMs: number): number | null {
  const deadline = firstAttemptAtMs + policy.giveUpAfterMs;
  if (nowMs >= deadline) return null;
  const delay = Math.min(policy.initialMs * 2 ** Math.min(attempts - 1, 40), policy.maxMs);
  // The last attempt is made at the deadline rather than skipped.
  return Math.min(nowMs + delay, deadline);
}
