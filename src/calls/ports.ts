/**
 * What the call domain needs from the outside, as interfaces: the live SFU (implemented by
 * calls/sfu's registry) and the users' sockets (implemented by realtime/). The domain never
 * touches a socket or a mediasoup object itself.
 */
export interface ParticipantMedia {
  audio_on: boolean;
  video_on: boolean;
}

export interface CallMediaPort {
  /** Creates the call's router now, so "no media worker" is a 503 at initiate, not a silent failure later. */
  prepare(callId: string): Promise<void>;
  participantMedia(callId: string): Map<string, ParticipantMedia>;
  removeParticipant(callId: string, participantId: string, reason: string): void;
  endCall(callId: string, reason: string): void;
}

export interface UserNotifier {
  /** Delivers one event to every socket of each user (seed 001's envelope is added by the transport). */
  notify(userIds: readonly string[], name: string, data: Record<string, unknown>): void;
  isOnline(userId: string): boolean;
}

export interface Actor {
  userId: string | null;
  isAdmin: boolean;
}

/**
 * The domain is built before the transports exist; this relay lets the user-socket transport attach
 * itself at start-up. Events sent before that (none in practice) are dropped: no user can be connected.
 */
export class UserNotifierRelay implements UserNotifier {
  private target: UserNotifier | null = null;

  attach(target: UserNotifier): void {
    this.target = target;
  }

  notify(userIds: readonly string[], name: string, data: Record<string, unknown>): void {
    this.target?.notify(userIds, name, data);
  }

  isOnline(userId: string): boolean {
    return this.target?.isOnline(userId) ?? false;
  }
}
