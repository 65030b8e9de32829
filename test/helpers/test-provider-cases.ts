/**
 * The behaviour of the in-process `test` payment provider, whatever keeps its state: run against the
 * memory store by test/unit/billing-test-provider.test.ts and against PostgreSQL by
 * test/integration/test-provider-pg.test.ts. Stripe's test cards, Stripe-like idempotency (answers
 * replayed with their class and details), and a strict hold lifecycle (capture ≤ hold, capture or
 * release exactly once) so billing bugs fail loudly.
 */
import type { Test } from 'tap';
import { ManualClock, type Clock } from '../../src/shared/clock.ts';
import { AppError } from '../../src/shared/errors.ts';
import {
  DECLINE_AFTER_FIRST_HOLD_CARD,
  PaymentDeclined,
  ProviderUnavailable,
  TEST_CARDS,
  TestPaymentProvider,
  idempotencyKey,
  isRetryable,
  type PlaceHoldInput,
} from '../../src/billing/index.ts';

export const CALL = '01JTESTCALL000000000000000C';
export const hold = (over: Partial<PlaceHoldInput> = {}): PlaceHoldInput => ({
  callId: CALL, window: 1, amountMinor: 200, currency: 'usd', paymentMethodId: 'pm_card_visa', idempotencyKey: idempotencyKey(CALL, 1, 'hold'), ...over,
});
export const key = (window: number, op: 'hold' | 'capture' | 'release') => idempotencyKey(CALL, window, op);

/** A provider over a fresh, empty store, for the test `t` (cleaned up with it). */
export type FreshProvider = (t: Test, options?: { clock?: Clock }) => Promise<TestPaymentProvider>;

export function testProviderCases(t: Test, fresh: FreshProvider): void {
  t.test('pm_card_visa is held; the hold can be retrieved', async (t) => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const provider = await fresh(t, { clock });
    const placed = await provider.placeHold(hold());
    t.match(placed, { holdId: /^pi_test_/, status: 'held' });
    t.same(await provider.retrieve(placed.holdId), { status: 'held', amountCapturedMinor: 0 });
    t.match(await provider.list(CALL), [{ holdId: placed.holdId, window: 1, amountMinor: 200, placedAtMs: clock.nowMs() }]);
  });

  t.test('every documented success card authorises', async (t) => {
    const provider = await fresh(t);
    const good = Object.entries(TEST_CARDS).filter(([card, decline]) => decline === null && card !== DECLINE_AFTER_FIRST_HOLD_CARD).map(([card]) => card);
    t.ok(good.includes('pm_card_visa'));
    for (const [i, card] of good.entries()) {
      t.match(await provider.placeHold(hold({ paymentMethodId: card, window: i + 1, idempotencyKey: key(i + 1, 'hold') })), { status: 'held' }, card);
    }
  });

  t.test('declines look like Stripe test cards: 402 payment_failed with the decline code', async (t) => {
    const provider = await fresh(t);
    for (const [card, code] of [
      ['pm_card_chargeDeclined', 'generic_decline'],
      ['pm_card_insufficientFunds', 'insufficient_funds'],
      ['pm_card_chargeDeclinedInsufficientFunds', 'insufficient_funds'],
      ['pm_card_chargeDeclinedExpiredCard', 'expired_card'],
      ['pm_card_made_up', 'resource_missing'],
      ['toString', 'resource_missing'],
    ] as const) {
      const attempt = provider.placeHold(hold({ paymentMethodId: card, idempotencyKey: `k-${card}` }));
      await t.rejects(attempt, PaymentDeclined, card);
      const error = await attempt.catch((e: unknown) => e);
      t.match(error, { code: 'payment_failed', status: 402, declineCode: code, details: { decline_code: code } }, card);
      t.ok(error instanceof AppError && !isRetryable(error), 'a decline is final');
    }
    t.same(await provider.list(), [], 'a declined card leaves no hold');
    const again = await provider.placeHold(hold({ paymentMethodId: 'pm_card_chargeDeclined', idempotencyKey: 'k-pm_card_chargeDeclined' })).catch((e: unknown) => e);
    t.match(again, { declineCode: 'generic_decline' }, 'a decline is replayed for its key');
  });

  t.test(`${DECLINE_AFTER_FIRST_HOLD_CARD} holds window 1 and declines the later windows`, async (t) => {
    const provider = await fresh(t);
    const card = DECLINE_AFTER_FIRST_HOLD_CARD;
    t.match(await provider.placeHold(hold({ paymentMethodId: card })), { status: 'held' });
    const later = await provider.placeHold(hold({ paymentMethodId: card, window: 2, idempotencyKey: key(2, 'hold') })).catch((e: unknown) => e);
    t.match(later, { code: 'payment_failed', declineCode: 'insufficient_funds' });
  });

  t.test('idempotency: same key and arguments → same answer; same key, other arguments → conflict', async (t) => {
    const provider = await fresh(t);
    const first = await provider.placeHold(hold());
    t.same(await provider.placeHold(hold()), first);
    t.equal((await provider.list()).length, 1, 'one hold, however often it is asked');
    await t.rejects(provider.placeHold(hold({ amountMinor: 300 })), { code: 'idempotency_conflict', status: 409 });
    await t.rejects(provider.release({ holdId: first.holdId, idempotencyKey: key(1, 'hold') }), { code: 'idempotency_conflict' }, 'a key belongs to one operation');
    await t.rejects(provider.placeHold(hold({ idempotencyKey: '' })), { code: 'validation_failed' });
  });

  t.test('replayed errors keep their class, code, message and details', async (t) => {
    const provider = await fresh(t);
    const declined = async () => provider.placeHold(hold({ paymentMethodId: 'pm_card_chargeDeclinedExpiredCard' })).catch((e: unknown) => e);
    const first = await declined();
    const replayed = await declined();
    t.ok(replayed instanceof PaymentDeclined, 'a replayed decline is a PaymentDeclined');
    t.match(replayed, { code: 'payment_failed', status: 402, declineCode: 'expired_card', message: 'Your card has expired.', details: { decline_code: 'expired_card' } });
    t.same(pick(replayed), pick(first), 'the same answer as the first time');

    const { holdId } = await provider.placeHold(hold({ idempotencyKey: 'held' }));
    await provider.release({ holdId, idempotencyKey: 'released' });
    const refused = async () => provider.capture({ holdId, amountMinor: 100, idempotencyKey: 'capture-after-release' }).catch((e: unknown) => e);
    const firstRefusal = await refused();
    const replayedRefusal = await refused();
    t.ok(replayedRefusal instanceof AppError && !(replayedRefusal instanceof PaymentDeclined), 'an AppError');
    t.match(replayedRefusal, { code: 'invalid_state', status: 409, details: { hold_id: holdId, hold_status: 'released' } });
    t.same(pick(replayedRefusal), pick(firstRefusal));

    const missing = await provider.capture({ holdId: 'pi_nope', amountMinor: 1, idempotencyKey: 'capture-missing' }).catch((e: unknown) => e);
    t.match(missing, { code: 'not_found', status: 404, details: { hold_id: 'pi_nope' } });
    t.same(pick(await provider.capture({ holdId: 'pi_nope', amountMinor: 1, idempotencyKey: 'capture-missing' }).catch((e: unknown) => e)), pick(missing));
  });

  t.test('concurrent calls with one key place one hold and all get its answer', async (t) => {
    const provider = await fresh(t);
    const answers = await Promise.all(Array.from({ length: 8 }, () => provider.placeHold(hold())));
    const holds = await provider.list(CALL);
    t.equal(holds.length, 1, 'one hold');
    t.same(answers, Array.from({ length: 8 }, () => ({ holdId: holds[0]!.holdId, status: 'held' })));
  });

  t.test('a capture and a release racing for one hold: exactly one wins', async (t) => {
    const provider = await fresh(t);
    const { holdId } = await provider.placeHold(hold());
    const [captured, released] = await Promise.allSettled([
      provider.capture({ holdId, amountMinor: 150, idempotencyKey: key(1, 'capture') }),
      provider.release({ holdId, idempotencyKey: key(1, 'release') }),
    ]);
    const final = await provider.retrieve(holdId);
    if (captured!.status === 'fulfilled') {
      t.match(released, { status: 'rejected', reason: { code: 'invalid_state' } });
      t.same(final, { status: 'captured', amountCapturedMinor: 150 });
    } else {
      t.match(captured, { status: 'rejected', reason: { code: 'invalid_state' } });
      t.equal(released!.status, 'fulfilled');
      t.same(final, { status: 'released', amountCapturedMinor: 0 });
    }
  });

  t.test('capture: at most the held amount, exactly once', async (t) => {
    const provider = await fresh(t);
    const { holdId } = await provider.placeHold(hold());
    await t.rejects(provider.capture({ holdId, amountMinor: 201, idempotencyKey: 'too-much' }), { code: 'validation_failed' });
    await t.rejects(provider.capture({ holdId, amountMinor: 0, idempotencyKey: 'zero' }), { code: 'validation_failed' }, 'capture nothing: release instead');
    t.same(await provider.capture({ holdId, amountMinor: 150, idempotencyKey: key(1, 'capture') }), { captured: 150 });
    t.same(await provider.retrieve(holdId), { status: 'captured', amountCapturedMinor: 150 }, 'the rest of the hold is released by the partial capture');
    t.same(await provider.capture({ holdId, amountMinor: 150, idempotencyKey: key(1, 'capture') }), { captured: 150 }, 'replayed, not captured twice');
    await t.rejects(provider.capture({ holdId, amountMinor: 150, idempotencyKey: 'another-key' }), { code: 'invalid_state', details: { hold_status: 'captured' } });
    await t.rejects(provider.capture({ holdId, amountMinor: 100, idempotencyKey: key(1, 'capture') }), { code: 'idempotency_conflict' });
    await t.rejects(provider.release({ holdId, idempotencyKey: key(1, 'release') }), { code: 'invalid_state' }, 'no release after a capture');
    t.same(await provider.retrieve(holdId), { status: 'captured', amountCapturedMinor: 150 });
  });

  t.test('release: exactly once, and nothing can be captured after it', async (t) => {
    const provider = await fresh(t);
    const { holdId } = await provider.placeHold(hold());
    await provider.release({ holdId, idempotencyKey: key(1, 'release') });
    await provider.release({ holdId, idempotencyKey: key(1, 'release') });
    t.same(await provider.retrieve(holdId), { status: 'released', amountCapturedMinor: 0 });
    await t.rejects(provider.release({ holdId, idempotencyKey: 'another-key' }), { code: 'invalid_state' });
    await t.rejects(provider.capture({ holdId, amountMinor: 100, idempotencyKey: key(1, 'capture') }), { code: 'invalid_state' });
  });

  t.test('an authorisation the provider dropped cannot be captured; releasing it is acknowledged once', async (t) => {
    const provider = await fresh(t);
    const { holdId } = await provider.placeHold(hold());
    await provider.expireHold(holdId);
    t.same(await provider.retrieve(holdId), { status: 'released', amountCapturedMinor: 0 });
    t.match(await provider.list(CALL), [{ holdId, status: 'released', releasedBy: 'provider' }]);
    await t.rejects(provider.expireHold(holdId), { code: 'invalid_state' }, 'expires once');
    await t.rejects(provider.capture({ holdId, amountMinor: 200, idempotencyKey: key(1, 'capture') }), { code: 'invalid_state' });
    await provider.release({ holdId, idempotencyKey: key(1, 'release') });
    t.match(await provider.list(CALL), [{ holdId, status: 'released', releasedBy: 'caller' }]);
    await t.rejects(provider.release({ holdId, idempotencyKey: 'another-key' }), { code: 'invalid_state' });
  });

  t.test('outages are retryable and leave nothing behind: the retry with the same key is answered once', async (t) => {
    const provider = await fresh(t);
    provider.failNext(2);
    const down = await provider.placeHold(hold()).catch((e: unknown) => e);
    t.ok(down instanceof ProviderUnavailable && isRetryable(down));
    t.match(down, { code: 'service_unavailable', status: 503 });
    await t.rejects(provider.retrieve('pi_test_00000001'), ProviderUnavailable);
    const placed = await provider.placeHold(hold());
    t.same(await provider.placeHold(hold()), placed);
    t.equal((await provider.list()).length, 1);
  });

  t.test('inputs are validated; unknown holds are not found', async (t) => {
    const provider = await fresh(t);
    await t.rejects(provider.placeHold(hold({ amountMinor: 0, idempotencyKey: 'a' })), { code: 'validation_failed' });
    await t.rejects(provider.placeHold(hold({ currency: 'USD', idempotencyKey: 'b' })), { code: 'validation_failed' });
    await t.rejects(provider.placeHold(hold({ destination: { accountId: 'acct_1', applicationFeeMinor: 201 }, idempotencyKey: 'c' })), { code: 'validation_failed' });
    await t.rejects(provider.retrieve('pi_nope'), { code: 'not_found' });
    await t.rejects(provider.capture({ holdId: 'pi_nope', amountMinor: 1, idempotencyKey: 'd' }), { code: 'not_found' });
    await t.rejects(provider.expireHold('pi_nope'), { code: 'not_found' });
    const { holdId } = await provider.placeHold(hold({ destination: { accountId: 'acct_1', applicationFeeMinor: 20 } }));
    t.match(await provider.list(CALL), [{ holdId, destination: { accountId: 'acct_1', applicationFeeMinor: 20 } }]);
  });

  t.test('list: the holds of one call or all, in the order they were placed, as copies', async (t) => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const provider = await fresh(t, { clock });
    const other = '01JTESTCALL000000000000000D';
    const a = await provider.placeHold(hold());
    clock.advance(60_000);
    const b = await provider.placeHold(hold({ callId: other, idempotencyKey: idempotencyKey(other, 1, 'hold') }));
    const c = await provider.placeHold(hold({ window: 2, amountMinor: 400, idempotencyKey: key(2, 'hold') }));
    t.not(a.holdId, c.holdId);
    t.same((await provider.list()).map((h) => h.holdId), [a.holdId, b.holdId, c.holdId]);
    t.same(await provider.list(CALL), [
      { holdId: a.holdId, callId: CALL, window: 1, amountMinor: 200, currency: 'usd', paymentMethodId: 'pm_card_visa', destination: null, status: 'held', amountCapturedMinor: 0, releasedBy: null, placedAtMs: Date.UTC(2026, 0, 1), settledAtMs: null },
      { holdId: c.holdId, callId: CALL, window: 2, amountMinor: 400, currency: 'usd', paymentMethodId: 'pm_card_visa', destination: null, status: 'held', amountCapturedMinor: 0, releasedBy: null, placedAtMs: Date.UTC(2026, 0, 1) + 60_000, settledAtMs: null },
    ]);
    const copy = (await provider.list(CALL))[0]!;
    copy.status = 'captured';
    t.equal((await provider.list(CALL))[0]!.status, 'held', 'changing a listed hold changes nothing');
    clock.advance(1_000);
    await provider.capture({ holdId: a.holdId, amountMinor: 120, idempotencyKey: key(1, 'capture') });
    t.match(await provider.list(CALL), [{ holdId: a.holdId, status: 'captured', amountCapturedMinor: 120, settledAtMs: Date.UTC(2026, 0, 1) + 61_000 }]);
    t.same(await provider.list('01JNOSUCHCALL0000000000000'), []);
  });
}

/** What a caller can see of an error. */
export function pick(error: unknown): Record<string, unknown> {
  if (!(error instanceof AppError)) return { notAnAppError: String(error) };
  return { name: error.name, class: error.constructor.name, code: error.code, status: error.status, message: error.message, details: error.details, declineCode: error instanceof PaymentDeclined ? error.declineCode : undefined };
}
