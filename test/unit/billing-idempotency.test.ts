// Idempotency keys are derived from (call, window, operation) only, so a retry after a crash
// sends the very same key and the provider answers it once.
import t from 'tap';
import { IDEMPOTENCY_OPERATIONS, idempotencyKey, parseIdempotencyKey } from '../../src/billing/index.ts';

const CALL = '01JN2X6M0P5H9SRBTXY8ZDKEFG';

t.test('callplane:<callId>:w<window>:<operation>, deterministic and reversible', async (t) => {
  t.equal(idempotencyKey(CALL, 2, 'capture'), 'callplane:01JN2X6M0P5H9SRBTXY8ZDKEFG:w2:capture');
  t.equal(idempotencyKey(CALL, 2, 'capture'), idempotencyKey(CALL, 2, 'capture'));
  t.same(IDEMPOTENCY_OPERATIONS, ['hold', 'capture', 'release', 'cancel', 'customer']);
  const perWindow = IDEMPOTENCY_OPERATIONS.filter((op) => op !== 'customer');
  const keys = new Set(perWindow.flatMap((op) => [1, 2].map((w) => idempotencyKey(CALL, w, op))));
  t.equal(keys.size, 8, 'one key per window and operation');
  for (const op of perWindow) t.same(parseIdempotencyKey(idempotencyKey(CALL, 12, op)), { callId: CALL, window: 12, operation: op });
  for (const op of IDEMPOTENCY_OPERATIONS) t.same(parseIdempotencyKey(idempotencyKey(CALL, 1, op)), { callId: CALL, window: 1, operation: op });
  t.equal(parseIdempotencyKey('someone-else:123'), null);
  t.equal(parseIdempotencyKey(`callplane:${CALL}:w0:hold`), null);
});

t.test('the call\'s customer: one key per call, under window 1', async (t) => {
  t.equal(idempotencyKey(CALL, 1, 'customer'), 'callplane:01JN2X6M0P5H9SRBTXY8ZDKEFG:w1:customer');
  t.same(parseIdempotencyKey('callplane:01JN2X6M0P5H9SRBTXY8ZDKEFG:w1:customer'), { callId: CALL, window: 1, operation: 'customer' });
  t.not(idempotencyKey(CALL, 1, 'customer'), idempotencyKey(CALL, 1, 'hold'), 'never the hold\'s key');
  t.equal(parseIdempotencyKey(`callplane:${CALL}:w1:customers`), null, 'operations match whole');
  t.equal(parseIdempotencyKey(`callplane:${CALL}:w1:customer:x`), null);
  t.equal(parseIdempotencyKey(`xcallplane:${CALL}:w1:customer`), null);
  t.throws(() => idempotencyKey(CALL, 2, 'customer'), /one customer/, 'not one per window');
  t.equal(parseIdempotencyKey(`callplane:${CALL}:w2:customer`), null);
});

t.test('ambiguous parts are refused', async (t) => {
  t.throws(() => idempotencyKey('a:b', 1, 'hold'), /call id/);
  t.throws(() => idempotencyKey('', 1, 'hold'), /call id/);
  t.throws(() => idempotencyKey(CALL, 0, 'hold'), /window/);
  t.throws(() => idempotencyKey(CALL, 1.5, 'hold'), /window/);
  t.throws(() => idempotencyKey(CALL, 1, 'refund' as never), /operation/);
});
