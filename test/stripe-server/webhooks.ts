/**
 * Signed webhook events as Stripe sends them: a JSON `event` object POSTed with
 * `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
 * The signing here is written out by hand (not the SDK's test helper), so verification with the SDK is an
 * independent check of the scheme.
 */
import { createHmac, randomBytes } from 'node:crypto';

export const API_VERSION = '2025-08-27.basil';

export interface StripeEvent {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

/** What a test passes: at least `type` and `data.object`; the rest is filled in. */
export type EventInput = Pick<StripeEvent, 'type' | 'data'> & Partial<StripeEvent>;

export function buildEvent(input: EventInput, nowMs: number): StripeEvent {
  return {
    id: `evt_${randomBytes(12).toString('hex')}`,
    object: 'event',
    api_version: API_VERSION,
    created: Math.floor(nowMs / 1000),
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    ...input,
  };
}

export function signature(secret: string, payload: string, timestampSeconds: number): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.${payload}`, 'utf8').digest('hex');
}

export function signatureHeader(secret: string, payload: string, timestampSeconds: number): string {
  return `t=${timestampSeconds},v1=${signature(secret, payload, timestampSeconds)}`;
}

export interface SendOptions {
  /** Unix seconds put in `t=` and signed; default: the server clock. */
  timestamp?: number;
  /** Sign with this secret instead of the server's (a forged or misconfigured sender). */
  secret?: string;
  /** Send this header verbatim instead of a computed one. */
  header?: string;
}

export interface Delivery {
  event: StripeEvent;
  payload: string;
  header: string;
  status: number;
  body: string;
}

export async function deliver(url: string, event: StripeEvent, header: string, payload: string): Promise<Delivery> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'stripe-signature': header,
      'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
    },
    body: payload,
  });
  return { event, payload, header, status: res.status, body: await res.text() };
}
