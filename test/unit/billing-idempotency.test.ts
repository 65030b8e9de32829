// Idempotency keys are derived from (call, window, operation) only, so a retry after a crash
// sends the very same key and the provider answers it once.
import t from 'tap';
import { IDEMPOTENCY_OPERATIONS, idempotencyKey, parseIdempotencyKey } from '../../src/billing/index.ts';

const CALL = '01JN2X6M0P5H9SRBTXY8ZDKEFG';

t.test('callplane:<callId>:w<window>:<operation>, deterministic and reversible', async (t) => {
  t.equal(idempotencyKey(CALL, 2, 'capture'), 'callplane:01JN2X6M0P5H9SRBTXY8ZDKEFG:w2:capture');
  t.equal(idempotencyKey(CALL, 2, 'capture'), idempotencyKey(CALL, 2, 'capture'));
  const keys = new Set(IDEMPOTENCY_OPERATIONS.flatMap((op) => [1, 2].map((w) => idempotencyKey(CALL, w, op))));
  t.equal(keys.size, 8, 'one key per window and operation');
  for (const op of IDEMPOTENCY_OPERATIONS) t.same(parseIdempotencyKey(idempotencyKey(CALL, 12, op)), { callId: CALL, window: 12, operation: op });
  t.equal(parseIdempotencyKey('someone-else:123'), null);
  t.equal(parseIdempotencyKey(`callplane:${CALL}:w0:hold`), null);
});

t.test('ambiguous parts are refused', async (t) => {
  t.throws(() => idempotencyKey('a:b', 1, 'hold'), /call id/);
  t.throws(() => idempotencyKey('', 1, 'hold'), /call id/);
  t.throws(() => idempotencyKey(CALL, 0, 'hold'), /window/);
  t.throws(() => idempotencyKey(CALL, 1.5, 'hold'), /window/);
  t.throws(() => idempotencyKey(CALL, 1, 'refund' as never), /operation/);
});
