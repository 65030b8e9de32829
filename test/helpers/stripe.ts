import type { Test } from 'tap';
import { StripeProvider, type StripeProviderOptions } from '../../src/billing/providers/stripe.ts';
import type { StripeServer } from '../stripe-server/server.ts';

/** A StripeProvider on the official SDK, talking to the Stripe-compatible test server over HTTP. */
export function providerFor(server: StripeServer, options: Partial<StripeProviderOptions> = {}): StripeProvider {
  return new StripeProvider({
    secretKey: server.secretKey,
    apiBase: { host: server.host, port: server.port, protocol: 'http' },
    timeoutMs: 2000,
    maxNetworkRetries: 0,
    ...options,
  });
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function failure(t: Test, p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  t.fail('expected a rejection');
  return undefined;
}
