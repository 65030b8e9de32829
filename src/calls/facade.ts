/**
 * The one entry to calls of every kind: reads the call row once and hands it to the handler of its
 * kind (calls/kinds.ts). The routes, the signaling socket and the SFU wiring call this, never a
 * kind's service directly (initiate aside: its body already says the kind).
 */
import type { Database } from '../db/database.ts';
import { AppError } from '../shared/errors.ts';
import type { ParticipantIdentity } from '../sfu/types.ts';
import type { CallKind, CallKindHandler, CallRow, EndRequest } from './kinds.ts';
import type { Actor } from './ports.ts';
import type { SignalingTokenService } from './signaling-tokens.ts';
import { permissionsFrom, rolesOf } from './roles.ts';

export class CallFacade {
  readonly #kinds: ReadonlyMap<CallKind, CallKindHandler>;

  constructor(
    private readonly deps: { db: Database; tokens: SignalingTokenService },
    kinds: readonly CallKindHandler[],
  ) {
    this.#kinds = new Map(kinds.map((handler) => [handler.kind, handler]));
  }

  join(actor: Actor, callId: string, signalingUrl: string) {
    return this.withKind(callId, (kind, call) => kind.join(actor, call, signalingUrl));
  }

  newToken(actor: Actor, callId: string, signalingUrl: string) {
    return this.withKind(callId, (kind, call) => kind.newToken(actor, call, signalingUrl));
  }

  leave(actor: Actor, callId: string) {
    return this.withKind(callId, (kind, call) => kind.leave(actor, call));
  }

  reject(actor: Actor, callId: string) {
    return this.withKind(callId, (kind, call) => kind.reject(actor, call));
  }

  end(actor: Actor, callId: string, request: EndRequest) {
    return this.withKind(callId, (kind, call) => kind.end(actor, call, request));
  }

  describe(actor: Actor, callId: string) {
    return this.withKind(callId, (kind, call) => kind.describe(actor, call));
  }

  /** Signaling: trades a single-use token for the participant's identity (null: refuse the socket). */
  async resolveSignalingToken(token: string): Promise<ParticipantIdentity | null> {
    const bound = await this.deps.tokens.consume(token);
    if (!bound) return null;
    const participant = await this.deps.db
      .selectFrom('call_participants')
      .innerJoin('users', 'users.id', 'call_participants.user_id')
      .select(['call_participants.id', 'call_participants.call_id', 'call_participants.user_id', 'call_participants.role', 'call_participants.permissions', 'users.display_name'])
      .where('call_participants.id', '=', bound.participantId)
      .executeTakeFirst();
    const loaded = participant ? await this.find(participant.call_id) : null;
    if (!participant || !loaded || !loaded.kind.acceptsSignaling(loaded.call)) return null;
    await this.deps.db.updateTable('call_participants').set({ state: 'joined', left_at: null }).where('id', '=', participant.id).execute();
    return {
      callId: bound.callId,
      participantId: participant.id,
      userId: participant.user_id,
      displayName: participant.display_name,
      role: participant.role,
      permissions: permissionsFrom(await rolesOf(this.deps.db, loaded.call, participant), await loaded.kind.canEndCall(loaded.call, participant.user_id)),
    };
  }

  /** Whether the call takes new media connections (WHIP/WHEP): null when there is no such call. */
  async admission(callId: string): Promise<'live' | 'ended' | null> {
    const loaded = await this.find(callId);
    if (!loaded) return null;
    return loaded.kind.acceptsSignaling(loaded.call) ? 'live' : 'ended';
  }

  // ---- from the SFU ------------------------------------------------------------------------

  async emptied(callId: string): Promise<void> {
    const loaded = await this.find(callId);
    if (loaded) await loaded.kind.emptied(loaded.call);
  }

  async changed(callId: string): Promise<void> {
    const loaded = await this.find(callId);
    if (loaded) await loaded.kind.changed(loaded.call);
  }

  /** A moderator changed roles over signaling: kept, so the participant's reconnects keep them. */
  async permissionsChanged(participantId: string, permissions: Record<string, boolean>): Promise<void> {
    const { canPublish: _p, canSubscribe: _s, canEndCall: _e, ...roles } = permissions;
    await this.deps.db.updateTable('call_participants').set({ permissions: JSON.stringify(roles) }).where('id', '=', participantId).execute();
  }

  async participantGone(callId: string, participantId: string): Promise<void> {
    const loaded = await this.find(callId);
    if (loaded) await loaded.kind.participantGone(loaded.call, participantId);
  }

  // ---- internals ----------------------------------------------------------------------------

  private async find(callId: string): Promise<{ call: CallRow; kind: CallKindHandler } | null> {
    const call = await this.deps.db.selectFrom('calls').selectAll().where('id', '=', callId).executeTakeFirst();
    if (!call) return null;
    const kind = this.#kinds.get(call.kind);
    if (!kind) throw new Error(`calls: no handler for the ${call.kind} kind`);
    return { call, kind };
  }

  /** Loads the call (404 when there is none) and runs `act` with the handler of its kind. */
  private async withKind<T>(callId: string, act: (kind: CallKindHandler, call: CallRow) => Promise<T>): Promise<T> {
    const loaded = await this.find(callId);
    if (!loaded) throw new AppError('not_found', `Call ${callId} not found`);
    return act(loaded.kind, loaded.call);
  }
}
