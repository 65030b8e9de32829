import { Type } from '@sinclair/typebox';
import type { Database } from '../../db/database.ts';
import type { BillingEngine } from '../../billing/engine.ts';
import type { Logger } from '../../shared/logger.ts';
import { verifyStripeWebhook } from '../../billing/providers/stripe.ts';
import { StripeWebhooks } from '../../billing/webhooks.ts';
import { AppError } from '../../shared/errors.ts';
import { defineRoute, ok, type AnyRoute } from '../types.ts';

/** Stripe's own tolerance for the `t=` of Stripe-Signature (docs/api.md, "What a paid call is billed"). */
const STRIPE_SIGNATURE_TOLERANCE_SECONDS = 300;

/** Inbound provider webhooks. The body is verified against its signature byte for byte, so it is taken raw. */
export function webhookRoutes(deps: { db: Database; billing: BillingEngine; logger: Logger; stripeWebhookSecret: string | null }): AnyRoute[] {
  const secret = deps.stripeWebhookSecret;
  const stripe = new StripeWebhooks({ db: deps.db, engine: deps.billing, logger: deps.logger.child({ component: 'stripe-webhook' }) });
  return [
    defineRoute({
      method: 'post',
      path: '/v1/webhooks/stripe',
      summary: 'Stripe webhook: reconciles holds Stripe cancelled or let expire (verified with Stripe-Signature, 300 s tolerance)',
      tags: ['webhooks'],
      auth: 'none',
      rawBody: true,
      responses: {
        200: { description: 'Received (also for events and PaymentIntents that concern no held hold)', schema: Type.Object({ received: Type.Literal(true) }) },
        400: { description: 'validation_failed: missing or wrong signature, timestamp older than 300 s, or a payload that is not JSON' },
        503: { description: 'service_unavailable: no webhook secret configured (payments.stripe_webhook_secret)' },
      },
      handler: async ({ rawBody, headers }) => {
        if (!secret) {
          throw new AppError('service_unavailable', 'Stripe webhooks are not configured: set payments.stripe_webhook_secret (STRIPE_WEBHOOK_SECRET)');
        }
        // Freshness is checked against real time (the SDK's default), not the application clock: Stripe signs
        // with its wall clock, and a scaled demo clock must not make every delivery "too old".
        const event = verifyStripeWebhook(rawBody ?? Buffer.alloc(0), headers['stripe-signature'], secret, STRIPE_SIGNATURE_TOLERANCE_SECONDS);
        await stripe.handle(event);
        return ok({ received: true });
      },
    }),
  ];
}
