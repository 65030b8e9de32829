// The in-process payment provider over its default memory store: Stripe's test cards, Stripe-like
// idempotency, and a strict hold lifecycle (capture ≤ hold, capture or release exactly once) so
// billing bugs fail loudly. The same cases run over PostgreSQL in test/integration/test-provider-pg.test.ts.
import t from 'tap';
import { MemoryTestPaymentStore, TestPaymentProvider } from '../../src/billing/providers/test.ts';
import { testProviderCases } from '../helpers/test-provider-cases.ts';

testProviderCases(t, async (_t, options = {}) => new TestPaymentProvider(options));

t.test('the memory store is the default, and a store can be shared by two providers', async (t) => {
  const store = new MemoryTestPaymentStore();
  const one = new TestPaymentProvider({ store });
  const two = new TestPaymentProvider({ store });
  const placed = await one.placeHold({ callId: 'c', window: 1, amountMinor: 100, currency: 'usd', paymentMethodId: 'pm_card_visa', idempotencyKey: 'k' });
  t.same(await two.retrieve(placed.holdId), { status: 'held', amountCapturedMinor: 0 });
  t.same(await two.placeHold({ callId: 'c', window: 1, amountMinor: 100, currency: 'usd', paymentMethodId: 'pm_card_visa', idempotencyKey: 'k' }), placed);
  t.same(await new TestPaymentProvider().list(), [], 'a provider without a store starts empty');
});
