/**
 * One call model, one strategy per kind (README, "Room calls" and "Paid link calls"): `room`, `paid`
 * and `direct` each implement CallKindHandler, and the CallFacade (calls/facade.ts) reads the call
 * row once and hands it to its kind. The routes never branch on the kind.
 */
import type { CallKind, CallRow } from '../db/schema.ts';
import type { TurnCredentials } from '../turn/credentials.ts';
import type { CallDto } from './room/call-dto.ts';
import type { PaidCallDto } from './paid/paid-call-dto.ts';
import type { Actor } from './ports.ts';

export type { CallKind, CallRow, CallStatus } from '../db/schema.ts';
export { CALL_STATUSES } from '../db/schema.ts';

/** What GET /v1/calls/{id} shows: a room call with its participants, or a paid call with its meter. */
export type AnyCallDto = CallDto | PaidCallDto;

export interface SignalingAnswer {
  signaling_url: string;
  signaling_token: string;
  turn_credentials: TurnCredentials;
}

export interface JoinAnswerOf<D extends AnyCallDto = AnyCallDto> extends SignalingAnswer {
  call: D;
}

/** An end as the client asked it: a reason (room calls), and for retries its first receipt and key. */
export interface EndRequest {
  reason?: string;
  receivedAtMs?: number;
  requestKey?: string;
}

export interface CallKindHandler {
  readonly kind: CallKind;
  join(actor: Actor, call: CallRow, signalingUrl: string): Promise<JoinAnswerOf>;
  /** A fresh signaling token for a participant reconnecting. */
  newToken(actor: Actor, call: CallRow, signalingUrl: string): Promise<SignalingAnswer>;
  leave(actor: Actor, call: CallRow): Promise<AnyCallDto>;
  reject(actor: Actor, call: CallRow): Promise<AnyCallDto>;
  end(actor: Actor, call: CallRow, request: EndRequest): Promise<AnyCallDto>;
  /** GET /v1/calls/{id} and /status: the call as its participants see it now. */
  describe(actor: Actor, call: CallRow): Promise<AnyCallDto>;
  /** May a signaling socket (still) connect to the call in its current state? */
  acceptsSignaling(call: CallRow): boolean;
  /** May this participant end the call for everyone from the call screen? */
  canEndCall(call: CallRow, userId: string): Promise<boolean>;
  /** The SFU found nobody connected for the empty timeout. */
  emptied(call: CallRow): Promise<void>;
  /** Participants or tracks changed in the SFU (announced to the users, when the kind does so). */
  changed(call: CallRow): Promise<void>;
  /** A participant is gone for good from the SFU (its reconnect grace is over). */
  participantGone(call: CallRow, participantId: string): Promise<void>;
}
