import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DeliveryMetrics } from './delivery.ts';
import type { WebhookEndpointService } from './endpoints.ts';

/**
 * Webhook metrics (docs/webhooks.md, "Operations"): attempts by outcome, commit-to-delivery latency,
 * and, read from the database when scraped, the backlog per endpoint and the oldest undelivered age.
 */
export function createWebhookMetrics(registry: Registry, endpoints: WebhookEndpointService): DeliveryMetrics {
  const attempts = new Counter({
    name: 'callplane_webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome: delivered, retry (failed, tried again later), failed (given up)',
    labelNames: ['endpoint', 'outcome'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'callplane_webhook_delivery_latency_seconds',
    help: 'From the commit of an event to its acknowledged delivery',
    labelNames: ['endpoint'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
    registers: [registry],
  });
  let snapshot: { at: number; rows: Awaited<ReturnType<WebhookEndpointService['backlog']>> } | null = null;
  // Both gauges read one query per scrape.
  const backlog = async () => {
    if (!snapshot || Date.now() - snapshot.at > 1000) snapshot = { at: Date.now(), rows: await endpoints.backlog() };
    return snapshot.rows;
  };
  new Gauge({
    name: 'callplane_webhook_backlog',
    help: 'Pending webhook deliveries per endpoint',
    labelNames: ['endpoint'],
    registers: [registry],
    async collect() {
      const rows = await backlog();
      this.reset();
      for (const row of rows) this.set({ endpoint: row.id }, row.pending);
    },
  });
  new Gauge({
    name: 'callplane_webhook_oldest_undelivered_seconds',
    help: 'Age of the oldest pending webhook delivery (0 when none)',
    registers: [registry],
    async collect() {
      const oldest = Math.min(...(await backlog()).map((row) => row.oldestPendingAt?.getTime() ?? Infinity));
      this.set(Number.isFinite(oldest) ? Math.max(0, (Date.now() - oldest) / 1000) : 0);
    },
  });
  return {
    attempted: (endpoint, outcome) => attempts.inc({ endpoint, outcome }),
    delivered: (endpoint, seconds) => latency.observe({ endpoint }, seconds),
  };
}
