/**
 * What the call domain needs from the outside, as interfaces: the live SFU (implemented by
 * sfu's registry) and the users' sockets (implemented by realtime/). The domain never
 * touches a socket or a mediasoup object itself.
 */
import type { Tx } from '../db/database.ts';
import type { RecordedEvent } from '../protocol/webhooks.ts';
import { AppError } from '../shared/errors.ts';
import type { ParticipantMedia } from '../sfu/types.ts';
import type { RecordingDto } from '../recording/dto.ts';

export type { ParticipantMedia };

export interface CallMediaPort {
  /** Creates the call's router now, so "no media worker" is a 503 at initiate, not a silent failure later. */
  prepare(callId: string): Promise<void>;
  participantMedia(callId: string): Map<string, ParticipantMedia>;
  removeParticipant(callId: string, participantId: string, reason: string): void;
  endCall(callId: string, reason: string): void;
}

export interface NotifyOptions {
  /** Leaves out one socket (the one whose request caused the event: it has its answer). */
  exceptSocket?: string;
}

export interface UserNotifier {
  /** Delivers one event to every socket of each user (the user socket's envelope (docs/api.md) is added by the transport). */
  notify(userIds: readonly string[], name: string, data: Record<string, unknown>, options?: NotifyOptions): void;
  isOnline(userId: string): boolean;
  /** Users holding at least one live user socket now. */
  onlineUserIds(): string[];
}

/** Who made a user-socket request: the user, and which of its sockets (an opaque id). */
export interface SocketCaller {
  userId: string;
  socketId: string;
}

export interface Actor {
  userId: string | null;
  isAdmin: boolean;
}

/** The acting user's id; the operator's API key acts as no user, so user-only actions refuse it. */
export function requireUser(actor: Actor): string {
  if (!actor.userId) throw new AppError('forbidden', 'This needs a user (or guest) access token, not the API key');
  return actor.userId;
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

  notify(userIds: readonly string[], name: string, data: Record<string, unknown>, options?: NotifyOptions): void {
    this.target?.notify(userIds, name, data, options);
  }

  isOnline(userId: string): boolean {
    return this.target?.isOnline(userId) ?? false;
  }

  onlineUserIds(): string[] {
    return this.target?.onlineUserIds() ?? [];
  }
}

/**
 * Where call events are recorded for delivery (webhooks/, docs/webhooks.md): inside the transaction
 * of the change they report, so that an event exists exactly when its change was committed.
 */
export interface EventOutbox {
  /** `once`: only if the call has no event of this type yet. False when it had one. */
  record(tx: Tx, event: RecordedEvent, options?: { once?: boolean }): Promise<boolean>;
}

/** A call's recordings as GET /v1/calls/{id} shows them (implemented by recording/; docs/api.md, "Recording"). */
export interface CallRecordingsPort {
  forCall(callId: string): Promise<RecordingDto[]>;
}
