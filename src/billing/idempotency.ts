/**
 * Deterministic idempotency keys for payment-provider calls.
 *
 * A key is derived only from (call, window, operation), never from time or randomness, so a
 * process killed between "intent stored" and "provider answered" repeats the very same request
 * on restart and the provider answers it once (Stripe keeps keys for 24 h; the test provider
 * forever). Two different operations on one hold can never share a key.
 *
 * `customer` is the call's one provider-side customer (Stripe: the Customer the guest's card is attached to
 * so it can be held window after window); it is created once per call, under window 1's key.
 */

export const IDEMPOTENCY_OPERATIONS = ['hold', 'capture', 'release', 'cancel', 'customer'] as const;
export type IdempotencyOperation = (typeof IDEMPOTENCY_OPERATIONS)[number];

const PREFIX = 'callplane';
// Call ids are ULIDs; ':' must never appear in one or a key could be parsed two ways.
const CALL_ID = /^[A-Za-z0-9_-]{1,100}$/;
const KEY = new RegExp(`^${PREFIX}:([A-Za-z0-9_-]{1,100}):w([1-9]\\d{0,8}):(${IDEMPOTENCY_OPERATIONS.join('|')})$`);

/** `callplane:<callId>:w<window>:<operation>`, e.g. `callplane:01JN2X6M0P5H9SRBTXY8ZDKEFG:w2:capture`. */
export function idempotencyKey(callId: string, window: number, operation: IdempotencyOperation): string {
  if (!CALL_ID.test(callId)) throw new Error(`idempotency key: call id must match ${CALL_ID} (got ${JSON.stringify(callId)})`);
  if (!Number.isSafeInteger(window) || window < 1) throw new Error(`idempotency key: window must be an integer >= 1 (got ${window})`);
  if (!IDEMPOTENCY_OPERATIONS.includes(operation)) throw new Error(`idempotency key: unknown operation ${String(operation)}`);
  if (operation === 'customer' && window !== 1) throw new Error(`idempotency key: a call has one customer, keyed under window 1 (got ${window})`);
  return `${PREFIX}:${callId}:w${window}:${operation}`;
}

/** The inverse of idempotencyKey (for the reconciler and logs); null when the key is not ours. */
export function parseIdempotencyKey(key: string): { callId: string; window: number; operation: IdempotencyOperation } | null {
  const match = KEY.exec(key);
  if (!match || (match[3] === 'customer' && match[2] !== '1')) return null;
  return { callId: match[1]!, window: Number(match[2]), operation: match[3] as IdempotencyOperation };
}
