/**
 * The user WebSocket (docs/api.md, "User WebSocket"): GET /v1/ws?token=<access_token>. Every server
 * event uses the envelope {"event": {"name", "id", "date"}, "data": {...}}. A user may hold several
 * sockets; every event goes to all of them.
 */
import { Type, type Static } from '@sinclair/typebox';

export interface UserEventEnvelope<D = Record<string, unknown>> {
  event: { name: string; id: string; date: string };
  data: D;
  /** Videochat events only: the handshake API's `{status: false, code: 0, message: ""}`. */
  error?: { status: boolean; code: number; message: string };
}

export interface CallEventData {
  call: Record<string, unknown>;
  [extra: string]: unknown;
}

/** Event names of the call lifecycle as delivered to users. */
export const UserEventName = {
  presence: 'presence',
  callInvite: 'call.invite',
  callIncoming: 'call.incoming',
  callUpdated: 'call.updated',
  callEnded: 'call.ended',
} as const;

/**
 * A client request on the user socket: {endpoint, data, event: {id, date}}, answered with a
 * UserReply carrying the same event.id (null when the request had none).
 */
export const UserRequestFrame = Type.Object({
  endpoint: Type.String({ minLength: 1, maxLength: 64 }),
  data: Type.Optional(Type.Unknown()),
  // date: epoch milliseconds or an RFC 3339 string; the server does not act on it.
  event: Type.Optional(Type.Object({ id: Type.Optional(Type.String({ maxLength: 128 })), date: Type.Optional(Type.Union([Type.Number(), Type.String({ maxLength: 64 })])) })),
});
export type UserRequestFrame = Static<typeof UserRequestFrame>;

/** The answer to a request; `error.code` is the HTTP status of the error (0 on success). */
export interface UserReply {
  data: unknown;
  error: { status: boolean; code: number; message: string };
  event: { id: string | null; date: string };
}
