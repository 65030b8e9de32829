/**
 * Between the billing engine and the rest of the process: the SFU's view of DTLS starts the meter
 * (both participants connected) and detects media loss; billing ticks arrive from the job queue; the
 * engine's notices go out to users' sockets and the call's signaling peers.
 */
import type { Database } from '../../db/database.ts';
import type { BillingEngine, BillingListener } from '../../billing/engine.ts';
import type { BillingEffect, BillingEvent, BillingSnapshot, CallEventRecord, DtlsState } from '../../billing/model.ts';
import { BILLING_TICK, type JobQueue, type PaidCallParties, type TickJob } from '../../billing/ports.ts';
import { TERMINAL_STATES } from '../../billing/model.ts';
import { realDelayMs, type Clock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import { KeyedSerial } from '../../shared/keyed-serial.ts';
import type { NotificationPayloads } from '../../protocol/signaling.ts';
import type { PaidCallService } from './paid-calls.ts';
import type { UserNotifier } from '../ports.ts';

export interface PaidMediaPort {
  dtlsStates(callId: string): Map<string, DtlsState>;
  notifyCall(callId: string, type: 'call_status', payload: NotificationPayloads['call_status']): void;
  endCall(callId: string, reason: string): void;
}

export interface PaidCallEventsDeps {
  db: Database;
  clock: Clock;
  logger: Logger;
  engine: BillingEngine;
  jobs: JobQueue;
  paid: PaidCallService;
  media: PaidMediaPort;
  notifier: UserNotifier;
  mediaGraceSeconds: number;
}

/** How often (call time) the media heartbeat records that media still flows. */
const HEARTBEAT_MS = 5000;

/** Instants in notices are epoch ms inside the machine and RFC 3339 on the wire. */
function wireData(data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) out[key] = key.endsWith('_at') && typeof value === 'number' ? new Date(value).toISOString() : value;
  return out;
}

export class PaidCallEvents implements BillingListener {
  /** participant ids of host and guest, per paid call seen on this node. */
  private readonly roles = new Map<string, { host: string; guest: string }>();
  /** Per call, media changes are handled one at a time, in order. */
  private readonly mediaQueue = new KeyedSerial();
  /** Active calls whose media flows both ways on this node: their media_seen_at is kept fresh. */
  private readonly flowing = new Set<string>();
  private heartbeatTimer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: PaidCallEventsDeps) {}

  /**
   * Every HEARTBEAT_MS of call time, media_seen_at is set for the calls whose media flows: after a
   * crash the reconciler stops their meter there, not at the restart (the guest never pays downtime).
   */
  startHeartbeat(): void {
    const beat = (): void => {
      this.heartbeatTimer = setTimeout(() => {
        this.heartbeat().catch((error: unknown) => this.deps.logger.warn({ err: error }, 'paid call: media heartbeat failed')).finally(beat);
      }, Math.max(100, realDelayMs(this.deps.clock, this.deps.clock.nowMs() + HEARTBEAT_MS)));
      this.heartbeatTimer.unref();
    };
    beat();
  }

  /** Stops the heartbeat after a last beat (graceful shutdown: the meter of live calls stops now). */
  async stopHeartbeat(): Promise<void> {
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
    await this.heartbeat();
  }

  async heartbeat(callIds: readonly string[] = [...this.flowing]): Promise<void> {
    if (callIds.length === 0) return;
    await this.deps.db.updateTable('call_billing').set({ media_seen_at: this.deps.clock.now() }).where('call_id', 'in', callIds).where('state', '=', 'active').execute();
  }

  // ---- from the SFU ------------------------------------------------------------------------

  /**
   * A transport of the call connected or went away: start the meter, or open / close a media gap.
   * Changes of one call are handled in order, each reading the SFU's DTLS states when it runs, so a
   * quick drop-and-reconnect cannot be applied backwards.
   */
  mediaChanged(callId: string, atMs: number = this.deps.clock.nowMs()): Promise<void> {
    return this.mediaQueue.run(callId, () => this.applyMediaChange(callId, atMs));
  }

  /** `atMs`: when the SFU reported the change; a gap it opens starts then, not when it is handled. */
  private async applyMediaChange(callId: string, atMs: number): Promise<void> {
    const roles = await this.rolesOf(callId);
    if (!roles) return;
    const states = this.deps.media.dtlsStates(callId);
    const dtls = { host: states.get(roles.host) ?? 'new', guest: states.get(roles.guest) ?? 'new' };
    const stored = await this.deps.engine.load(this.deps.db, callId);
    if (!stored) return;
    const { state, mediaGapSinceMs } = stored.snapshot;
    if (dtls.host === 'connected' && dtls.guest === 'connected') {
      const event: BillingEvent | null = state === 'waiting' ? { type: 'media_connected', dtls } : state === 'active' && mediaGapSinceMs !== null ? { type: 'media_restored' } : null;
      if (event) {
        const applied = await this.deps.engine.dispatch(callId, event);
        // A reconnect after the grace period is refused: the media_lost job ends the call at the gap's start.
        if (!applied.ok) this.deps.logger.info({ callId, event: event.type, reason: applied.error.message }, 'paid call: media change refused');
        if (!applied.ok || applied.snapshot.state !== 'active') return;
      }
      if (state === 'waiting' || state === 'active') {
        this.flowing.add(callId);
        await this.heartbeat([callId]);
      }
      return;
    }
    if (this.flowing.delete(callId)) await this.heartbeat([callId]); // media stopped now: the last instant it was seen
    if (state === 'active' && mediaGapSinceMs === null) await this.openGap(callId, atMs);
  }

  /**
   * Media is gone as of `stoppedAtMs`: the machine opens a gap (refused if one is open already: the
   * earlier start stands) and schedules its decision at the end of the grace period.
   */
  async openGap(callId: string, stoppedAtMs: number): Promise<void> {
    const applied = await this.deps.engine.dispatch(callId, { type: 'media_gap_opened', stoppedAtMs });
    if (applied.ok) this.deps.logger.info({ callId, graceSeconds: this.deps.mediaGraceSeconds }, 'paid call: media gone; the call ends unless it comes back');
    else this.deps.logger.debug({ callId, reason: applied.error.message }, 'paid call: media gap not opened');
  }

  // ---- from the job queue ------------------------------------------------------------------

  async tick(job: TickJob): Promise<void> {
    const { callId, event } = job;
    if (this.deps.clock.nowMs() < job.at) {
      // Real and application time can round apart by a millisecond; a job early by that must not be lost.
      await this.deps.jobs.add(this.deps.db, BILLING_TICK, job, { runAt: new Date(Date.now() + realDelayMs(this.deps.clock, job.at)) });
      return;
    }
    const applied = await this.deps.engine.dispatch(callId, event);
    if (!applied.ok) this.deps.logger.debug({ callId, event: event.type, reason: applied.error.message }, 'billing: stale job dropped');
  }

  // ---- from the engine (BillingListener) ----------------------------------------------------

  transitioned(parties: PaidCallParties, snapshot: BillingSnapshot, log: CallEventRecord): void {
    const terminal = TERMINAL_STATES.includes(snapshot.state);
    if (terminal || snapshot.state === 'ending') {
      this.roles.delete(parties.callId);
      this.flowing.delete(parties.callId);
    }
    if (log.fromStatus === log.toStatus && log.type !== 'next_hold_refused') return; // window ticks: nothing new to show
    void this.deps.paid
      .describe(parties.callId)
      .then((call) => this.deps.notifier.notify([parties.hostId, parties.guestId], terminal ? 'call.ended' : 'call.updated', { call }))
      .catch((error: unknown) => this.deps.logger.warn({ err: error, callId: parties.callId }, 'paid call: announcing a change failed'));
  }

  notice(parties: PaidCallParties, effect: Extract<BillingEffect, { type: 'notify' }>, snapshot: BillingSnapshot): void {
    const { callId } = parties;
    if (effect.to === 'operator') {
      this.deps.logger.error({ callId, ...effect.data }, `billing alert: ${effect.message}`);
      return;
    }
    if (effect.message === 'call.incoming') {
      void this.deps.paid
        .describe(callId, snapshot)
        .then((call) => this.deps.notifier.notify([parties.hostId], 'call.incoming', { call }))
        .catch((error: unknown) => this.deps.logger.warn({ err: error, callId }, 'paid call: call.incoming failed'));
      return;
    }
    if (effect.message === 'call_status') {
      const data = wireData(effect.data) as { status: NotificationPayloads['call_status']['status'] } & Record<string, unknown>;
      this.deps.media.notifyCall(callId, 'call_status', { ...data, callId });
    }
  }

  endMedia(callId: string, reason: string): void {
    this.deps.media.endCall(callId, reason);
  }

  // ---- internals ----------------------------------------------------------------------------

  private async rolesOf(callId: string): Promise<{ host: string; guest: string } | null> {
    const known = this.roles.get(callId);
    if (known) return known;
    const rows = await this.deps.db
      .selectFrom('call_participants')
      .innerJoin('calls', 'calls.id', 'call_participants.call_id')
      .select(['call_participants.id', 'call_participants.role'])
      .where('call_participants.call_id', '=', callId)
      .where('calls.kind', '=', 'paid')
      .execute();
    const host = rows.find((r) => r.role === 'host')?.id;
    const guest = rows.find((r) => r.role === 'guest')?.id;
    if (!host || !guest) return null;
    const roles = { host, guest };
    this.roles.set(callId, roles);
    return roles;
  }
}
