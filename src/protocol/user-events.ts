/**
 * The user WebSocket (docs/api.md, "User WebSocket"): GET /v1/ws?token=<access_token>. Every server
 * event uses the envelope {"event": {"name", "id", "date"}, "data": {...}}. A user may hold several sockets; every
 * event goes to all of them.
 */
export interface UserEventEnvelope<D = Record<string, unknown>> {
  event: { name: string; id: string; date: string };
  data: D;
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
