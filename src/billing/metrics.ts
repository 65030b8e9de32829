import { Counter, Gauge, type Registry } from 'prom-client';
import type { Database } from '../db/database.ts';
import type { PaymentMetrics } from './payments.ts';

/**
 * Billing metrics (README, "Operations": holds and captures, calls by state): provider operations by kind and
 * outcome, and paid calls by state read from the database when scraped.
 */
export function createBillingMetrics(registry: Registry, db: Database): PaymentMetrics {
  const operations = new Counter({
    name: 'callplane_payment_operations_total',
    help: 'Payment provider operations (hold, capture, release) by outcome: ok, declined, failed, unavailable (retried)',
    labelNames: ['op', 'outcome'],
    registers: [registry],
  });
  new Gauge({
    name: 'callplane_paid_calls',
    help: 'Paid calls by billing state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const rows = await db.selectFrom('call_billing').select(['state', db.fn.countAll<number>().as('count')]).groupBy('state').execute();
      this.reset();
      for (const row of rows) this.set({ state: row.state }, Number(row.count));
    },
  });
  return { operation: (op, outcome) => operations.inc({ op, outcome }) };
}
