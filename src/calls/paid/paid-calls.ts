/**
 * Paid link calls (README, "Paid link calls"): initiate with a window-1 hold, host join or reject, end,
 * status. Every state change goes through the billing engine (one transition per transaction); this
 * service adds the call and participant rows, authorization, signaling tokens and the answers.
 */
import type { Database } from '../../db/database.ts';
import type { CallStatus } from '../../db/schema.ts';
import { inTransaction } from '../../db/database.ts';
import type { BillingEngine } from '../../billing/engine.ts';
import { endEventFor, PaymentDeclined, ProviderUnavailable, type BillingEvent, type BillingSnapshot, type Role } from '../../billing/index.ts';
import type { PaymentExecutor } from '../../billing/payments.ts';
import { idempotencyKey } from '../../billing/idempotency.ts';
import { AppError } from '../../shared/errors.ts';
import { newId } from '../../shared/ids.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import type { TurnCredentialMinter, TurnCredentials } from '../../turn/credentials.ts';
import { linkScopeAllows, type HostAvailability, type LinkService } from './links.ts';
import { toPaidCallDto, type InitiatePaidCallInput, type PaidCallDto } from './paid-call-dto.ts';
import { requireUser, type Actor } from '../ports.ts';
import type { SignalingTokenService } from '../signaling-tokens.ts';

export interface PaidCallSettings {
  joinTimeoutSeconds: number;
  mediaGraceSeconds: number;
  platformFeeBps: number;
}

export interface PaidCallServiceDeps {
  db: Database;
  clock: Clock;
  logger: Logger;
  engine: BillingEngine;
  payments: PaymentExecutor;
  links: LinkService;
  availability: HostAvailability;
  tokens: SignalingTokenService;
  turn: TurnCredentialMinter;
  media: { prepare(callId: string): Promise<void>; endCall(callId: string, reason: string): void };
  settings: PaidCallSettings;
}

export interface PaidJoinAnswer {
  call: PaidCallDto;
  signaling_url: string;
  signaling_token: string;
  turn_credentials: TurnCredentials;
}

/** States in which nobody can join or signal any more. */
export const CLOSED_PAID_STATES: readonly CallStatus[] = ['ending', 'completed', 'cancelled', 'failed'];

export class PaidCallService {
  constructor(private readonly deps: PaidCallServiceDeps) {}

  /**
   * POST /v1/calls/initiate with a short code. The call is stored (pending, link use reserved) before
   * the provider is asked for the window-1 hold; the answer is 201 waiting, or 402 when declined.
   */
  async initiate(actor: Actor, scope: string | undefined, input: InitiatePaidCallInput, signalingUrl: string, request: { requestKey?: string } = {}): Promise<PaidJoinAnswer> {
    const guestId = requireUser(actor);
    const { db, clock, engine, links, availability, settings } = this.deps;
    if (!linkScopeAllows(scope, input.short_code)) throw new AppError('forbidden', 'This guest token is for another link');
    const requestKey = request.requestKey ?? null;
    if (requestKey !== null) {
      // The retry of an initiate that a crash cut off after its call was stored: that call, never a second one.
      const earlier = await db.selectFrom('calls').select('id').where('initiator_id', '=', guestId).where('idempotency_key', '=', requestKey).executeTakeFirst();
      if (earlier) return this.finishInitiate(earlier.id, (await this.participant(earlier.id, guestId)).id, signalingUrl);
    }
    const link = await links.usable(input.short_code);
    if (link.host_id === guestId) throw new AppError('forbidden', 'A host cannot call their own link');
    if (!(await availability.isAvailable(link.host_id))) throw new AppError('host_unavailable', 'The host is not available right now');
    const [host, guest] = await Promise.all([
      db.selectFrom('users').select(['id', 'display_name', 'stripe_account_id']).where('id', '=', link.host_id).executeTakeFirstOrThrow(),
      db.selectFrom('users').select(['id', 'display_name']).where('id', '=', guestId).executeTakeFirst(),
    ]);
    if (!guest) throw new AppError('unauthorized', 'The caller no longer exists');
    const guestName = input.guest_name ?? guest.display_name;

    const callId = newId();
    await this.deps.media.prepare(callId); // 503 media_unavailable before anything is stored or held
    const now = clock.now();
    const guestParticipantId = newId();
    try {
      await inTransaction(db, async (tx, onCommit) => {
        await tx
          .insertInto('calls')
          .values({ id: callId, kind: 'paid', room_id: null, media_type: 'video', status: 'pending', initiator_id: guestId, idempotency_key: requestKey, created_at: now, updated_at: now })
          .execute();
        await tx
          .insertInto('call_participants')
          .values([
            { id: newId(), call_id: callId, user_id: host.id, role: 'host', state: 'invited', invited_at: now },
            { id: guestParticipantId, call_id: callId, user_id: guestId, role: 'guest', state: 'joined', invited_at: now, joined_at: now },
          ])
          .execute();
        await engine.create(tx, onCommit, { callId, linkId: link.id, hostId: host.id, guestId, guestName }, {
          type: 'initiate_accepted',
          callId,
          currency: link.currency,
          rateMinor: link.rate_minor,
          windowSeconds: link.window_size_minutes * 60,
          graceSeconds: settings.mediaGraceSeconds,
          joinTimeoutSeconds: settings.joinTimeoutSeconds,
          paymentMethodId: input.payment_method_id,
          destination: host.stripe_account_id ? { accountId: host.stripe_account_id, feeBps: settings.platformFeeBps } : null,
          linkExpiresAtMs: link.expires_at ? link.expires_at.getTime() : null,
        });
        // A free link has no hold to wait for: window 1 is "held" at once, through the same transition.
        if (link.rate_minor === 0) {
          const applied = await engine.apply(tx, onCommit, callId, { type: 'hold_placed', window: 1, holdId: null });
          if (!applied.ok) throw applied.error;
        }
      });
    } catch (error) {
      this.deps.media.endCall(callId, 'initiate_failed');
      throw error;
    }

    return this.finishInitiate(callId, guestParticipantId, signalingUrl);
  }

  /** The stored call's window-1 hold (asked now while pending; the outbox key makes a repeat harmless), then the answer. */
  private async finishInitiate(callId: string, guestParticipantId: string, signalingUrl: string): Promise<PaidJoinAnswer> {
    if ((await this.stored(callId)).snapshot.state === 'pending') await this.placeFirstHold(callId);
    const stored = await this.stored(callId);
    if (stored.snapshot.state === 'cancelled' && stored.snapshot.endReason === 'payment_failed') {
      throw new PaymentDeclined(stored.snapshot.declineCode ?? 'card_declined');
    }
    if (stored.snapshot.state === 'pending') {
      throw new AppError('service_unavailable', 'The payment provider did not answer; the hold is retried in the background', { call_id: callId });
    }
    return this.answer(callId, guestParticipantId, signalingUrl);
  }

  /** The host answers: a signaling token for the host. Billing starts when the SFU sees both connected. */
  async join(actor: Actor, callId: string, signalingUrl: string): Promise<PaidJoinAnswer> {
    const userId = requireUser(actor);
    const { snapshot, parties } = await this.stored(callId);
    if (parties.hostId !== userId) throw new AppError('forbidden', parties.guestId === userId ? 'The guest is already in the call; use POST /v1/calls/{id}/token to reconnect' : 'You are not a participant of this call');
    if (snapshot.state !== 'waiting' && snapshot.state !== 'active') throw new AppError('invalid_state', `The call is ${snapshot.state}`, { status: snapshot.state });
    const participant = await this.participant(callId, userId);
    await this.deps.db.updateTable('call_participants').set({ state: 'joined', joined_at: participant.joined_at ?? this.deps.clock.now(), left_at: null }).where('id', '=', participant.id).execute();
    return this.answer(callId, participant.id, signalingUrl);
  }

  async reject(actor: Actor, callId: string): Promise<PaidCallDto> {
    const userId = requireUser(actor);
    const { parties } = await this.stored(callId);
    if (parties.hostId !== userId) throw new AppError('forbidden', 'Only the host can reject a call');
    const applied = await this.deps.engine.dispatch(callId, { type: 'host_rejected' });
    if (!applied.ok) throw new AppError('invalid_state', 'Only a waiting call can be rejected', { status: applied.snapshot?.state });
    await this.deps.db.updateTable('call_participants').set({ state: 'rejected' }).where('call_id', '=', callId).where('user_id', '=', userId).execute();
    return this.settleAndDescribe(callId);
  }

  /**
   * Either participant ends the call; the answer is the settled call, or `ending` when the provider is
   * slow. The end counts from `receivedAtMs`, when the server first received it: for the retry of an
   * end that a crash cut off, when the first attempt arrived. A retry of an end that was already
   * recorded (same `requestKey`, same side) is answered with the call it settled.
   */
  async end(actor: Actor, callId: string, request: { receivedAtMs?: number; requestKey?: string } = {}): Promise<PaidCallDto> {
    const stored = await this.stored(callId);
    const role = this.roleOf(actor, stored.parties);
    if (!role) throw new AppError('forbidden', 'You are not a participant of this call');
    const endRequest = { receivedAtMs: request.receivedAtMs ?? this.deps.clock.nowMs(), requestKey: request.requestKey ?? null };
    const recorded = stored.snapshot.endRequest;
    if (endRequest.requestKey !== null && recorded?.requestKey === endRequest.requestKey && recorded.by === role) return this.settleAndDescribe(callId);
    const event: BillingEvent | null = endEventFor(stored.snapshot.state, role, endRequest);
    if (!event) throw new AppError('invalid_state', `A ${stored.snapshot.state} call cannot be ended`, { status: stored.snapshot.state });
    const applied = await this.deps.engine.dispatch(callId, event);
    if (!applied.ok) {
      const state = applied.snapshot?.state ?? stored.snapshot.state;
      throw new AppError('invalid_state', `A ${state} call cannot be ended`, { status: state });
    }
    return this.settleAndDescribe(callId);
  }

  /** GET /v1/calls/{id}/status (and GET /v1/calls/{id} for paid calls): computed now. */
  async status(actor: Actor, callId: string): Promise<PaidCallDto> {
    const stored = await this.stored(callId);
    if (!actor.isAdmin && !this.roleOf(actor, stored.parties)) throw new AppError('forbidden', 'You are not a participant of this call');
    return this.describe(callId, stored.snapshot);
  }

  /** A fresh signaling token to reconnect (or, for a guest whose initiate answer was lost, to connect). */
  async newToken(actor: Actor, callId: string, signalingUrl: string): Promise<Omit<PaidJoinAnswer, 'call'>> {
    const userId = requireUser(actor);
    const { snapshot, parties } = await this.stored(callId);
    const role = this.roleOf(actor, parties);
    if (!role) throw new AppError('forbidden', 'You are not a participant of this call');
    if (snapshot.state !== 'waiting' && snapshot.state !== 'active') throw new AppError('invalid_state', `The call is ${snapshot.state}`, { status: snapshot.state });
    const participant = await this.participant(callId, userId);
    if (role === 'host' && participant.state === 'invited') throw new AppError('forbidden', 'Join the call first (POST /v1/calls/{id}/join)');
    const { call: _call, ...rest } = await this.answer(callId, participant.id, signalingUrl);
    return rest;
  }

  async describe(callId: string, snapshot?: BillingSnapshot): Promise<PaidCallDto> {
    const { db, clock } = this.deps;
    const row = await db
      .selectFrom('call_billing')
      .innerJoin('links', 'links.id', 'call_billing.link_id')
      .innerJoin('users', 'users.id', 'call_billing.host_id')
      .select(['call_billing.snapshot', 'call_billing.guest_name', 'links.short_code', 'links.window_size_minutes', 'users.id as host_id', 'users.display_name as host_name'])
      .where('call_billing.call_id', '=', callId)
      .executeTakeFirst();
    if (!row) throw new AppError('not_found', `Call ${callId} not found`);
    const facts = { callId, shortCode: row.short_code, host: { id: row.host_id, display_name: row.host_name }, guestName: row.guest_name, windowSizeMinutes: row.window_size_minutes };
    return toPaidCallDto(facts, snapshot ?? (row.snapshot as BillingSnapshot), clock.nowMs());
  }

  /** The window-1 hold, asked now so initiate can answer with it; the job retries it if this fails. */
  private async placeFirstHold(callId: string): Promise<void> {
    try {
      await this.deps.payments.run(idempotencyKey(callId, 1, 'hold'));
    } catch (error) {
      if (!(error instanceof ProviderUnavailable)) throw error;
      this.deps.logger.warn({ callId, err: error }, 'paid call: the provider did not answer the first hold; the job retries it');
    }
  }

  /** Settles what can be settled now (captures, releases), then describes the call. */
  private async settleAndDescribe(callId: string): Promise<PaidCallDto> {
    try {
      await this.deps.payments.runPendingOf(callId);
    } catch (error) {
      // Slow or failing provider: the answer says `ending`; jobs finish it and the outcome is announced.
      this.deps.logger.warn({ callId, err: error }, 'paid call: settlement continues in the background');
    }
    return this.describe(callId);
  }

  private async answer(callId: string, participantId: string, signalingUrl: string): Promise<PaidJoinAnswer> {
    const { token } = await this.deps.tokens.issue(callId, participantId);
    return { call: await this.describe(callId), signaling_url: signalingUrl, signaling_token: token, turn_credentials: this.deps.turn.mint(participantId) };
  }

  private async stored(callId: string) {
    const stored = await this.deps.engine.load(this.deps.db, callId);
    if (!stored) throw new AppError('not_found', `Call ${callId} not found`);
    return stored;
  }

  private roleOf(actor: Actor, parties: { hostId: string; guestId: string }): Role | null {
    if (actor.userId === parties.hostId) return 'host';
    if (actor.userId === parties.guestId) return 'guest';
    return null;
  }

  private async participant(callId: string, userId: string) {
    const row = await this.deps.db.selectFrom('call_participants').selectAll().where('call_id', '=', callId).where('user_id', '=', userId).executeTakeFirst();
    if (!row) throw new AppError('forbidden', 'You are not a participant of this call');
    return row;
  }
}

