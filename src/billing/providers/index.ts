import type { PaymentsConfig } from '../../config/schema.ts';
import type { Database } from '../../db/database.ts';
import type { Clock } from '../../shared/clock.ts';
import { StripeProvider } from './stripe.ts';
import { PgTestPaymentStore, TestPaymentProvider } from './test.ts';
import type { PaymentProvider } from './types.ts';

/**
 * The configured provider: `test` (in-process, the embedded default) or `stripe` (the official SDK).
 * The test provider keeps its holds and idempotency replies in `db` (tables test_payment_*), so like
 * Stripe it remembers them across a restart or a crash of the server.
 */
export function createPaymentProvider(config: PaymentsConfig, clock: Clock, db: Database): PaymentProvider {
  if (config.provider === 'test') return new TestPaymentProvider({ clock, store: new PgTestPaymentStore(db) });
  const base = config.stripe_api_base ? new URL(config.stripe_api_base) : null;
  return new StripeProvider({
    secretKey: config.stripe_secret_key!,
    timeoutMs: config.stripe_timeout_ms,
    platformFeeBps: config.platform_fee_bps,
    ...(base
      ? { apiBase: { host: base.hostname, port: Number(base.port || (base.protocol === 'https:' ? 443 : 80)), protocol: base.protocol === 'https:' ? 'https' : 'http' } }
      : {}),
  });
}
