/**
 * The videochat handshake's endpoints on the user socket (docs/api.md, "Direct videochat (user
 * socket)"): each validated against its schema, answered in the handshake's envelope. Requests that
 * ring someone (request, invite) are limited per user: 429 beyond a burst of 10, then one a second.
 */
import type { VideochatService } from '../calls/direct/videochat-service.ts';
import { EmptyData, InviteData, MergeData, PresenceEndpoint, RequestDirectData, RequestIdData, VideochatEndpoint } from '../protocol/videochat.ts';
import { AppError } from '../shared/errors.ts';
import { TokenBucket } from '../ws/index.ts';
import type { UserSockets } from './user-socket.ts';

const RINGS_PER_SECOND = 1;
const RING_BURST = 10;

export function attachVideochat(sockets: UserSockets, videochat: VideochatService): void {
  // Per user, across its sockets. The map is bounded: clearing it only forgives some recent rings.
  const rings = new Map<string, TokenBucket>();
  const ring = (userId: string): void => {
    let bucket = rings.get(userId);
    if (!bucket) rings.set(userId, (bucket = new TokenBucket(RINGS_PER_SECOND, RING_BURST)));
    if (!bucket.take()) throw new AppError('rate_limited', `Too many calls and invitations: at most ${RING_BURST} at once, then ${RINGS_PER_SECOND} a second`);
    if (rings.size > 10_000) rings.clear();
  };
  sockets.onRequest(VideochatEndpoint.requestDirect, RequestDirectData, async (caller, data) => (ring(caller.userId), videochat.requestDirect(caller, data.targetUser)));
  sockets.onRequest(VideochatEndpoint.invite, InviteData, async (caller, data) => (ring(caller.userId), videochat.invite(caller, data)));
  sockets.onRequest(VideochatEndpoint.accept, RequestIdData, (caller, data) => videochat.accept(caller, data.videochatRequestId));
  sockets.onRequest(VideochatEndpoint.decline, RequestIdData, (caller, data) => videochat.decline(caller, data.videochatRequestId));
  sockets.onRequest(VideochatEndpoint.merge, MergeData, (caller, data) => videochat.merge(caller, data));
  sockets.onRequest(PresenceEndpoint.onlineUsers, EmptyData, (caller) => videochat.onlineUsers(caller));
}
