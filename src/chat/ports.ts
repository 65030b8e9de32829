/**
 * What chat needs from the outside, as interfaces (docs/architecture.md: a domain module never
 * touches a socket): the chat sockets (a transport implements ChatSink) and the calls that let a
 * user write to a host (calls/paid implements LiveCalls).
 */
import type { UserRole } from '../db/schema.ts';
import type { ChatServerFrame } from '../protocol/chat.ts';
import { AppError } from '../shared/errors.ts';

/** Delivers chat frames to every open chat socket of each user. */
export interface ChatSink {
  deliver(userIds: readonly string[], frame: ChatServerFrame): void;
}

/** The chat transport is built after the domain; it attaches itself here at start-up. Frames before that reach no one (no socket exists yet). */
export class ChatSinkRelay implements ChatSink {
  #target: ChatSink | null = null;

  attach(target: ChatSink): void {
    this.#target = target;
  }

  deliver(userIds: readonly string[], frame: ChatServerFrame): void {
    this.#target?.deliver(userIds, frame);
  }
}

/** Whether `userId` has a call with `hostId` that is `waiting` or `active` (the posting rule, docs/chat.md). */
export interface LiveCalls {
  hasLiveCall(userId: string, hostId: string): Promise<boolean>;
}

/** Who acts in chat: always a user (the operator's API key has no conversations). */
export interface ChatActor {
  userId: string;
  role: UserRole;
}

export function mayAlwaysPost(role: UserRole): boolean {
  return role === 'host' || role === 'admin';
}

export function notParticipant(): AppError {
  return new AppError('forbidden', 'You are not a participant in this conversation');
}
