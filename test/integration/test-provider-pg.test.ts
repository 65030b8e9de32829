/**
 * The `test` payment provider over PostgreSQL (PgTestPaymentStore, migration 0004_test_payments):
 * what `payments.provider: test` runs on. The shared behaviour cases, then what only a store outside
 * the process gives: answers, holds and hold ids survive a "restart" (a new provider, store and
 * connection pool on the same database), and one key is executed once across concurrent providers.
 */
import t, { type Test } from 'tap';
import { PaymentDeclined, ProviderUnavailable, isRetryable } from '../../src/billing/index.ts';
import { PgTestPaymentStore, TestPaymentProvider } from '../../src/billing/providers/test.ts';
import { createDatabase, type Database } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { ManualClock, type Clock } from '../../src/shared/clock.ts';
import { AppError } from '../../src/shared/errors.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { CALL, hold, key, pick, testProviderCases } from '../helpers/test-provider-cases.ts';

/** A fresh migrated database; `start()` is one "process" of the provider on it (its own pool). */
async function database(t: Test) {
  const url = await createTestDatabase(t);
  const connect = (): Database => {
    const db = createDatabase(url, 4);
    t.teardown(() => db.destroy());
    return db;
  };
  await migrateToLatest(connect());
  return {
    connect,
    start: (clock?: Clock) => new TestPaymentProvider({ ...(clock ? { clock } : {}), store: new PgTestPaymentStore(connect()) }),
  };
}

testProviderCases(t, async (t, options = {}) => (await database(t)).start(options.clock));

t.test('after a restart: a hold placed before it is captured, and every answer is replayed', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const { start } = await database(t);
  const before = start(clock);
  const placed = await before.placeHold(hold({ destination: { accountId: 'acct_1', applicationFeeMinor: 20 } }));
  const declined = await before.placeHold(hold({ window: 2, paymentMethodId: 'pm_card_chargeDeclinedInsufficientFunds', idempotencyKey: key(2, 'hold') })).catch((e: unknown) => e);
  t.match(declined, { declineCode: 'insufficient_funds' });

  clock.advance(90_000);
  const after = start(clock); // a new process: nothing shared with `before` but the database
  t.same(await after.retrieve(placed.holdId), { status: 'held', amountCapturedMinor: 0 }, 'the hold is still there');
  t.same(await after.placeHold(hold({ destination: { accountId: 'acct_1', applicationFeeMinor: 20 } })), placed, 'a success is replayed for its key');
  const replayed = await after.placeHold(hold({ window: 2, paymentMethodId: 'pm_card_chargeDeclinedInsufficientFunds', idempotencyKey: key(2, 'hold') })).catch((e: unknown) => e);
  t.ok(replayed instanceof PaymentDeclined, 'a decline is replayed as a PaymentDeclined');
  t.same(pick(replayed), pick(declined), 'with the same code, decline code, message and details');
  t.match(replayed, { code: 'payment_failed', status: 402, declineCode: 'insufficient_funds', details: { decline_code: 'insufficient_funds' } });
  await t.rejects(after.placeHold(hold({ amountMinor: 300 })), { code: 'idempotency_conflict', status: 409 }, 'a key reused with other arguments');
  await t.rejects(after.release({ holdId: placed.holdId, idempotencyKey: key(1, 'hold') }), { code: 'idempotency_conflict' }, 'a key belongs to one operation');

  t.same(await after.capture({ holdId: placed.holdId, amountMinor: 150, idempotencyKey: key(1, 'capture') }), { captured: 150 }, 'captured after the restart');
  t.same(await after.list(CALL), [
    {
      holdId: placed.holdId, callId: CALL, window: 1, amountMinor: 200, currency: 'usd', paymentMethodId: 'pm_card_visa',
      destination: { accountId: 'acct_1', applicationFeeMinor: 20 }, status: 'captured', amountCapturedMinor: 150, releasedBy: null,
      placedAtMs: Date.UTC(2026, 0, 1), settledAtMs: Date.UTC(2026, 0, 1) + 90_000,
    },
  ]);

  const again = start(clock);
  t.same(await again.capture({ holdId: placed.holdId, amountMinor: 150, idempotencyKey: key(1, 'capture') }), { captured: 150 }, 'the capture is replayed after another restart, not repeated');
  const twice = await again.capture({ holdId: placed.holdId, amountMinor: 150, idempotencyKey: 'another-key' }).catch((e: unknown) => e);
  t.ok(twice instanceof AppError && twice.code === 'invalid_state', 'a second capture is refused');
  t.match(twice, { details: { hold_id: placed.holdId, hold_status: 'captured' } });
  const refusedAgain = await start(clock).capture({ holdId: placed.holdId, amountMinor: 150, idempotencyKey: 'another-key' }).catch((e: unknown) => e);
  t.same(pick(refusedAgain), pick(twice), 'an invalid_state is replayed as the same AppError');
  t.same(await again.retrieve(placed.holdId), { status: 'captured', amountCapturedMinor: 150 });
});

t.test('hold ids stay unique across restarts', async (t) => {
  const { start } = await database(t);
  const first = await start().placeHold(hold());
  const second = await start().placeHold(hold({ window: 2, idempotencyKey: key(2, 'hold') }));
  const third = await start().placeHold(hold({ window: 3, idempotencyKey: key(3, 'hold') }));
  t.match([first.holdId, second.holdId, third.holdId], [/^pi_test_\d{8}$/, /^pi_test_\d{8}$/, /^pi_test_\d{8}$/]);
  t.equal(new Set([first.holdId, second.holdId, third.holdId]).size, 3);
  t.same((await start().list(CALL)).map((h) => [h.holdId, h.window]), [[first.holdId, 1], [second.holdId, 2], [third.holdId, 3]]);
});

t.test('expiry and release survive a restart', async (t) => {
  const { start } = await database(t);
  const { holdId } = await start().placeHold(hold());
  await start().expireHold(holdId);
  await t.rejects(start().capture({ holdId, amountMinor: 100, idempotencyKey: key(1, 'capture') }), { code: 'invalid_state', details: { hold_status: 'released' } });
  await start().release({ holdId, idempotencyKey: key(1, 'release') });
  await start().release({ holdId, idempotencyKey: key(1, 'release') });
  t.match(await start().list(CALL), [{ holdId, status: 'released', releasedBy: 'caller', amountCapturedMinor: 0 }]);
});

t.test('one key from concurrent providers (separate pools, as two processes) is executed once', async (t) => {
  const { start } = await database(t);
  const providers = Array.from({ length: 6 }, () => start());
  const answers = await Promise.all(providers.flatMap((provider) => [provider.placeHold(hold()), provider.placeHold(hold())]));
  const holds = await start().list();
  t.equal(holds.length, 1, 'one hold');
  t.same(answers, Array.from({ length: 12 }, () => ({ holdId: holds[0]!.holdId, status: 'held' })), 'every caller got its answer');

  const { holdId } = answers[0]!;
  const captures = await Promise.all(providers.map((provider) => provider.capture({ holdId, amountMinor: 180, idempotencyKey: key(1, 'capture') })));
  t.same(captures, providers.map(() => ({ captured: 180 })));
  const mixed = await Promise.allSettled(providers.map((provider, i) => provider.capture({ holdId, amountMinor: 180, idempotencyKey: `other-${i}` })));
  t.same(mixed.map((r) => r.status === 'rejected' && (r.reason as AppError).code), providers.map(() => 'invalid_state'), 'no other key captures it again');
  t.match(await start().list(), [{ holdId, status: 'captured', amountCapturedMinor: 180 }]);
});

t.test('a database it cannot reach makes the provider unavailable (retryable)', async (t) => {
  const unreachable = createDatabase('postgres://postgres:postgres@127.0.0.1:1/nothing', 1);
  t.teardown(() => unreachable.destroy());
  const provider = new TestPaymentProvider({ store: new PgTestPaymentStore(unreachable) });
  const down = await provider.placeHold(hold()).catch((e: unknown) => e);
  t.ok(down instanceof ProviderUnavailable && isRetryable(down), 'ProviderUnavailable');
  t.match(down, { code: 'service_unavailable', status: 503 });
  await t.rejects(provider.retrieve('pi_test_00000001'), ProviderUnavailable);
  await t.rejects(provider.list(), ProviderUnavailable);
  await t.rejects(provider.expireHold('pi_test_00000001'), ProviderUnavailable);
});

t.test('a failure that is not an answer rolls the whole operation back: nothing kept, the key stays free', async (t) => {
  const { connect } = await database(t);
  const store = new PgTestPaymentStore(connect());
  const newHold = { callId: CALL, window: 1, amountMinor: 200, currency: 'usd', paymentMethodId: 'pm_card_visa', destination: null, placedAtMs: Date.UTC(2026, 0, 1) };
  const failed = await store
    .once('k', 'fingerprint', async (holds) => {
      await holds.add(newHold);
      throw new Error('the connection dropped');
    })
    .catch((e: unknown) => e);
  t.ok(failed instanceof ProviderUnavailable, 'reported as the provider being unavailable');
  t.same(await store.list(), [], 'the hold added before the failure is gone');
  const holdId = await store.once('k', 'fingerprint', (holds) => holds.add(newHold));
  t.match(await store.list(), [{ holdId, status: 'held' }], 'the retry with the key ran the operation');
  t.equal(await store.once('k', 'fingerprint', async () => 'not run'), holdId, 'and its answer is the one replayed');
});
