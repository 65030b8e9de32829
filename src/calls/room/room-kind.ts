/** Room calls (README, "Room calls") as one kind of call: the CallService does the work. */
import type { CallService } from './call-service.ts';
import type { CallKindHandler, CallRow, EndRequest } from '../kinds.ts';
import type { Actor } from '../ports.ts';

export class RoomCallKind implements CallKindHandler {
  readonly kind = 'room' as const;

  constructor(private readonly rooms: CallService) {}

  join(actor: Actor, call: CallRow, signalingUrl: string) {
    return this.rooms.join(actor, call, signalingUrl);
  }

  newToken(actor: Actor, call: CallRow, signalingUrl: string) {
    return this.rooms.newToken(actor, call, signalingUrl);
  }

  leave(actor: Actor, call: CallRow) {
    return this.rooms.leave(actor, call);
  }

  reject(actor: Actor, call: CallRow) {
    return this.rooms.reject(actor, call);
  }

  end(actor: Actor, call: CallRow, request: EndRequest) {
    return this.rooms.end(actor, call, request.reason ?? 'ended_by_user');
  }

  describe(actor: Actor, call: CallRow) {
    return this.rooms.get(actor, call);
  }

  acceptsSignaling(call: CallRow): boolean {
    return call.status !== 'ended';
  }

  canEndCall(call: CallRow, userId: string): Promise<boolean> {
    return this.rooms.canEndCall(call, userId);
  }

  emptied(call: CallRow): Promise<void> {
    return this.rooms.endBySystem(call, 'empty');
  }

  changed(call: CallRow): Promise<void> {
    return this.rooms.announceUpdate(call.id);
  }

  participantGone(call: CallRow, participantId: string): Promise<void> {
    return this.rooms.participantGone(call.id, participantId);
  }
}
