/**
 * The call side of billing (the BilledCall port of billing/ports.ts): the call row mirrors the
 * billing machine (status, started/ended, end reason) and every transition goes to the call event
 * log, in the transaction that decided it.
 */
import type { DbHandle } from '../../db/database.ts';
import type { BilledCall } from '../../billing/ports.ts';
import type { BillingSnapshot, CallEventRecord } from '../../billing/model.ts';

export class PaidCallRecord implements BilledCall {
  async transitioned(db: DbHandle, callId: string, s: BillingSnapshot, log: CallEventRecord): Promise<void> {
    await db
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
    await db
      .insertInto('call_events')
      .values({ call_id: callId, at: new Date(log.at), type: log.type, from_status: log.fromStatus, to_status: log.toStatus, cause: log.cause, data: JSON.stringify(log.data) })
      .execute();
  }
}
