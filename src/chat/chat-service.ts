/**
 * Direct conversations and their messages (docs/api.md, "Chat"; decisions in docs/chat.md): get or
 * create, list, send (REST and the chat socket share `send`), read state, typing, and the posting
 * rule. Every message is committed before any socket hears of it; sockets get a conversation's
 * messages in id order (KeyedLock).
 */
import { sql } from 'kysely';
import { monotonicFactory } from 'ulid';
import type { Database, DbHandle } from '../db/database.ts';
import type { ChatUploadRow } from '../db/schema.ts';
import type { ChatConversation, ChatMessage } from '../protocol/chat.ts';
import type { Clock } from '../shared/clock.ts';
import { AppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { KeyedLock } from './keyed-lock.ts';
import { mayAlwaysPost, notParticipant, type ChatActor, type ChatSink, type LiveCalls } from './ports.ts';
import { ensureConversations, findConversation, listConversations, messagesByIds, pageOfMessages, type ConversationRow } from './store.ts';
import type { DeclaredFile, UploadService } from './uploads.ts';

export interface SendInput {
  body: string;
  type?: 'text' | 'file';
  file_url?: string;
  file_name?: string;
  file_size?: number;
  file_type?: string;
  /** The client's id for its optimistic copy: echoed to the sender's sockets; a repeat finds the stored message. */
  client_id?: string;
}

export interface ChatServiceDeps {
  db: Database;
  clock: Clock;
  logger: Logger;
  sink: ChatSink;
  liveCalls: LiveCalls;
  uploads: UploadService;
  /** chat.typing_interval_ms */
  typingIntervalMs: number;
}

export class ChatService {
  readonly #deps: ChatServiceDeps;
  /** Per conversation: held from choosing a message id to handing the message to the sockets. */
  readonly lock = new KeyedLock();
  /** Chat ids are monotonic within the process, so messages stored in lock order sort in that order. */
  readonly #ulid = monotonicFactory();
  /** "<user>:<conversation>" → when its last typing frame was relayed (performance.now()). */
  readonly #typingAt = new Map<string, number>();

  constructor(deps: ChatServiceDeps) {
    this.#deps = deps;
  }

  newId(): string {
    return this.#ulid(Date.now());
  }

  get sink(): ChatSink {
    return this.#deps.sink;
  }

  async listConversations(actor: ChatActor, page: number, perPage: number): Promise<{ rows: ChatConversation[]; total: number }> {
    return listConversations(this.#deps.db, actor.userId, perPage, (page - 1) * perPage);
  }

  /** The one direct conversation between the actor and `userId`, created on first use. */
  async openConversation(actor: ChatActor, userId: string): Promise<{ conversation: ChatConversation; created: boolean }> {
    if (userId === actor.userId) throw new AppError('validation_failed', 'A conversation needs another user', { field: 'user_id' });
    const { db, clock } = this.#deps;
    const other = await db.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst();
    if (!other) throw new AppError('not_found', `User ${userId} not found`);
    const { ids, created } = await db.transaction().execute((tx) => ensureConversations(tx, [[actor.userId, userId]], () => this.newId(), clock.now()));
    const id = [...ids.values()][0]!;
    const { rows } = await listConversations(db, actor.userId, 1, 0, id);
    return { conversation: rows[0]!, created: created.has(id) };
  }

  async listMessages(actor: ChatActor, conversationId: string, query: { page: number; perPage: number; before?: string }): Promise<{ rows: ChatMessage[]; total: number }> {
    await this.#member(actor, conversationId);
    return pageOfMessages(this.#deps.db, conversationId, query.perPage, (query.page - 1) * query.perPage, query.before);
  }

  /** Stores one message (once, also for a repeated client_id) and delivers it to every socket of both participants. */
  async send(actor: ChatActor, conversationId: string, input: SendInput): Promise<ChatMessage> {
    const conversation = await this.#member(actor, conversationId);
    const peerId = peerOf(conversation, actor.userId);
    await this.#assertMayPost(actor, peerId);
    const type = input.type ?? 'text';
    if (type === 'text' && input.body.trim() === '') throw new AppError('validation_failed', 'A text message needs a body', { field: 'body' });
    if (type === 'text' && (input.file_url ?? input.file_name ?? input.file_size ?? input.file_type) !== undefined) {
      throw new AppError('validation_failed', 'file_* fields belong to messages of type "file"', { field: 'type' });
    }
    let upload: ChatUploadRow | null = null;
    if (type === 'file') {
      if (input.file_url === undefined) throw new AppError('validation_failed', 'A file message needs file_url (from POST /v1/chat/uploads)', { field: 'file_url' });
      const declared: DeclaredFile = { file_url: input.file_url, ...pick(input) };
      upload = await this.#deps.uploads.verifiedForSend(actor.userId, declared);
    }
    const { db, clock } = this.#deps;
    return this.lock.run([conversationId], async () => {
      const id = this.newId();
      const now = clock.now();
      // One statement, so one round trip and atomic without a transaction: the message, the
      // conversation's activity, and the sender's read state (sending marks it read for the sender).
      const inserted = await sql<{ id: string }>`
        with message as (
          insert into chat_messages (id, conversation_id, sender_id, type, body, upload_id, client_id, created_at)
          values (${id}, ${conversationId}, ${actor.userId}, ${type}, ${input.body}, ${upload?.id ?? null}, ${input.client_id ?? null}, ${now})
          on conflict (conversation_id, sender_id, client_id) where client_id is not null do nothing
          returning id),
        activity as (
          update chat_conversations set last_message_id = message.id, last_activity_at = ${now} from message where chat_conversations.id = ${conversationId}),
        reader as (
          update chat_members set last_read_id = message.id from message where chat_members.conversation_id = ${conversationId} and chat_members.user_id = ${actor.userId})
        select id from message`.execute(db);
      if (inserted.rows.length === 0) {
        // The same client_id again: the message stored the first time, echoed to the sender only.
        const existing = await db.selectFrom('chat_messages').select('id').where('conversation_id', '=', conversationId).where('sender_id', '=', actor.userId).where('client_id', '=', input.client_id!).executeTakeFirstOrThrow();
        const [message] = await messagesByIds(db, [existing.id]);
        this.#announce(message!, actor.userId, peerId, input.client_id, true);
        return message!;
      }
      const message: ChatMessage = {
        id,
        conversation_id: conversationId,
        sender_id: actor.userId,
        body: input.body,
        type,
        file_url: upload?.file_url ?? null,
        file_name: upload?.file_name ?? null,
        file_size: upload ? Number(upload.file_size) : null,
        file_type: upload?.file_type ?? null,
        created_at: now.toISOString(),
      };
      this.#announce(message, actor.userId, peerId, input.client_id, false);
      return message;
    });
  }

  /** Everything in the conversation is read by the actor; both participants' sockets get read_receipt. */
  async markRead(actor: ChatActor, conversationId: string): Promise<void> {
    const conversation = await this.#member(actor, conversationId);
    await this.#deps.db
      .updateTable('chat_members')
      .set((eb) => ({ last_read_id: eb.selectFrom('chat_conversations').select('last_message_id').where('id', '=', conversationId) }))
      .where('conversation_id', '=', conversationId)
      .where('user_id', '=', actor.userId)
      .execute();
    this.#deps.sink.deliver([actor.userId, peerOf(conversation, actor.userId)], { type: 'read_receipt', conversation_id: conversationId, user_id: actor.userId });
  }

  /** Relays a typing indicator to the other participant's sockets, at most once per typing interval; never stored. */
  async typing(actor: ChatActor, conversationId: string): Promise<void> {
    const conversation = await this.#member(actor, conversationId);
    const peerId = peerOf(conversation, actor.userId);
    await this.#assertMayPost(actor, peerId);
    const key = `${actor.userId}:${conversationId}`;
    const now = performance.now();
    const last = this.#typingAt.get(key);
    if (last !== undefined && now - last < this.#deps.typingIntervalMs) return;
    if (this.#typingAt.size > 50_000) this.#forgetOldTyping(now);
    this.#typingAt.set(key, now);
    this.#deps.sink.deliver([peerId], { type: 'typing', conversation_id: conversationId, user_id: actor.userId });
  }

  /**
   * Hosts and admins may always post; anyone else only to a host with whom they have a call that is
   * waiting or active (docs/chat.md, "Who may post").
   */
  async mayPost(actor: ChatActor, peerId: string, db: DbHandle = this.#deps.db): Promise<boolean> {
    if (mayAlwaysPost(actor.role)) return true;
    const peer = await db.selectFrom('users').select('role').where('id', '=', peerId).executeTakeFirst();
    if (peer?.role !== 'host') return false;
    return this.#deps.liveCalls.hasLiveCall(actor.userId, peerId);
  }

  async #assertMayPost(actor: ChatActor, peerId: string): Promise<void> {
    if (!(await this.mayPost(actor, peerId))) throw new AppError('forbidden', 'You can write to a host only while you have a call with them waiting or active');
  }

  /** The conversation, if the actor is in it: 404 when it does not exist, 403 when it is someone else's. */
  async #member(actor: ChatActor, conversationId: string): Promise<ConversationRow> {
    const conversation = await findConversation(this.#deps.db, conversationId);
    if (!conversation) throw new AppError('not_found', `Conversation ${conversationId} not found`);
    if (conversation.user_a !== actor.userId && conversation.user_b !== actor.userId) throw notParticipant();
    return conversation;
  }

  /** new_message to both participants; the sender's sockets get the client_id too. A repeat is echoed to the sender only. */
  #announce(message: ChatMessage, senderId: string, peerId: string, clientId: string | undefined, repeated: boolean): void {
    const { sink } = this.#deps;
    if (clientId === undefined) {
      sink.deliver([senderId, peerId], { type: 'new_message', message });
      return;
    }
    if (!repeated) sink.deliver([peerId], { type: 'new_message', message });
    sink.deliver([senderId], { type: 'new_message', message, client_id: clientId });
  }

  #forgetOldTyping(now: number): void {
    for (const [key, at] of this.#typingAt) if (now - at >= this.#deps.typingIntervalMs) this.#typingAt.delete(key);
  }
}

export function peerOf(conversation: Pick<ConversationRow, 'user_a' | 'user_b'>, userId: string): string {
  return conversation.user_a === userId ? conversation.user_b : conversation.user_a;
}

function pick(input: SendInput): Omit<DeclaredFile, 'file_url'> {
  return {
    ...(input.file_name !== undefined ? { file_name: input.file_name } : {}),
    ...(input.file_size !== undefined ? { file_size: input.file_size } : {}),
    ...(input.file_type !== undefined ? { file_type: input.file_type } : {}),
  };
}
