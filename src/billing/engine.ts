/**
 * Applies the billing machine (machine.ts) to stored calls. One event = one database transaction:
 * lock the call's snapshot row, run the pure transition, store the new snapshot, have the call
 * mirror it and log it (through the BilledCall port), and turn the effects into durable rows and jobs in that same
 * transaction. Nothing leaves the process before the commit: provider calls run from the payment
 * outbox (payment_ops + a job), notices and media teardown run in onCommit hooks.
 */
import type { Database, DbHandle, Tx } from '../db/database.ts';
import { inTransaction, type CommitHook } from '../db/database.ts';
import type { CallBillingRow } from '../db/schema.ts';
import { AppError } from '../shared/errors.ts';
import { realDelayMs, type Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { transition } from './machine.ts';
import type { BillingEffect, BillingEvent, BillingSnapshot, CallEventRecord, InitiateAccepted } from './model.ts';
import { BILLING_PAYMENT, BILLING_TICK, type BilledCall, type JobQueue, type LinkUseCounter, type PaidCallParties, type PaymentSettled } from './ports.ts';

export type OnCommit = (hook: CommitHook) => void;

/** Where the engine's notices go; the paid-call service implements it (it knows DTOs and sockets). */
export interface BillingListener {
  /** After a committed transition (user-socket call.updated / call.ended). */
  transitioned(parties: PaidCallParties, snapshot: BillingSnapshot, log: CallEventRecord): void;
  /** A `notify` effect of the machine. */
  notice(parties: PaidCallParties, effect: Extract<BillingEffect, { type: 'notify' }>, snapshot: BillingSnapshot): void;
  /** An `end_media` effect: close the call's media for both sides. */
  endMedia(callId: string, reason: string): void;
}

export interface BillingEngineDeps {
  db: Database;
  clock: Clock;
  logger: Logger;
  jobs: JobQueue;
  links: LinkUseCounter;
  /** The call each snapshot belongs to: billing owns only its own tables. */
  calls: BilledCall;
}

export type Applied = { ok: true; snapshot: BillingSnapshot; parties: PaidCallParties } | { ok: false; error: AppError; snapshot: BillingSnapshot | null };

export interface StoredBilling {
  row: CallBillingRow;
  snapshot: BillingSnapshot;
  parties: PaidCallParties;
}

function partiesOf(row: Pick<CallBillingRow, 'call_id' | 'link_id' | 'host_id' | 'guest_id'>): PaidCallParties {
  return { callId: row.call_id, linkId: row.link_id, hostId: row.host_id, guestId: row.guest_id };
}

/** Snapshots stored before a field existed read it as its initial value. */
function normalizeSnapshot(stored: BillingSnapshot): BillingSnapshot {
  return { ...stored, mediaGapSinceMs: stored.mediaGapSinceMs ?? null, endRequest: stored.endRequest ?? null };
}

export class BillingEngine {
  private listener: BillingListener | null = null;

  constructor(private readonly deps: BillingEngineDeps) {}

  get clock(): Clock {
    return this.deps.clock;
  }

  /** The paid-call service attaches itself (it is built after the engine). */
  listen(listener: BillingListener): void {
    this.listener = listener;
  }

  async load(db: DbHandle, callId: string, forUpdate = false): Promise<StoredBilling | undefined> {
    let query = db.selectFrom('call_billing').selectAll().where('call_id', '=', callId);
    if (forUpdate) query = query.forUpdate();
    const row = await query.executeTakeFirst();
    return row ? { row, snapshot: normalizeSnapshot(row.snapshot as BillingSnapshot), parties: partiesOf(row) } : undefined;
  }

  /** Creates the call's billing (initiate accepted → pending) inside the caller's transaction; throws on refusal. */
  async create(tx: Tx, onCommit: OnCommit, parties: PaidCallParties & { guestName: string | null }, event: InitiateAccepted): Promise<BillingSnapshot> {
    const now = this.deps.clock.nowMs();
    const result = transition(null, event, now);
    if (!result.ok) throw result.error;
    await tx
      .insertInto('call_billing')
      .values({
        call_id: parties.callId,
        link_id: parties.linkId,
        host_id: parties.hostId,
        guest_id: parties.guestId,
        guest_name: parties.guestName,
        state: result.next.state,
        snapshot: JSON.stringify(result.next),
        updated_at: new Date(now),
      })
      .execute();
    await this.deps.calls.transitioned(tx, parties.callId, result.next, result.log);
    await this.runEffects(tx, onCommit, parties, result.next, result.effects);
    onCommit(() => this.listener?.transitioned(parties, result.next, result.log));
    return result.next;
  }

  /** Applies one event inside the caller's transaction (locks the call's row until it ends). */
  async apply(tx: Tx, onCommit: OnCommit, callId: string, event: BillingEvent): Promise<Applied> {
    const stored = await this.load(tx, callId, true);
    if (!stored) return { ok: false, error: new AppError('not_found', `Call ${callId} has no billing`), snapshot: null };
    const result = transition(stored.snapshot, event, this.deps.clock.nowMs());
    if (!result.ok) return { ok: false, error: result.error, snapshot: stored.snapshot };
    const { next, log, effects } = result;
    await tx
      .updateTable('call_billing')
      .set({ state: next.state, snapshot: JSON.stringify(next), version: stored.row.version + 1, updated_at: new Date(log.at) })
      .where('call_id', '=', callId)
      .execute();
    await this.deps.calls.transitioned(tx, stored.parties.callId, next, log);
    await this.runEffects(tx, onCommit, stored.parties, next, effects);
    onCommit(() => this.listener?.transitioned(stored.parties, next, log));
    // A settlement with nothing to ask the provider (free call, zero-second call) completes at once.
    if (next.state === 'ending' && stored.snapshot.state !== 'ending') {
      const completed = await this.completeIfSettled(tx, onCommit, callId);
      if (completed) return { ok: true, snapshot: completed, parties: stored.parties };
    }
    return { ok: true, snapshot: next, parties: stored.parties };
  }

  /**
   * An ending call whose payment operations have all been answered is completed (final_capture_done
   * with what its settlement captures actually captured). Returns the completed snapshot, or null.
   */
  async completeIfSettled(tx: Tx, onCommit: OnCommit, callId: string): Promise<BillingSnapshot | null> {
    const stored = await this.load(tx, callId, true);
    if (!stored || stored.snapshot.state !== 'ending') return null;
    const ops = await tx.selectFrom('payment_ops').select(['op', 'window', 'status', 'amount_minor']).where('call_id', '=', callId).execute();
    if (ops.some((op) => op.status === 'pending')) return null;
    const windows = new Set(stored.snapshot.settlement!.captures.map((c) => c.window));
    const capturedMinor = ops.filter((op) => op.op === 'capture' && op.status === 'done' && windows.has(op.window)).reduce((sum, op) => sum + op.amount_minor, 0);
    // A settlement capture that failed already moved the call to failed (capture_impossible): refused here.
    const applied = await this.apply(tx, onCommit, callId, { type: 'final_capture_done', capturedMinor });
    if (!applied.ok) {
      this.deps.logger.debug({ callId, err: applied.error }, 'billing: settlement not complete yet');
      return null;
    }
    return applied.snapshot;
  }

  /** The provider's final answer to a payment operation, reported to the call in the same transaction. */
  async paymentSettled(tx: Tx, outcome: PaymentSettled): Promise<void> {
    // Locks in the order every transition takes them (call_billing, then the call): never a deadlock.
    await this.load(tx, outcome.callId, true);
    await this.deps.calls.paymentSettled(tx, outcome);
  }

  /** One event in a transaction of its own; hooks run after the commit. */
  async dispatch(callId: string, event: BillingEvent): Promise<Applied> {
    return inTransaction(
      this.deps.db,
      (tx, onCommit) => this.apply(tx, onCommit, callId, event),
      (error) => this.deps.logger.error({ err: error, callId }, 'billing: a post-commit hook failed'),
    );
  }

  private async runEffects(tx: Tx, onCommit: OnCommit, parties: PaidCallParties, s: BillingSnapshot, effects: BillingEffect[]): Promise<void> {
    const { callId } = parties;
    for (const effect of effects) {
      switch (effect.type) {
        case 'reserve_link_use':
          await this.deps.links.reserveUse(tx, parties.linkId);
          break;
        case 'release_link_use':
          await this.deps.links.releaseUse(tx, parties.linkId);
          break;
        case 'place_hold':
        case 'capture':
        case 'release_hold':
          await this.enqueuePayment(tx, callId, effect);
          break;
        case 'schedule':
          await this.deps.jobs.add(tx, BILLING_TICK, { callId, event: effect.job, at: effect.at }, { runAt: new Date(Date.now() + realDelayMs(this.deps.clock, effect.at)) });
          break;
        case 'notify':
          onCommit(() => this.listener?.notice(parties, effect, s));
          break;
        case 'end_media':
          onCommit(() => this.listener?.endMedia(callId, effect.reason));
          break;
      }
    }
  }

  /** The outbox row (the exact provider request) and its job, in the deciding transaction. */
  private async enqueuePayment(tx: Tx, callId: string, effect: Extract<BillingEffect, { type: 'place_hold' | 'capture' | 'release_hold' }>): Promise<void> {
    const op = effect.type === 'place_hold' ? 'hold' : effect.type === 'capture' ? 'capture' : 'release';
    const { type: _type, ...request } = effect;
    const inserted = await tx
      .insertInto('payment_ops')
      .values({
        idempotency_key: effect.idempotencyKey,
        call_id: callId,
        op,
        window: effect.window,
        hold_id: 'holdId' in effect ? effect.holdId : null,
        amount_minor: 'amountMinor' in effect ? effect.amountMinor : 0,
        request: JSON.stringify(request),
        status: 'pending',
      })
      .onConflict((oc) => oc.column('idempotency_key').doNothing())
      .returning('idempotency_key')
      .executeTakeFirst();
    if (!inserted) {
      // The machine emits each intent once; a second one would mean a bug, never a second charge.
      this.deps.logger.error({ callId, key: effect.idempotencyKey }, 'billing: a payment intent was emitted twice; the first stands');
      return;
    }
    await this.enqueuePaymentJob(tx, effect.idempotencyKey);
  }

  /** The job that executes one outbox row; keyed by the row so it is never queued twice. */
  async enqueuePaymentJob(db: DbHandle, key: string, runAt?: Date): Promise<void> {
    await this.deps.jobs.add(db, BILLING_PAYMENT, { key }, { jobKey: key, ...(runAt ? { runAt } : {}) });
  }
}
