/**
 * The videochat handshake (docs/api.md, "Direct videochat (user socket)"; decisions in
 * docs/videochat.md): request, invite, accept, decline, merge and expiry. Each request's lifecycle
 * is a row of videochat_requests moved by the transition table of request-machine.ts, under a row
 * lock; its expiry is a durable job added in the same transaction. Users hear of it through the
 * UserNotifier, only after the commit.
 */
import type { Database, Tx } from '../../db/database.ts';
import { inTransaction } from '../../db/database.ts';
import type { VideochatRequestRow } from '../../db/schema.ts';
import { taskKind, type JobQueue } from '../../jobs/queue.ts';
import {
  VIDEOCHAT_REQUEST_TTL_SECONDS,
  VideochatErrorCode,
  VideochatEvent,
  canModerate,
  type InviteData,
  type MergeData,
  type UserSimple,
  type VideochatTicket,
} from '../../protocol/videochat.ts';
import { realDelayMs, type Clock } from '../../shared/clock.ts';
import { AppError } from '../../shared/errors.ts';
import { isUlid, newId } from '../../shared/ids.ts';
import type { Logger } from '../../shared/logger.ts';
import type { SocketCaller, UserNotifier } from '../ports.ts';
import { rolesOf } from '../roles.ts';
import { userSimple, type DirectCalls } from './direct-calls.ts';
import { requestTransition, type RequestEvent, type RequestSnapshot } from './request-machine.ts';

export const VIDEOCHAT_EXPIRE = taskKind<{ requestId: string }>('videochat_expire');

/** Calls in these states are over: nobody is busy in them. */
const OVER = ['ending', 'completed', 'cancelled', 'failed', 'ended'] as const;
const MAX_LISTED_PARTICIPANTS = 10;

export interface VideochatDeps {
  db: Database;
  clock: Clock;
  logger: Logger;
  jobs: JobQueue;
  notifier: UserNotifier;
  calls: DirectCalls;
  /** ws(s)://<public host>/v1/signal */
  signalingUrl: () => string;
}

const userNotFound = (id: string) => new AppError('not_found', `User ${JSON.stringify(id).slice(0, 80)} not found`, { code: VideochatErrorCode.userNotFound });
const unavailable = () => new AppError('service_unavailable', 'The user is not available', { code: VideochatErrorCode.userUnavailable });

function snapshotOf(row: VideochatRequestRow): RequestSnapshot {
  return { id: row.id, kind: row.kind, initiatorId: row.initiator_id, targetId: row.target_id, callId: row.call_id, state: row.state, expiresAtMs: row.expires_at.getTime() };
}

export class VideochatService {
  constructor(private readonly deps: VideochatDeps) {}

  async requestDirect(caller: SocketCaller, targetUser: string): Promise<{ videochatRequestId: string }> {
    if (targetUser === caller.userId) throw new AppError('validation_failed', 'You cannot call yourself');
    await this.requireAvailable(targetUser);
    const user = await userSimple(this.deps.db, caller.userId);
    return this.open(caller, 'direct', targetUser, null, { user, participants: [], counter: 0 });
  }

  /** Owners and panelists of a running room or direct call bring someone in. */
  async invite(caller: SocketCaller, { targetUser, videochatId }: InviteData): Promise<{ videochatRequestId: string }> {
    await this.requireModerator(caller.userId, videochatId, 'invite');
    const already = await this.deps.db.selectFrom('call_participants').select('id').where('call_id', '=', videochatId).where('user_id', '=', targetUser).where('state', '=', 'joined').executeTakeFirst();
    await this.requireAvailable(targetUser);
    if (already) throw new AppError('invalid_state', 'The user is already in this videochat');
    const connected = await this.deps.db
      .selectFrom('call_participants')
      .select('user_id')
      .where('call_id', '=', videochatId)
      .where((eb) => eb.or([eb('in_session', '=', true), eb('user_id', '=', caller.userId)]))
      .orderBy('id')
      .execute();
    const participants = await Promise.all(connected.slice(0, MAX_LISTED_PARTICIPANTS).map((p) => userSimple(this.deps.db, p.user_id)));
    const user = await userSimple(this.deps.db, caller.userId);
    return this.open(caller, 'invite', targetUser, videochatId, { user, participants, counter: connected.length });
  }

  async accept(caller: SocketCaller, requestId: string): Promise<VideochatTicket> {
    const { row } = await this.move(requestId, { type: 'accept', by: caller.userId }, caller);
    return this.deps.calls.ticket(row.call_id!, caller.userId, this.deps.signalingUrl());
  }

  async decline(caller: SocketCaller, requestId: string): Promise<null> {
    await this.move(requestId, { type: 'decline', by: caller.userId }, caller);
    return null;
  }

  /** The target of a direct request, in a call it moderates, brings the initiator into that call. */
  async merge(caller: SocketCaller, { videochatId, videochatRequestId }: MergeData): Promise<null> {
    await this.requireModerator(caller.userId, videochatId, 'merge a request into');
    await this.move(videochatRequestId, { type: 'merge', by: caller.userId, callId: videochatId }, caller);
    return null;
  }

  /** The durable expiry job: declines the request if it is still unanswered (a stale job changes nothing). */
  async expire(requestId: string): Promise<void> {
    try {
      await this.move(requestId, { type: 'expire' }, null);
    } catch (error) {
      if (error instanceof AppError && (error.status === 409 || error.status === 404)) return;
      throw error;
    }
  }

  /** Online users for the lobby, as User Simple. */
  async onlineUsers(caller: SocketCaller): Promise<{ users: Array<UserSimple & { available: boolean }> }> {
    const ids = this.deps.notifier.onlineUserIds().filter((id) => id !== caller.userId);
    const users = await Promise.all(ids.map(async (id) => ({ ...(await userSimple(this.deps.db, id)), available: await this.isAvailable(id) })));
    return { users: users.sort((a, b) => a.firstName.localeCompare(b.firstName)) };
  }

  /**
   * A user is available with a live socket and no live call, or in a live room or direct call
   * which they own or moderate (the request rings; they may merge it). Never in a paid call.
   */
  async isAvailable(userId: string): Promise<boolean> {
    if (!this.deps.notifier.isOnline(userId)) return false;
    const live = await this.deps.db
      .selectFrom('call_participants')
      .innerJoin('calls', 'calls.id', 'call_participants.call_id')
      .select(['calls.kind', 'calls.room_id', 'calls.initiator_id', 'call_participants.user_id', 'call_participants.permissions'])
      .where('call_participants.user_id', '=', userId)
      .where('call_participants.state', '=', 'joined')
      .where('calls.status', 'not in', OVER)
      .execute();
    for (const call of live) {
      if (call.kind === 'paid') return false;
      if (!canModerate(await rolesOf(this.deps.db, call, call))) return false;
    }
    return true;
  }

  // ---- internals ----------------------------------------------------------------------------

  private async requireAvailable(userId: string): Promise<void> {
    if (!isUlid(userId) || !(await this.deps.db.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst())) throw userNotFound(userId);
    if (!(await this.isAvailable(userId))) throw unavailable();
  }

  /** The caller must be a joined owner or panelist of a live room or direct call. */
  private async requireModerator(userId: string, callId: string, what: string): Promise<void> {
    const call = isUlid(callId) ? await this.deps.db.selectFrom('calls').selectAll().where('id', '=', callId).executeTakeFirst() : undefined;
    if (!call) throw new AppError('not_found', `Videochat ${JSON.stringify(callId).slice(0, 80)} not found`);
    if ((OVER as readonly string[]).includes(call.status)) throw new AppError('invalid_state', 'The videochat has ended');
    if (call.kind === 'paid') throw new AppError('forbidden', `Nobody can be brought into a paid call`);
    const participant = await this.deps.db.selectFrom('call_participants').select(['user_id', 'permissions', 'state']).where('call_id', '=', callId).where('user_id', '=', userId).executeTakeFirst();
    if (!participant || participant.state !== 'joined' || !canModerate(await rolesOf(this.deps.db, call, participant))) throw new AppError('forbidden', `Only owners and panelists of the videochat may ${what} it`);
  }

  /** Records a new request and its expiry job; the target's sockets ring after the commit. */
  private async open(caller: SocketCaller, kind: 'direct' | 'invite', targetId: string, callId: string | null, ring: { user: UserSimple; participants: UserSimple[]; counter: number }) {
    const id = newId();
    const now = this.deps.clock.nowMs();
    const expiresAt = now + VIDEOCHAT_REQUEST_TTL_SECONDS * 1000;
    await inTransaction(this.deps.db, async (tx, onCommit) => {
      await tx.insertInto('videochat_requests').values({ id, kind, initiator_id: caller.userId, target_id: targetId, call_id: callId, state: 'requested', created_at: new Date(now), expires_at: new Date(expiresAt) }).execute();
      await this.deps.jobs.add(tx, VIDEOCHAT_EXPIRE, { requestId: id }, { runAt: new Date(Date.now() + realDelayMs(this.deps.clock, expiresAt)), jobKey: `videochat_expire:${id}` });
      onCommit(() => this.deps.notifier.notify([targetId], VideochatEvent.requested, { videochatRequestId: id, ...ring }));
    });
    return { videochatRequestId: id };
  }

  /**
   * One transition under the request's row lock; its effects (the call, a participant) in the same
   * transaction, its announcements after the commit. A refused event is the refusal's error.
   */
  private async move(requestId: string, event: RequestEvent, caller: SocketCaller | null): Promise<{ row: VideochatRequestRow }> {
    const now = this.deps.clock.nowMs();
    const row = await inTransaction(this.deps.db, async (tx, onCommit) => {
      const found = isUlid(requestId) ? await tx.selectFrom('videochat_requests').selectAll().where('id', '=', requestId).forUpdate().executeTakeFirst() : undefined;
      if (!found) throw new AppError('not_found', `Videochat request ${JSON.stringify(requestId).slice(0, 80)} not found`);
      const s = snapshotOf(found);
      if (event.type === 'expire' && s.state === 'requested' && now < s.expiresAtMs) {
        // Due later on this clock (a scaled or adjusted clock): run again then.
        await this.deps.jobs.add(tx, VIDEOCHAT_EXPIRE, { requestId }, { runAt: new Date(Date.now() + realDelayMs(this.deps.clock, s.expiresAtMs)), jobKey: `videochat_expire:${requestId}` });
        return found;
      }
      const result = requestTransition(s, event, now);
      if (!result.ok) throw new AppError(result.refusal.code, result.refusal.reason);
      let callId = result.next.callId;
      for (const effect of result.effects) {
        if (effect.type === 'create_direct_call') callId = await this.deps.calls.create(tx, s.initiatorId, s.targetId);
        else if (effect.type === 'add_participant') await this.deps.calls.addParticipant(tx, effect.callId, effect.userId);
      }
      const updated = await this.save(tx, requestId, result.next.state, callId, caller?.userId ?? null, now);
      for (const effect of result.effects) {
        if (effect.type === 'announce_declined') {
          onCommit(() => this.deps.notifier.notify([s.initiatorId, s.targetId], VideochatEvent.declined, { videochatRequestId: requestId }, caller ? { exceptSocket: caller.socketId } : {}));
        } else if (effect.type === 'announce_accepted') {
          onCommit(async () => {
            // The target's other sockets stop ringing; a direct initiator (or a merged one) gets its ticket.
            this.deps.notifier.notify([s.targetId], VideochatEvent.accepted, { videochatRequestId: requestId }, caller ? { exceptSocket: caller.socketId } : {});
            if (s.kind === 'direct') {
              await this.deps.calls.prepare(callId!);
              const ticket = await this.deps.calls.ticket(callId!, s.initiatorId, this.deps.signalingUrl());
              this.deps.notifier.notify([s.initiatorId], VideochatEvent.directAccepted, { ...ticket });
            }
          });
        }
      }
      return updated;
    }, (error) => this.deps.logger.error({ err: error, requestId }, 'videochat: announcing a transition failed'));
    return { row };
  }

  private async save(tx: Tx, id: string, state: RequestSnapshot['state'], callId: string | null, by: string | null, now: number): Promise<VideochatRequestRow> {
    return tx.updateTable('videochat_requests').set({ state, call_id: callId, answered_at: new Date(now), answered_by: by }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
  }
}
