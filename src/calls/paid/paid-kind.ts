/**
 * Paid link calls (README, "Paid link calls") as one kind of call: the PaidCallService and billing
 * do the work. Billing alone ends a paid call (an end, media loss, a timeout) and announces it.
 */
import { AppError } from '../../shared/errors.ts';
import type { CallService } from '../room/call-service.ts';
import type { CallKindHandler, CallRow, EndRequest } from '../kinds.ts';
import { CLOSED_PAID_STATES, type PaidCallService } from './paid-calls.ts';
import type { Actor } from '../ports.ts';

export class PaidCallKind implements CallKindHandler {
  readonly kind = 'paid' as const;

  constructor(
    private readonly paid: PaidCallService,
    private readonly participants: Pick<CallService, 'participantGone'>,
  ) {}

  join(actor: Actor, call: CallRow, signalingUrl: string) {
    return this.paid.join(actor, call.id, signalingUrl);
  }

  newToken(actor: Actor, call: CallRow, signalingUrl: string) {
    return this.paid.newToken(actor, call.id, signalingUrl);
  }

  async leave(): Promise<never> {
    throw new AppError('invalid_state', 'A paid call is left by ending it: POST /v1/calls/{id}/end');
  }

  reject(actor: Actor, call: CallRow) {
    return this.paid.reject(actor, call.id);
  }

  end(actor: Actor, call: CallRow, request: EndRequest) {
    return this.paid.end(actor, call.id, { ...(request.receivedAtMs !== undefined ? { receivedAtMs: request.receivedAtMs } : {}), ...(request.requestKey ? { requestKey: request.requestKey } : {}) });
  }

  describe(actor: Actor, call: CallRow) {
    return this.paid.status(actor, call.id);
  }

  acceptsSignaling(call: CallRow): boolean {
    return !CLOSED_PAID_STATES.includes(call.status);
  }

  /** Either side of a paid call may end it. */
  async canEndCall(): Promise<boolean> {
    return true;
  }

  /** Nothing: an empty paid call ends through billing (media-loss grace, join timeout), not here. */
  async emptied(): Promise<void> {}

  /** Nothing: billing announces paid calls (call.updated with the meter). */
  async changed(): Promise<void> {}

  participantGone(call: CallRow, participantId: string): Promise<void> {
    return this.participants.participantGone(call.id, participantId, false);
  }
}
