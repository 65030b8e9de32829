/**
 * The call side of billing (the BilledCall port of billing/ports.ts): the call row mirrors the
 * billing machine (status, started/ended, end reason), every transition goes to the call event log,
 * and the webhook events it means (docs/webhooks.md) are recorded, all in the transaction that
 * decided it.
 */
import type { Tx } from '../../db/database.ts';
import type { BilledCall, PaymentSettled } from '../../billing/ports.ts';
import { TERMINAL_STATES, type BillingSnapshot, type BillingState, type CallEventRecord } from '../../billing/model.ts';
import type { BillingSummary, RecordedEvent } from '../../protocol/webhooks.ts';
import { formatMoney } from '../../shared/money.ts';
import { endSession } from '../activity.ts';
import type { EventOutbox } from '../ports.ts';

const LIVE: readonly BillingState[] = ['pending', 'waiting', 'active'];
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** What a paid call cost, as call.ended and call.failed carry it. */
export function billingSummary(s: BillingSnapshot): BillingSummary {
  return {
    duration_seconds: s.settlement?.activeSeconds ?? 0,
    billed_minutes: s.billedMinutes ?? 0,
    total_charged: formatMoney(s.totalChargedMinor ?? 0),
    currency: s.currency,
  };
}

export class PaidCallRecord implements BilledCall {
  constructor(private readonly events: EventOutbox) {}

  async transitioned(tx: Tx, callId: string, s: BillingSnapshot, log: CallEventRecord): Promise<void> {
    await tx
      .updateTable('calls')
      .set({
        status: s.state,
        started_at: s.startedAtMs === null ? null : new Date(s.startedAtMs),
        ended_at: s.endedAtMs === null ? null : new Date(s.endedAtMs),
        end_reason: s.endReason,
        updated_at: new Date(log.at),
      })
      .where('id', '=', callId)
      .execute();
    await tx
      .insertInto('call_events')
      .values({ call_id: callId, at: new Date(log.at), type: log.type, from_status: log.fromStatus, to_status: log.toStatus, cause: log.cause, data: JSON.stringify(log.data) })
      .execute();
    // What happened first, then the participants leave the session, then the call's end.
    for (const event of await this.eventsOf(tx, callId, s, log)) await this.events.record(tx, event);
    const from = log.fromStatus;
    if (from !== null && LIVE.includes(from) && !LIVE.includes(s.state)) await endSession(tx, this.events, callId, 'call_ended');
    for (const event of this.endOf(callId, s, log)) await this.events.record(tx, event);
  }

  async paymentSettled(tx: Tx, outcome: PaymentSettled): Promise<void> {
    if (!outcome.ok || outcome.holdId === null) return; // refusals are machine events (hold_failed, call.failed)
    const { call_id, window } = { call_id: outcome.callId, window: outcome.window };
    if (outcome.op === 'capture') {
      const currency = await this.currencyOf(tx, outcome.callId);
      await this.events.record(tx, { type: 'billing.captured', data: { call_id, window, hold_id: outcome.holdId, amount: formatMoney(outcome.amountMinor), currency } });
    } else if (outcome.op === 'release') {
      await this.events.record(tx, { type: 'billing.released', data: { call_id, window, hold_id: outcome.holdId } });
    }
  }

  /** The webhook events of one transition, in the order they happened. */
  private async eventsOf(tx: Tx, callId: string, s: BillingSnapshot, log: CallEventRecord): Promise<RecordedEvent[]> {
    const events: RecordedEvent[] = [];
    const data = log.data as { window?: number; holdId?: string | null; declineCode?: string; reason?: string };
    const hold = data.window === undefined ? undefined : s.holds.find((h) => h.window === data.window);
    const amount = formatMoney(hold?.amountMinor ?? 0);
    switch (log.type) {
      case 'initiate_accepted': {
        const parties = await tx.selectFrom('call_billing').select(['host_id', 'guest_id']).where('call_id', '=', callId).executeTakeFirstOrThrow();
        events.push({ type: 'call.created', data: { call_id: callId, kind: 'paid', media_type: 'video', initiator_id: parties.guest_id, room_id: null, host_id: parties.host_id, created_at: new Date(s.createdAtMs).toISOString() } });
        break;
      }
      case 'hold_placed':
        // A free link's window 1 is "held" with no hold: no money moved, so no billing event.
        if (data.holdId) events.push({ type: 'billing.hold_placed', data: { call_id: callId, window: data.window!, hold_id: data.holdId, amount, currency: s.currency } });
        if (log.fromStatus === 'pending' && log.toStatus === 'waiting') {
          const parties = await tx.selectFrom('call_billing').select(['host_id', 'guest_id']).where('call_id', '=', callId).executeTakeFirstOrThrow();
          events.push({ type: 'call.waiting', data: { call_id: callId, kind: 'paid', host_id: parties.host_id, guest_id: parties.guest_id } });
        }
        break;
      case 'hold_refused':
      case 'next_hold_refused':
        events.push({ type: 'billing.hold_failed', data: { call_id: callId, window: data.window!, amount, currency: s.currency, decline_code: data.declineCode ?? 'unknown' } });
        break;
      case 'media_connected':
        if (log.toStatus === 'active') events.push({ type: 'call.active', data: { call_id: callId, kind: 'paid', started_at: iso(s.startedAtMs)! } });
        break;
      default:
        break;
    }
    return events;
  }

  /** call.failed and call.ended, when the transition made the call terminal. */
  private endOf(callId: string, s: BillingSnapshot, log: CallEventRecord): RecordedEvent[] {
    const events: RecordedEvent[] = [];
    const from = log.fromStatus;
    const data = log.data as { window?: number; reason?: string };
    if (TERMINAL_STATES.includes(s.state) && (from === null || !TERMINAL_STATES.includes(from))) {
      const billing = billingSummary(s);
      if (s.state === 'failed') events.push({ type: 'call.failed', data: { call_id: callId, kind: 'paid', reason: data.reason ?? s.endReason ?? 'failed', window: data.window ?? null, billing } });
      events.push({
        type: 'call.ended',
        data: { call_id: callId, kind: 'paid', status: s.state as 'completed' | 'cancelled' | 'failed', end_reason: s.endReason, started_at: iso(s.startedAtMs), ended_at: iso(s.endedAtMs ?? log.at)!, billing },
      });
    }
    return events;
  }

  private async currencyOf(tx: Tx, callId: string): Promise<string> {
    const row = await tx.selectFrom('call_billing').select('snapshot').where('call_id', '=', callId).executeTakeFirstOrThrow();
    return (row.snapshot as BillingSnapshot).currency;
  }
}
