/**
 * Executes the payment outbox (payment_ops): one provider operation per row, repeated with the same
 * idempotency key until the provider answers, then recorded together with the machine event it
 * causes (hold_placed, hold_refused, capture_impossible, final_capture_done) in one transaction.
 *
 * The row stays locked (SELECT ... FOR UPDATE) while the provider is asked, so the request path and
 * the job runner can both try an operation without ever sending it twice at the same time; whoever
 * comes second finds it done. A crash while asking leaves the row pending: the job (or the reconciler)
 * asks again with the same key, and the provider answers the first request's result.
 */
import type { Database, Tx } from '../db/database.ts';
import { inTransaction } from '../db/database.ts';
import type { PaymentOpRow } from '../db/schema.ts';
import { AppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { BillingEngine, OnCommit } from './engine.ts';
import { idempotencyKey } from './idempotency.ts';
import type { BillingEffect, BillingEvent } from './model.ts';
import { PaymentDeclined, ProviderUnavailable, type PaymentProvider } from './providers/types.ts';

type PlaceHoldRequest = Omit<Extract<BillingEffect, { type: 'place_hold' }>, 'type'>;

export type PaymentOutcome = 'done' | 'already_done' | 'missing';

export interface PaymentMetrics {
  operation(op: string, outcome: string): void;
}

export class PaymentExecutor {
  constructor(
    private readonly deps: { db: Database; engine: BillingEngine; provider: PaymentProvider; logger: Logger; metrics?: PaymentMetrics },
  ) {}

  /**
   * Runs one outbox operation. Throws ProviderUnavailable (retry later, same key) and lets every other
   * unexpected error through for the job runner's retries; a final provider answer is always recorded.
   */
  async run(key: string): Promise<PaymentOutcome> {
    const { db, logger } = this.deps;
    return inTransaction(
      db,
      async (tx, onCommit) => {
        const op = await tx.selectFrom('payment_ops').selectAll().where('idempotency_key', '=', key).forUpdate().executeTakeFirst();
        if (!op) return 'missing';
        if (op.status !== 'pending') return 'already_done';
        await tx.updateTable('payment_ops').set({ attempts: op.attempts + 1 }).where('idempotency_key', '=', key).execute();
        let answer: { ok: true; result: Record<string, unknown> } | { ok: false; error: unknown };
        try {
          answer = { ok: true, result: await this.ask(op) };
        } catch (error) {
          if (error instanceof ProviderUnavailable) {
            this.deps.metrics?.operation(op.op, 'unavailable');
            throw error; // rolls back: nothing is known about this attempt except that it must be repeated
          }
          answer = { ok: false, error };
        }
        await this.settle(tx, onCommit, op, answer);
        return 'done';
      },
      (error) => logger.error({ err: error, key }, 'billing: a post-commit hook failed'),
    );
  }

  /** Every pending operation of one call (the request path uses it to answer with a settled call). */
  async runPendingOf(callId: string): Promise<void> {
    const pending = await this.deps.db.selectFrom('payment_ops').select('idempotency_key').where('call_id', '=', callId).where('status', '=', 'pending').orderBy('created_at').execute();
    for (const { idempotency_key: key } of pending) await this.run(key);
  }

  private async ask(op: PaymentOpRow): Promise<Record<string, unknown>> {
    const { provider } = this.deps;
    if (op.op === 'hold') {
      const request = op.request as PlaceHoldRequest;
      const placed = await provider.placeHold({
        callId: op.call_id,
        window: request.window,
        amountMinor: request.amountMinor,
        currency: request.currency,
        paymentMethodId: request.paymentMethodId,
        customerRef: request.customerRef,
        destination: request.destination,
        idempotencyKey: op.idempotency_key,
      });
      return { hold_id: placed.holdId };
    }
    if (op.op === 'capture') {
      const captured = await provider.capture({ holdId: op.hold_id!, amountMinor: op.amount_minor, idempotencyKey: op.idempotency_key });
      return { captured_minor: captured.captured };
    }
    await provider.release({ holdId: op.hold_id!, idempotencyKey: op.idempotency_key });
    return {};
  }

  private async settle(tx: Tx, onCommit: OnCommit, op: PaymentOpRow, answer: { ok: true; result: Record<string, unknown> } | { ok: false; error: unknown }): Promise<void> {
    const { engine, logger } = this.deps;
    const failed = !answer.ok;
    const error = answer.ok ? null : answer.error;
    const outcome = answer.ok ? 'ok' : error instanceof PaymentDeclined ? 'declined' : 'failed';
    this.deps.metrics?.operation(op.op, outcome);
    await tx
      .updateTable('payment_ops')
      .set({
        status: failed ? 'failed' : 'done',
        result: JSON.stringify(answer.ok ? answer.result : { error: describe(error) }),
        last_error: failed ? describe(error).message : null,
        done_at: new Date(),
      })
      .where('idempotency_key', '=', op.idempotency_key)
      .execute();
    const amountMinor = op.op === 'capture' && answer.ok ? Number(answer.result.captured_minor ?? op.amount_minor) : op.amount_minor;
    const holdId = op.op === 'hold' ? (answer.ok ? String(answer.result.hold_id) : null) : op.hold_id;
    await engine.paymentSettled(tx, { callId: op.call_id, op: op.op, window: op.window, holdId, amountMinor, ok: answer.ok });

    let event: BillingEvent | null = null;
    if (op.op === 'hold') {
      if (answer.ok) event = { type: 'hold_placed', window: op.window, holdId: String(answer.result.hold_id) };
      else if (error instanceof PaymentDeclined) event = { type: op.window === 1 ? 'hold_refused' : 'next_hold_refused', window: op.window, declineCode: error.declineCode };
      // Anything else refusing a hold (bad request, conflict) will not change on retry: treat as a decline.
      else event = { type: op.window === 1 ? 'hold_refused' : 'next_hold_refused', window: op.window, declineCode: 'processing_error' };
    } else if (op.op === 'capture' && !answer.ok) {
      event = { type: 'capture_impossible', window: op.window, reason: describe(error).message };
    } else if (op.op === 'release' && !answer.ok) {
      // The hold is no longer held (the provider let it go, or it was settled): nothing is owed either way.
      logger.warn({ callId: op.call_id, window: op.window, err: error }, 'billing: a release was refused; the hold is already ended');
    }

    if (event) {
      const applied = await engine.apply(tx, onCommit, op.call_id, event);
      if (!applied.ok && event.type === 'hold_placed') await this.releaseOrphan(tx, op, String(event.holdId), applied.error);
      else if (!applied.ok) logger.warn({ callId: op.call_id, event: event.type, err: applied.error }, 'billing: the payment outcome was refused by the machine');
    }
    await engine.completeIfSettled(tx, onCommit, op.call_id);
  }

  /** A hold the machine has no use for (should not happen): release it rather than leave money held. */
  private async releaseOrphan(tx: Tx, op: PaymentOpRow, holdId: string, why: AppError): Promise<void> {
    this.deps.logger.error({ callId: op.call_id, window: op.window, holdId, err: why }, 'billing: a placed hold was refused by the machine; releasing it');
    const key = idempotencyKey(op.call_id, op.window, 'release');
    await tx
      .insertInto('payment_ops')
      .values({ idempotency_key: key, call_id: op.call_id, op: 'release', window: op.window, hold_id: holdId, amount_minor: 0, request: JSON.stringify({ holdId }), status: 'pending' })
      .onConflict((oc) => oc.column('idempotency_key').doNothing())
      .execute();
    await this.deps.engine.enqueuePaymentJob(tx, key);
  }
}

function describe(error: unknown): { code: string; message: string } {
  if (error instanceof AppError) return { code: error.code, message: error.message };
  return { code: 'internal', message: error instanceof Error ? error.message : String(error) };
}
