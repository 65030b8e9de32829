/**
 * SFU facts as call events (docs/webhooks.md, "Events"): a participant's signaling joins or leaves
 * the call's SFU session, a track is published or unpublished, media first flows between two
 * participants of a room call. Each is recorded in a transaction of its own, one at a time per call
 * in the order the SFU reported them; nothing is recorded for a call that is over.
 */
import type { Database, Tx } from '../db/database.ts';
import type { CallKind, CallStatus } from '../db/schema.ts';
import type { Clock } from '../shared/clock.ts';
import { KeyedSerial } from '../shared/keyed-serial.ts';
import type { DtlsState } from '../sfu/types.ts';
import type { EventOutbox } from './ports.ts';

/** Calls in these states record no SFU facts: their end was recorded (or is being settled). */
const OVER: readonly CallStatus[] = ['ending', 'completed', 'cancelled', 'failed', 'ended'];

/** Why a participant left the SFU session, as participant.left says it. */
export type ParticipantLeftReason = 'left' | 'connection_lost' | 'removed' | 'call_ended';

/** The SFU's removal reasons (sfu/session.ts) in the webhook's words. */
export function leftReasonOf(sfuReason: string): ParticipantLeftReason {
  if (sfuReason === 'left') return 'left';
  if (sfuReason === 'reconnect grace period over') return 'connection_lost';
  return 'removed';
}

export interface TrackFact {
  participantId: string;
  producerId: string;
  kind: 'audio' | 'video';
  source: string;
}

export class CallActivity {
  readonly #serial = new KeyedSerial();

  constructor(private readonly deps: { db: Database; clock: Clock; outbox: EventOutbox; dtlsStates(callId: string): Map<string, DtlsState> }) {}

  participantJoined(callId: string, participantId: string): Promise<void> {
    return this.inCall(callId, async (tx) => {
      const joined = await tx
        .updateTable('call_participants')
        .set({ in_session: true })
        .where('id', '=', participantId)
        .where('in_session', '=', false)
        .returning(['user_id', 'role'])
        .executeTakeFirst();
      if (joined) await this.deps.outbox.record(tx, { type: 'participant.joined', data: { call_id: callId, participant_id: participantId, user_id: joined.user_id, role: joined.role } });
    });
  }

  participantLeft(callId: string, participantId: string, reason: ParticipantLeftReason): Promise<void> {
    return this.inCall(callId, async (tx) => {
      const left = await tx
        .updateTable('call_participants')
        .set({ in_session: false })
        .where('id', '=', participantId)
        .where('in_session', '=', true)
        .returning(['user_id', 'role'])
        .executeTakeFirst();
      if (left) await this.deps.outbox.record(tx, { type: 'participant.left', data: { call_id: callId, participant_id: participantId, user_id: left.user_id, role: left.role, reason } });
    });
  }

  track(callId: string, change: 'published' | 'unpublished', fact: TrackFact): Promise<void> {
    return this.inCall(callId, async (tx) => {
      const participant = await tx.selectFrom('call_participants').select(['user_id', 'role']).where('id', '=', fact.participantId).executeTakeFirst();
      if (!participant) return;
      const data = { call_id: callId, participant_id: fact.participantId, user_id: participant.user_id, role: participant.role, track_id: fact.producerId, kind: fact.kind, source: fact.source };
      await this.deps.outbox.record(tx, { type: change === 'published' ? 'track.published' : 'track.unpublished', data });
    });
  }

  /** A room (or direct) call is active for its webhooks once two participants' media is connected. */
  mediaChanged(callId: string): Promise<void> {
    return this.inCall(callId, async (tx, call) => {
      if (call.kind === 'paid') return; // paid calls become active with billing (calls/paid/paid-call-record.ts)
      const connected = [...this.deps.dtlsStates(callId).values()].filter((state) => state === 'connected').length;
      if (connected < 2) return;
      await this.deps.outbox.record(tx, { type: 'call.active', data: { call_id: callId, kind: call.kind, started_at: this.deps.clock.now().toISOString() } }, { once: true });
    });
  }

  /** Resolves when every fact reported so far is recorded (tests, shutdown). */
  idle(): Promise<void> {
    return this.#serial.idle();
  }

  /** Runs `work` in a transaction holding the call's row, unless the call is over (or unknown). */
  private inCall(callId: string, work: (tx: Tx, call: { kind: CallKind; status: CallStatus }) => Promise<void>): Promise<void> {
    return this.#serial.run(callId, () =>
      this.deps.db.transaction().execute(async (tx) => {
        const call = await tx.selectFrom('calls').select(['kind', 'status']).where('id', '=', callId).forUpdate().executeTakeFirst();
        if (!call || OVER.includes(call.status)) return;
        await work(tx, call);
      }),
    );
  }
}

/**
 * In the transaction that ends a call: everyone still in its SFU session leaves it (participant.left),
 * before the call's end is recorded.
 */
export async function endSession(tx: Tx, outbox: EventOutbox, callId: string, reason: ParticipantLeftReason = 'call_ended'): Promise<void> {
  const left = await tx
    .updateTable('call_participants')
    .set({ in_session: false })
    .where('call_id', '=', callId)
    .where('in_session', '=', true)
    .returning(['id', 'user_id', 'role'])
    .execute();
  left.sort((a, b) => a.id.localeCompare(b.id));
  for (const p of left) await outbox.record(tx, { type: 'participant.left', data: { call_id: callId, participant_id: p.id, user_id: p.user_id, role: p.role, reason } });
}

/**
 * In `tx`: an unended room or direct call becomes `ended` for `reason`, everyone still joined leaves,
 * and its end is recorded (participant.left for those in session, then call.ended). False when the
 * call had already ended; nothing is written then.
 */
export async function recordCallEnd(tx: Tx, outbox: EventOutbox, end: { callId: string; kind: Extract<CallKind, 'room' | 'direct'>; reason: string; now: Date }): Promise<boolean> {
  const { callId, kind, reason, now } = end;
  const updated = await tx
    .updateTable('calls')
    .set({ status: 'ended', ended_at: now, end_reason: reason, updated_at: now })
    .where('id', '=', callId)
    .where('status', '!=', 'ended')
    .returning(['started_at'])
    .executeTakeFirst();
  if (!updated) return false;
  await tx.updateTable('call_participants').set({ state: 'left', left_at: now }).where('call_id', '=', callId).where('state', '=', 'joined').execute();
  await endSession(tx, outbox, callId, 'call_ended');
  await outbox.record(tx, {
    type: 'call.ended',
    data: { call_id: callId, kind, status: 'ended', end_reason: reason, started_at: updated.started_at?.toISOString() ?? null, ended_at: now.toISOString() },
  });
  return true;
}
