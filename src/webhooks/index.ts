/** Outbound webhooks (docs/webhooks.md): the outbox, delivery, endpoints and their metrics. */
export * from './outbox.ts';
export * from './delivery.ts';
export * from './endpoints.ts';
export * from './metrics.ts';
export { DEFAULT_RETRY, nextAttemptAt, type RetryPolicy } from './backoff.ts';
export { checkEndpointUrl, isPublicAddress } from './targets.ts';
