/**
 * The videochat handshake's endpoints on the user socket (docs/api.md, "Direct videochat (user
 * socket)"): each validated against its schema, answered in the handshake's envelope.
 */
import type { VideochatService } from '../calls/direct/videochat-service.ts';
import { EmptyData, InviteData, MergeData, PresenceEndpoint, RequestDirectData, RequestIdData, VideochatEndpoint } from '../protocol/videochat.ts';
import type { UserSockets } from './user-socket.ts';

export function attachVideochat(sockets: UserSockets, videochat: VideochatService): void {
  sockets.onRequest(VideochatEndpoint.requestDirect, RequestDirectData, (caller, data) => videochat.requestDirect(caller, data.targetUser));
  sockets.onRequest(VideochatEndpoint.invite, InviteData, (caller, data) => videochat.invite(caller, data));
  sockets.onRequest(VideochatEndpoint.accept, RequestIdData, (caller, data) => videochat.accept(caller, data.videochatRequestId));
  sockets.onRequest(VideochatEndpoint.decline, RequestIdData, (caller, data) => videochat.decline(caller, data.videochatRequestId));
  sockets.onRequest(VideochatEndpoint.merge, MergeData, (caller, data) => videochat.merge(caller, data));
  sockets.onRequest(PresenceEndpoint.onlineUsers, EmptyData, (caller) => videochat.onlineUsers(caller));
}
