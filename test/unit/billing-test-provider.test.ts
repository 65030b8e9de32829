// The in-process payment provider: Stripe's test cards, Stripe-like idempotency, and a strict
// hold lifecycle (capture ≤ hold, capture or release exactly once) so billing bugs fail loudly.
import t from 'tap';
import { ManualClock } from '../../src/shared/clock.ts';
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

const CALL = '01JTESTCALL000000000000000C';
const hold = (over: Partial<PlaceHoldInput> = {}): PlaceHoldInput => ({
  callId: CALL, window: 1, amountMinor: 200, currency: 'usd', paymentMethodId: 'pm_card_visa', idempotencyKey: idempotencyKey(CALL, 1, 'hold'), ...over,
});
const key = (window: number, op: 'hold' | 'capture' | 'release') => idempotencyKey(CALL, window, op);

t.test('pm_card_visa is held; the hold can be retrieved', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const provider = new TestPaymentProvider({ clock });
  const placed = await provider.placeHold(hold());
  t.match(placed, { holdId: /^pi_test_/, status: 'held' });
  t.same(await provider.retrieve(placed.holdId), { status: 'held', amountCapturedMinor: 0 });
  t.match(provider.list(CALL), [{ holdId: placed.holdId, window: 1, amountMinor: 200, placedAtMs: clock.nowMs() }]);
});

t.test('every documented success card authorises', async (t) => {
  const provider = new TestPaymentProvider();
  const good = Object.entries(TEST_CARDS).filter(([card, decline]) => decline === null && card !== DECLINE_AFTER_FIRST_HOLD_CARD).map(([card]) => card);
  t.ok(good.includes('pm_card_visa'));
  for (const [i, card] of good.entries()) {
    t.match(await provider.placeHold(hold({ paymentMethodId: card, window: i + 1, idempotencyKey: key(i + 1, 'hold') })), { status: 'held' }, card);
  }
});

t.test('declines look like Stripe test cards: 402 payment_failed with the decline code', async (t) => {
  const provider = new TestPaymentProvider();
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
  t.same(provider.list(), [], 'a declined card leaves no hold');
  const again = await provider.placeHold(hold({ paymentMethodId: 'pm_card_chargeDeclined', idempotencyKey: 'k-pm_card_chargeDeclined' })).catch((e: unknown) => e);
  t.match(again, { declineCode: 'generic_decline' }, 'a decline is replayed for its key');
});

t.test(`${DECLINE_AFTER_FIRST_HOLD_CARD} holds window 1 and declines the later windows`, async (t) => {
  const provider = new TestPaymentProvider();
  const card = DECLINE_AFTER_FIRST_HOLD_CARD;
  t.match(await provider.placeHold(hold({ paymentMethodId: card })), { status: 'held' });
  const later = await provider.placeHold(hold({ paymentMethodId: card, window: 2, idempotencyKey: key(2, 'hold') })).catch((e: unknown) => e);
  t.match(later, { code: 'payment_failed', declineCode: 'insufficient_funds' });
});

t.test('idempotency: same key and arguments → same answer; same key, other arguments → conflict', async (t) => {
  const provider = new TestPaymentProvider();
  const first = await provider.placeHold(hold());
  t.same(await provider.placeHold(hold()), first);
  t.equal(provider.list().length, 1, 'one hold, however often it is asked');
  await t.rejects(provider.placeHold(hold({ amountMinor: 300 })), { code: 'idempotency_conflict', status: 409 });
  await t.rejects(provider.release({ holdId: first.holdId, idempotencyKey: key(1, 'hold') }), { code: 'idempotency_conflict' }, 'a key belongs to one operation');
  await t.rejects(provider.placeHold(hold({ idempotencyKey: '' })), { code: 'validation_failed' });
});

t.test('capture: at most the held amount, exactly once', async (t) => {
  const provider = new TestPaymentProvider();
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
  const provider = new TestPaymentProvider();
  const { holdId } = await provider.placeHold(hold());
  await provider.release({ holdId, idempotencyKey: key(1, 'release') });
  await provider.release({ holdId, idempotencyKey: key(1, 'release') });
  t.same(await provider.retrieve(holdId), { status: 'released', amountCapturedMinor: 0 });
  await t.rejects(provider.release({ holdId, idempotencyKey: 'another-key' }), { code: 'invalid_state' });
  await t.rejects(provider.capture({ holdId, amountMinor: 100, idempotencyKey: key(1, 'capture') }), { code: 'invalid_state' });
});

t.test('an authorisation the provider dropped cannot be captured; releasing it is acknowledged once', async (t) => {
  const provider = new TestPaymentProvider();
  const { holdId } = await provider.placeHold(hold());
  provider.expireHold(holdId);
  t.same(await provider.retrieve(holdId), { status: 'released', amountCapturedMinor: 0 });
  await t.rejects(provider.capture({ holdId, amountMinor: 200, idempotencyKey: key(1, 'capture') }), { code: 'invalid_state' });
  await provider.release({ holdId, idempotencyKey: key(1, 'release') });
  await t.rejects(provider.release({ holdId, idempotencyKey: 'another-key' }), { code: 'invalid_state' });
});

t.test('outages are retryable and leave nothing behind: the retry with the same key is answered once', async (t) => {
  const provider = new TestPaymentProvider();
  provider.failNext(2);
  const down = await provider.placeHold(hold()).catch((e: unknown) => e);
  t.ok(down instanceof ProviderUnavailable && isRetryable(down));
  t.match(down, { code: 'service_unavailable', status: 503 });
  await t.rejects(provider.retrieve('pi_test_00000001'), ProviderUnavailable);
  const placed = await provider.placeHold(hold());
  t.same(await provider.placeHold(hold()), placed);
  t.equal(provider.list().length, 1);
});

t.test('inputs are validated; unknown holds are not found', async (t) => {
  const provider = new TestPaymentProvider();
  await t.rejects(provider.placeHold(hold({ amountMinor: 0, idempotencyKey: 'a' })), { code: 'validation_failed' });
  await t.rejects(provider.placeHold(hold({ currency: 'USD', idempotencyKey: 'b' })), { code: 'validation_failed' });
  await t.rejects(provider.placeHold(hold({ destination: { accountId: 'acct_1', applicationFeeMinor: 201 }, idempotencyKey: 'c' })), { code: 'validation_failed' });
  await t.rejects(provider.retrieve('pi_nope'), { code: 'not_found' });
  await t.rejects(provider.capture({ holdId: 'pi_nope', amountMinor: 1, idempotencyKey: 'd' }), { code: 'not_found' });
  const { holdId } = await provider.placeHold(hold({ destination: { accountId: 'acct_1', applicationFeeMinor: 20 } }));
  t.match(provider.list(CALL), [{ holdId, destination: { accountId: 'acct_1', applicationFeeMinor: 20 } }]);
});
