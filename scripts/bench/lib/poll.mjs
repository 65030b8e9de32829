// Small helpers shared by the Chromium join benchmarks (join-to-frame.mjs and its --storm mode).

export const STEP_TIMEOUT_MS = 30_000;

/** Polls `check` until it returns a truthy value (returned), or throws after `timeoutMs`. */
export async function waitFor(what, check, timeoutMs = STEP_TIMEOUT_MS, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
