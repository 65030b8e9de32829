/**
 * Start-up reconciliation, before the job runner starts: drives every paid call that is not in a
 * terminal state on towards the right one after a restart (or a crash at any instant). Jobs are durable, so most of this re-adds
 * what should already exist; duplicates are harmless because the machine refuses stale events and
 * payment jobs are keyed by their idempotency key.
 */
import type { Database } from '../db/database.ts';
import { inTransaction } from '../db/database.ts';
import { realDelayMs, type Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { BillingEngine } from './engine.ts';
import { atOffset, hasPlacingHold, meterConfig, nextHoldWindow, placesHolds, windowEndAt } from './holds.ts';
import { holdDueSeconds } from './meter.ts';
import type { BillingEvent, BillingSnapshot } from './model.ts';
import { TERMINAL_STATES } from './model.ts';
import { BILLING_TICK, type JobQueue } from './ports.ts';

export interface ReconcileReport {
  pendingPayments: number;
  waiting: number;
  active: number;
  ending: number;
  completedNow: number;
}

export async function reconcileBilling(deps: {
  db: Database;
  clock: Clock;
  logger: Logger;
  engine: BillingEngine;
  jobs: JobQueue;
  /**
   * Media is gone after a restart: a gap opens at `stoppedAtMs`, the last instant media was seen. The
   * call goes on only if both reconnect within the grace period counted from then (the server being
   * down is a gap like any other); otherwise it ends there and nothing after it is billed.
   */
  openMediaGap(callId: string, stoppedAtMs: number): Promise<void>;
}): Promise<ReconcileReport> {
  const { db, clock, engine, jobs, logger } = deps;
  const report: ReconcileReport = { pendingPayments: 0, waiting: 0, active: 0, ending: 0, completedNow: 0 };

  const pending = await db.selectFrom('payment_ops').select('idempotency_key').where('status', '=', 'pending').execute();
  for (const { idempotency_key: key } of pending) await engine.enqueuePaymentJob(db, key);
  report.pendingPayments = pending.length;

  const live = await db.selectFrom('call_billing').select(['call_id', 'snapshot', 'media_seen_at']).where('state', 'not in', [...TERMINAL_STATES]).execute();
  const now = clock.nowMs();
  const schedule = async (callId: string, event: BillingEvent, at: number): Promise<void> =>
    jobs.add(db, BILLING_TICK, { callId, event, at }, { runAt: new Date(Date.now() + realDelayMs(clock, at)) });

  for (const row of live) {
    const s = row.snapshot as BillingSnapshot;
    const callId = row.call_id;
    if (s.state === 'waiting') {
      report.waiting += 1;
      await schedule(callId, { type: 'join_timeout' }, s.waitingSinceMs! + s.joinTimeoutSeconds * 1000);
      if (s.linkExpiresAtMs !== null) await schedule(callId, { type: 'link_expired' }, Math.max(now, s.linkExpiresAtMs));
    } else if (s.state === 'active') {
      report.active += 1;
      await schedule(callId, { type: 'window_boundary', window: s.currentWindow }, windowEndAt(s, s.currentWindow));
      if (placesHolds(s) && s.cutoffWindow === null && !hasPlacingHold(s)) {
        const window = nextHoldWindow(s);
        await schedule(callId, { type: 'next_hold_due', window }, atOffset(s, holdDueSeconds(window, meterConfig(s))));
      }
      // The heartbeat's last record, never before the start, never after now. A gap already open
      // (media was gone before the crash) keeps its earlier start: the machine refuses a second one.
      const seen = Math.min(now, Math.max(s.startedAtMs!, row.media_seen_at?.getTime() ?? s.startedAtMs!));
      await deps.openMediaGap(callId, seen);
    } else if (s.state === 'ending') {
      report.ending += 1;
      const completed = await inTransaction(db, (tx, onCommit) => engine.completeIfSettled(tx, onCommit, callId));
      if (completed) report.completedNow += 1;
    }
  }
  logger.info(report, 'billing: reconciled paid calls after start-up');
  return report;
}
