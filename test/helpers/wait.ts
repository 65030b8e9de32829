/**
 * Polls `probe` until `accept` holds or the time is up, and returns the last value so the test asserts
 * on it (a timeout shows up as a failed assertion with the value seen, not as a hang).
 */
export async function eventually<T>(probe: () => Promise<T> | T, accept: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
