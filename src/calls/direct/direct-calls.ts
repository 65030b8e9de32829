/**
 * Direct videochat calls (docs/videochat.md): made by accepting a videochat request on the user
 * socket, joined with the handshake's tickets. This is the call side: creating the call and its
 * participants, the tickets, leaving and ending; the handshake itself is videochat-service.ts.
 */
import type { Database, DbHandle, Tx } from '../../db/database.ts';
import { inTransaction } from '../../db/database.ts';
import type { CallRow } from '../../db/schema.ts';
import { toUserSimple } from '../../identity/users.ts';
import type { UserSimple, VideochatPermissions, VideochatTicket } from '../../protocol/videochat.ts';
import type { Clock } from '../../shared/clock.ts';
import { AppError } from '../../shared/errors.ts';
import { newId, randomToken } from '../../shared/ids.ts';
import type { TurnCredentialMinter } from '../../turn/credentials.ts';
import { recordCallEnd } from '../activity.ts';
import type { CallKindHandler, EndRequest } from '../kinds.ts';
import { requireUser, type Actor, type CallMediaPort, type EventOutbox, type UserNotifier } from '../ports.ts';
import { toCallDto, type CallDto } from '../room/call-dto.ts';
import { rolesOf } from '../roles.ts';
import type { SignalingTokenService } from '../signaling-tokens.ts';

export interface DirectCallDeps {
  db: Database;
  clock: Clock;
  tokens: SignalingTokenService;
  turn: TurnCredentialMinter;
  media: CallMediaPort;
  notifier: UserNotifier;
  events: EventOutbox;
}

const ENDED = 'ended';

export async function userSimple(db: DbHandle, userId: string): Promise<UserSimple> {
  const row = await db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirst();
  if (!row) throw new AppError('not_found', `User ${userId} not found`);
  return toUserSimple(row) as unknown as UserSimple;
}

export class DirectCalls implements CallKindHandler {
  readonly kind = 'direct' as const;

  constructor(private readonly deps: DirectCallDeps) {}

  /** In the accept transaction: the call (the initiator owns it), both participants, its secret, call.created. */
  async create(tx: Tx, initiatorId: string, targetId: string): Promise<string> {
    const callId = newId();
    const now = this.deps.clock.now();
    await tx.insertInto('calls').values({ id: callId, kind: 'direct', room_id: null, media_type: 'video', status: 'active', initiator_id: initiatorId, created_at: now, started_at: now, updated_at: now }).execute();
    await this.addParticipant(tx, callId, initiatorId, 'initiator');
    await this.addParticipant(tx, callId, targetId, 'member');
    await this.deps.events.record(tx, { type: 'call.created', data: { call_id: callId, kind: 'direct', media_type: 'video', initiator_id: initiatorId, room_id: null, host_id: null, created_at: now.toISOString() } });
    return callId;
  }

  /** After the accept's commit: the call's media router now, so an abandoned call ends by the empty timeout. */
  async prepare(callId: string): Promise<void> {
    await this.deps.media.prepare(callId);
  }

  /** `userId` is (again) a participant of `callId`, as joined: its ticket admits it. */
  async addParticipant(tx: DbHandle, callId: string, userId: string, role = 'member'): Promise<void> {
    const now = this.deps.clock.now();
    await tx
      .insertInto('call_participants')
      .values({ id: newId(), call_id: callId, user_id: userId, role, state: 'joined', invited_at: now, joined_at: now })
      .onConflict((oc) => oc.columns(['call_id', 'user_id']).doUpdateSet({ state: 'joined', left_at: null }))
      .execute();
    // The first participant the handshake brings into a call (of any kind) gives it its secret.
    await tx.insertInto('call_shared_secrets').values({ call_id: callId, secret: randomToken(32) }).onConflict((oc) => oc.column('call_id').doNothing()).execute();
  }

  /** The receiver's own join ticket: every field of the accept answer (docs/api.md). */
  async ticket(callId: string, userId: string, signalingUrl: string): Promise<VideochatTicket> {
    const { db } = this.deps;
    const call = await db.selectFrom('calls').selectAll().where('id', '=', callId).executeTakeFirstOrThrow();
    const participant = await db.selectFrom('call_participants').selectAll().where('call_id', '=', callId).where('user_id', '=', userId).executeTakeFirstOrThrow();
    // A stable small number per participant: its rank in the call (ids are ULIDs, never reused).
    const rank = await db.selectFrom('call_participants').select((eb) => eb.fn.countAll<number>().as('n')).where('call_id', '=', callId).where('id', '<=', participant.id).executeTakeFirstOrThrow();
    const secret = await db.selectFrom('call_shared_secrets').select('secret').where('call_id', '=', callId).executeTakeFirstOrThrow();
    const { token } = await this.deps.tokens.issue(callId, participant.id);
    const permissions: VideochatPermissions = await rolesOf(db, call, participant);
    return {
      videochatId: callId,
      videochatMode: 'videochat',
      videochatEngine: 'callplane',
      videochatAppId: '',
      videochatUrl: signalingUrl,
      room: callId,
      identity: participant.id,
      uid: Number(rank.n),
      token,
      sharedSecret: secret.secret,
      user: await userSimple(db, userId),
      permissions,
      turn_credentials: this.deps.turn.mint(participant.id),
    };
  }

  // ---- CallKindHandler -----------------------------------------------------------------------

  async join(actor: Actor, call: CallRow, signalingUrl: string) {
    return { call: await this.dto(call.id), ...(await this.newToken(actor, call, signalingUrl)) };
  }

  /** Another socket of a participant, or a reconnect: only users the handshake brought in. */
  async newToken(actor: Actor, call: CallRow, signalingUrl: string) {
    const userId = requireUser(actor);
    if (call.status === ENDED) throw new AppError('call_ended', 'The call has ended');
    const participant = await this.participantOf(call.id, userId);
    if (!participant || participant.state !== 'joined') throw new AppError('forbidden', 'Only participants of this videochat may join it');
    const { token } = await this.deps.tokens.issue(call.id, participant.id);
    return { signaling_url: signalingUrl, signaling_token: token, turn_credentials: this.deps.turn.mint(participant.id) };
  }

  async leave(actor: Actor, call: CallRow): Promise<CallDto> {
    const userId = requireUser(actor);
    const participant = await this.participantOf(call.id, userId);
    if (!participant) throw new AppError('forbidden', 'You are not a participant of this call');
    if (call.status === ENDED) throw new AppError('call_ended', 'The call has ended');
    this.deps.media.removeParticipant(call.id, participant.id, 'left');
    await this.participantGone(call, participant.id);
    return this.dto(call.id);
  }

  async reject(): Promise<never> {
    throw new AppError('invalid_state', 'A videochat request is declined on the user socket (videochat:declineVideochatRequest)');
  }

  /** The owner (or an admin) ends it for everyone; others leave. */
  async end(actor: Actor, call: CallRow, request: EndRequest): Promise<CallDto> {
    if (!actor.isAdmin && call.initiator_id !== requireUser(actor)) throw new AppError('forbidden', 'Only the owner of the videochat can end it for everyone; leave instead');
    if (call.status === ENDED) throw new AppError('call_ended', 'The call has already ended');
    await this.finish(call.id, request.reason ?? 'ended_by_user');
    return this.dto(call.id);
  }

  async describe(actor: Actor, call: CallRow): Promise<CallDto> {
    if (!actor.isAdmin && !(await this.participantOf(call.id, requireUser(actor)))) throw new AppError('forbidden', 'You are not a participant of this call');
    return this.dto(call.id);
  }

  acceptsSignaling(call: CallRow): boolean {
    return call.status !== ENDED;
  }

  async canEndCall(call: CallRow, userId: string): Promise<boolean> {
    return call.initiator_id === userId;
  }

  async emptied(call: CallRow): Promise<void> {
    if (call.status !== ENDED) await this.finish(call.id, 'empty');
  }

  async changed(call: CallRow): Promise<void> {
    const dto = await this.dto(call.id);
    this.deps.notifier.notify(dto.participants.filter((p) => p.state === 'joined').map((p) => p.user_id), 'call.updated', { call: dto });
  }

  /** Gone for good: when nobody is left in the call, it ends. */
  async participantGone(call: CallRow, participantId: string): Promise<void> {
    await this.deps.db.updateTable('call_participants').set({ state: 'left', left_at: this.deps.clock.now() }).where('id', '=', participantId).where('state', '=', 'joined').execute();
    const left = await this.deps.db.selectFrom('call_participants').select('id').where('call_id', '=', call.id).where('state', '=', 'joined').executeTakeFirst();
    if (!left && call.status !== ENDED) await this.finish(call.id, 'everyone_left');
  }

  // ---- internals ----------------------------------------------------------------------------

  /** Ends the call: recorded (participant.left for those in session, call.ended) before the media closes. */
  private async finish(callId: string, reason: string): Promise<void> {
    const now = this.deps.clock.now();
    const ended = await inTransaction(this.deps.db, (tx) => recordCallEnd(tx, this.deps.events, { callId, kind: 'direct', reason, now }));
    if (!ended) return;
    this.deps.media.endCall(callId, reason);
    const dto = await this.dto(callId);
    this.deps.notifier.notify(dto.participants.map((p) => p.user_id), 'call.ended', { call: dto });
  }

  private participantOf(callId: string, userId: string) {
    return this.deps.db.selectFrom('call_participants').selectAll().where('call_id', '=', callId).where('user_id', '=', userId).executeTakeFirst();
  }

  private async dto(callId: string): Promise<CallDto> {
    const call = await this.deps.db.selectFrom('calls').selectAll().where('id', '=', callId).executeTakeFirstOrThrow();
    const participants = await this.deps.db
      .selectFrom('call_participants')
      .innerJoin('users', 'users.id', 'call_participants.user_id')
      .selectAll('call_participants')
      .select('users.display_name')
      .where('call_id', '=', callId)
      .orderBy('call_participants.id')
      .execute();
    return toCallDto(call, participants, this.deps.media.participantMedia(callId));
  }
}
