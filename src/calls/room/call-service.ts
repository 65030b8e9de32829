import { Type, type Static } from '@sinclair/typebox';
import type { Database, DbHandle } from '../../db/database.ts';
import { inTransaction } from '../../db/database.ts';
import type { CallRow, ParticipantRow } from '../../db/schema.ts';
import { AppError } from '../../shared/errors.ts';
import { newId } from '../../shared/ids.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import { TurnCredentialsSchema, type TurnCredentialMinter, type TurnCredentials } from '../../turn/credentials.ts';
import { requireUser, type Actor, type CallMediaPort, type CallRecordingsPort, type EventOutbox, type UserNotifier } from '../ports.ts';
import { recordCallEnd } from '../activity.ts';
import { POWER, type RoomService } from './rooms.ts';
import type { SignalingTokenService } from '../signaling-tokens.ts';
import { CallSchema, toCallDto, type CallDto } from './call-dto.ts';

export const InitiateRoomCallBody = Type.Object(
  { room_id: Type.String({ pattern: '^[0-9A-HJKMNP-TV-Z]{26}$' }), type: Type.Union([Type.Literal('audio'), Type.Literal('video')]) },
  { additionalProperties: false },
);
export type InitiateRoomCallInput = Static<typeof InitiateRoomCallBody>;

export const JoinAnswerSchema = Type.Object({
  call: CallSchema,
  signaling_url: Type.String(),
  signaling_token: Type.String(),
  turn_credentials: TurnCredentialsSchema,
});

export interface JoinAnswer {
  call: CallDto;
  signaling_url: string;
  signaling_token: string;
  turn_credentials: TurnCredentials;
}

export interface CallServiceDeps {
  db: Database;
  clock: Clock;
  logger: Logger;
  rooms: RoomService;
  tokens: SignalingTokenService;
  turn: TurnCredentialMinter;
  media: CallMediaPort;
  notifier: UserNotifier;
  events: EventOutbox;
  /** The call's recordings in its DTO; none when recording is not wired (unit tests). */
  recordings?: CallRecordingsPort;
}

const ENDED = 'ended';

/** Room calls (README, "Room calls"): initiate, join, leave, reject, end, read; signaling tokens for the SFU. */
export class CallService {
  constructor(private readonly deps: CallServiceDeps) {}

  async initiateRoomCall(actor: Actor, input: InitiateRoomCallInput, signalingUrl: string): Promise<JoinAnswer> {
    const userId = requireUser(actor);
    const { rooms, clock, media } = this.deps;
    const room = await rooms.find(input.room_id);
    if (!room) throw new AppError('not_found', `Room ${input.room_id} not found`);
    if ((await rooms.powerOf(room.id, userId)) === null) throw new AppError('forbidden', 'You are not a member of this room');
    const live = await this.deps.db.selectFrom('calls').select('id').where('room_id', '=', room.id).where('ended_at', 'is', null).executeTakeFirst();
    if (live) throw new AppError('invalid_state', 'This room already has a call in progress; join it', { call_id: live.id });

    const callId = newId();
    await media.prepare(callId); // 503 media_unavailable here, before anything is stored
    const memberIds = await rooms.memberIds(room.id);
    const now = clock.now();
    let participantId = '';
    try {
      await inTransaction(this.deps.db, async (tx, onCommit) => {
        await tx
          .insertInto('calls')
          .values({ id: callId, kind: 'room', room_id: room.id, media_type: input.type, status: 'active', initiator_id: userId, created_at: now, started_at: now, updated_at: now })
          .execute();
        participantId = newId();
        await tx
          .insertInto('call_participants')
          .values(memberIds.map((memberId) => ({
            id: memberId === userId ? participantId : newId(),
            call_id: callId,
            user_id: memberId,
            role: memberId === userId ? 'initiator' : 'member',
            state: memberId === userId ? ('joined' as const) : ('invited' as const),
            invited_at: now,
            joined_at: memberId === userId ? now : null,
          })))
          .execute();
        await this.logEvent(tx, callId, 'created', null, 'active', `initiated by ${userId}`);
        await this.deps.events.record(tx, {
          type: 'call.created',
          data: { call_id: callId, kind: 'room', media_type: input.type, initiator_id: userId, room_id: room.id, host_id: null, created_at: now.toISOString() },
        });
        onCommit(async () => {
          const call = await this.dto(callId);
          const from = await this.deps.db.selectFrom('users').select(['id', 'display_name']).where('id', '=', userId).executeTakeFirst().catch(() => undefined);
          this.deps.notifier.notify(memberIds.filter((id) => id !== userId), 'call.invite', { call, room: { id: room.id, name: room.name }, from: from ?? { id: userId } });
        });
      });
    } catch (error) {
      media.endCall(callId, 'initiate_failed');
      if ((error as { code?: string }).code === '23505') throw new AppError('invalid_state', 'This room already has a call in progress; join it');
      throw error;
    }
    return this.answer(callId, participantId, signalingUrl);
  }

  async join(actor: Actor, call: CallRow, signalingUrl: string): Promise<JoinAnswer> {
    const userId = requireUser(actor);
    const callId = liveCall(call);
    let participant = await this.participantOf(callId, userId);
    if (!participant) {
      if (!call.room_id || (await this.deps.rooms.powerOf(call.room_id, userId)) === null) throw new AppError('forbidden', 'You are not a member of this call\'s room');
      participant = await this.deps.db
        .insertInto('call_participants')
        .values({ id: newId(), call_id: callId, user_id: userId, role: 'member', state: 'joined', joined_at: this.deps.clock.now() })
        .onConflict((oc) => oc.columns(['call_id', 'user_id']).doUpdateSet({ state: 'joined' }))
        .returningAll()
        .executeTakeFirstOrThrow();
    } else {
      await this.deps.db
        .updateTable('call_participants')
        .set({ state: 'joined', joined_at: participant.joined_at ?? this.deps.clock.now(), left_at: null })
        .where('id', '=', participant.id)
        .execute();
    }
    await this.logEvent(this.deps.db, callId, 'participant_joined', null, null, userId);
    await this.announceUpdate(callId);
    return this.answer(callId, participant.id, signalingUrl);
  }

  /** A fresh signaling token for a participant reconnecting (worker death, network change). */
  async newToken(actor: Actor, call: CallRow, signalingUrl: string): Promise<Omit<JoinAnswer, 'call'>> {
    const userId = requireUser(actor);
    const callId = liveCall(call);
    const participant = await this.participantOf(callId, userId);
    if (!participant || participant.state === 'rejected' || participant.state === 'invited') throw new AppError('forbidden', 'Only participants who joined may reconnect; use join');
    const { call: _call, ...rest } = await this.answer(callId, participant.id, signalingUrl);
    return rest;
  }

  async leave(actor: Actor, call: CallRow): Promise<CallDto> {
    const userId = requireUser(actor);
    const callId = call.id;
    const participant = await this.participantOf(callId, userId);
    if (!participant) throw new AppError('forbidden', 'You are not a participant of this call');
    if (call.status === ENDED) throw new AppError('call_ended', 'The call has ended');
    await this.markLeft(participant.id);
    this.deps.media.removeParticipant(callId, participant.id, 'left');
    await this.logEvent(this.deps.db, callId, 'participant_left', null, null, userId);
    await this.announceUpdate(callId);
    return this.dto(callId);
  }

  async reject(actor: Actor, call: CallRow): Promise<CallDto> {
    const userId = requireUser(actor);
    const callId = liveCall(call);
    const participant = await this.participantOf(callId, userId);
    if (!participant) throw new AppError('forbidden', 'You are not a participant of this call');
    if (participant.state !== 'invited') throw new AppError('invalid_state', `Only a ringing invitation can be rejected (yours is ${participant.state})`);
    await this.deps.db.updateTable('call_participants').set({ state: 'rejected' }).where('id', '=', participant.id).execute();
    await this.logEvent(this.deps.db, callId, 'participant_rejected', null, null, userId);
    await this.announceUpdate(callId);
    return this.dto(callId);
  }

  /** Ends the call for everyone: the initiator, a moderator (power ≥ 50) or an admin. */
  async end(actor: Actor, call: CallRow, reason = 'ended_by_user'): Promise<CallDto> {
    const callId = call.id;
    if (!actor.isAdmin) {
      const userId = requireUser(actor);
      if (!(await this.participantOf(callId, userId)) && (!call.room_id || (await this.deps.rooms.powerOf(call.room_id, userId)) === null)) {
        throw new AppError('forbidden', 'You are not a participant of this call');
      }
      const power = call.room_id ? await this.deps.rooms.powerOf(call.room_id, userId) : null;
      if (call.initiator_id !== userId && (power ?? -1) < POWER.moderator) throw new AppError('forbidden', 'Only the initiator or a moderator (power ≥ 50) can end the call');
    }
    if (call.status === ENDED) throw new AppError('call_ended', 'The call has already ended');
    return this.finish(callId, reason);
  }

  /** Ended by the system (empty for too long, media failure): no actor to authorize. */
  async endBySystem(call: CallRow, reason: string): Promise<void> {
    if (call.status === ENDED) return;
    await this.finish(call.id, reason);
  }

  async get(actor: Actor, call: CallRow): Promise<CallDto> {
    const callId = call.id;
    if (!actor.isAdmin) {
      const userId = requireUser(actor);
      const isParticipant = Boolean(await this.participantOf(callId, userId));
      const isMember = call.room_id ? (await this.deps.rooms.powerOf(call.room_id, userId)) !== null : false;
      if (!isParticipant && !isMember) throw new AppError('forbidden', 'You are not a participant of this call');
    }
    return this.dto(callId);
  }

  /** In a room call the initiator and moderators (power ≥ 50) may end it for everyone. */
  async canEndCall(call: CallRow, userId: string): Promise<boolean> {
    const power = call.room_id ? await this.deps.rooms.powerOf(call.room_id, userId) : null;
    return call.initiator_id === userId || (power ?? -1) >= POWER.moderator;
  }

  /** The SFU dropped a participant for good (grace period over); `announce`: tell the call's users. */
  async participantGone(callId: string, participantId: string, announce = true): Promise<void> {
    if (!(await this.markLeft(participantId))) return; // already left through the REST API
    await this.logEvent(this.deps.db, callId, 'participant_left', null, null, 'media gone');
    if (announce) await this.announceUpdate(callId);
  }

  async announceUpdate(callId: string): Promise<void> {
    const call = await this.dto(callId);
    this.deps.notifier.notify(await this.notifiedUsers(callId), 'call.updated', { call });
  }

  private async finish(callId: string, reason: string): Promise<CallDto> {
    const now = this.deps.clock.now();
    const ended = await inTransaction(this.deps.db, async (tx) => {
      if (!(await recordCallEnd(tx, this.deps.events, { callId, kind: 'room', reason, now }))) return false;
      await this.logEvent(tx, callId, 'ended', 'active', ENDED, reason);
      return true;
    });
    if (!ended) throw new AppError('call_ended', 'The call has already ended');
    this.deps.media.endCall(callId, reason);
    const call = await this.dto(callId);
    this.deps.notifier.notify(await this.notifiedUsers(callId), 'call.ended', { call });
    return call;
  }

  private async answer(callId: string, participantId: string, signalingUrl: string): Promise<JoinAnswer> {
    const { token } = await this.deps.tokens.issue(callId, participantId);
    return { call: await this.dto(callId), signaling_url: signalingUrl, signaling_token: token, turn_credentials: this.deps.turn.mint(participantId) };
  }

  private async dto(callId: string): Promise<CallDto> {
    // Read again: the call row may have changed (joined, ended) since the request loaded it.
    const call = await this.deps.db.selectFrom('calls').selectAll().where('id', '=', callId).executeTakeFirst();
    if (!call) throw new AppError('not_found', `Call ${callId} not found`);
    const participants = await this.deps.db
      .selectFrom('call_participants')
      .innerJoin('users', 'users.id', 'call_participants.user_id')
      .selectAll('call_participants')
      .select('users.display_name')
      .where('call_id', '=', callId)
      .orderBy('call_participants.invited_at')
      .orderBy('call_participants.id')
      .execute();
    const recordings = this.deps.recordings ? await this.deps.recordings.forCall(callId) : [];
    return toCallDto(call, participants, this.deps.media.participantMedia(callId), recordings);
  }

  private async notifiedUsers(callId: string): Promise<string[]> {
    const rows = await this.deps.db.selectFrom('call_participants').select('user_id').where('call_id', '=', callId).where('state', '!=', 'rejected').execute();
    return rows.map((r) => r.user_id);
  }

  /** True when the participant was in the call and now is not. */
  private async markLeft(participantId: string): Promise<boolean> {
    const result = await this.deps.db
      .updateTable('call_participants')
      .set({ state: 'left', left_at: this.deps.clock.now() })
      .where('id', '=', participantId)
      .where('state', '=', 'joined')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  private async participantOf(callId: string, userId: string): Promise<ParticipantRow | undefined> {
    return this.deps.db.selectFrom('call_participants').selectAll().where('call_id', '=', callId).where('user_id', '=', userId).executeTakeFirst();
  }


  private async logEvent(db: DbHandle, callId: string, type: string, from: string | null, to: string | null, cause: string | null): Promise<void> {
    await db.insertInto('call_events').values({ call_id: callId, at: this.deps.clock.now(), type, from_status: from, to_status: to, cause, data: null }).execute();
  }
}

/** The id of a call still live; an ended one is 409 call_ended. */
function liveCall(call: CallRow): string {
  if (call.status === ENDED) throw new AppError('call_ended', 'The call has ended');
  return call.id;
}
