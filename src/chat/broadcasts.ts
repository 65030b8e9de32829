/**
 * Broadcasts (docs/chat.md, "Broadcasts"): a host's message to every follower, delivered by a
 * durable job. The request stores the broadcast, its recipients (the followers at that moment) and
 * the job in one transaction and answers at once. The job delivers in batches: each batch stores
 * one normal message per recipient's conversation and marks those recipients delivered in one
 * transaction, then pushes the messages. A retried or restarted job resumes at the first recipient
 * not delivered, and the unique (broadcast_id, conversation_id) of chat_messages keeps any batch it
 * repeats from storing a second copy.
 */
import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import { taskKind, type JobQueue } from '../jobs/index.ts';
import type { Broadcast } from '../protocol/chat.ts';
import type { Clock } from '../shared/clock.ts';
import { AppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { ChatService } from './chat-service.ts';
import { mayAlwaysPost, type ChatActor } from './ports.ts';
import { ensureConversations, messagesByIds, orderedPair } from './store.ts';

export const CHAT_BROADCAST = taskKind<{ broadcastId: string }>('chat_broadcast');

export interface BroadcastDeps {
  db: Database;
  clock: Clock;
  logger: Logger;
  jobs: JobQueue;
  chat: ChatService;
  /** chat.broadcast_batch_size */
  batchSize: number;
}

export class BroadcastService {
  constructor(private readonly deps: BroadcastDeps) {}

  async create(actor: ChatActor, body: string): Promise<Broadcast> {
    if (!mayAlwaysPost(actor.role)) throw new AppError('forbidden', 'Only hosts and admins can broadcast');
    if (body.trim() === '') throw new AppError('validation_failed', 'A broadcast needs a body', { field: 'body' });
    const { db, clock, jobs, chat } = this.deps;
    const id = chat.newId();
    const now = clock.now();
    const recipients = await db.transaction().execute(async (tx) => {
      await tx.insertInto('chat_broadcasts').values({ id, sender_id: actor.userId, body, recipients: 0, created_at: now }).execute();
      const added = await sql`insert into chat_broadcast_recipients (broadcast_id, user_id)
        select ${id}, user_id from chat_follows where host_id = ${actor.userId}`.execute(tx);
      const count = Number(added.numAffectedRows ?? 0);
      await tx.updateTable('chat_broadcasts').set({ recipients: count, ...(count === 0 ? { completed_at: now } : {}) }).where('id', '=', id).execute();
      if (count > 0) await jobs.add(tx, CHAT_BROADCAST, { broadcastId: id }, { jobKey: `chat_broadcast:${id}` });
      return count;
    });
    return { id, body, recipients, created_at: now.toISOString() };
  }

  /** The job: delivers batch after batch until no recipient is left. Safe to run again at any point. */
  async deliver(broadcastId: string): Promise<void> {
    const { db, clock, logger } = this.deps;
    const broadcast = await db.selectFrom('chat_broadcasts').selectAll().where('id', '=', broadcastId).executeTakeFirst();
    if (!broadcast) {
      logger.warn({ broadcastId }, 'chat broadcast job for an unknown broadcast; nothing to do');
      return;
    }
    let delivered = 0;
    for (;;) {
      const pending = await db
        .selectFrom('chat_broadcast_recipients')
        .select('user_id')
        .where('broadcast_id', '=', broadcastId)
        .where('delivered_at', 'is', null)
        .orderBy('user_id')
        .limit(this.deps.batchSize)
        .execute();
      if (pending.length === 0) break;
      delivered += await this.#batch(broadcast, pending.map((r) => r.user_id));
    }
    await db.updateTable('chat_broadcasts').set({ completed_at: clock.now() }).where('id', '=', broadcastId).where('completed_at', 'is', null).execute();
    logger.info({ broadcastId, recipients: broadcast.recipients, deliveredNow: delivered }, 'chat broadcast delivered');
  }

  /** One batch: conversations ensured, then, under their locks, messages stored and recipients marked in one transaction. */
  async #batch(broadcast: { id: string; sender_id: string; body: string }, userIds: string[]): Promise<number> {
    const { db, clock, chat } = this.deps;
    const senderId = broadcast.sender_id;
    const { ids } = await db.transaction().execute((tx) => ensureConversations(tx, userIds.map((u) => [senderId, u]), () => chat.newId(), clock.now()));
    const conversationOf = (userId: string): string => {
      const [a, b] = orderedPair(senderId, userId);
      return ids.get(`${a}:${b}`)!;
    };
    const targets = userIds.map((userId) => ({ userId, conversationId: conversationOf(userId) }));
    return chat.lock.run(
      targets.map((t) => t.conversationId),
      async () => {
        const now = clock.now();
        const stored = await db.transaction().execute(async (tx) => {
          const rows = targets.map((t) => ({ id: chat.newId(), conversation_id: t.conversationId, sender_id: senderId, type: 'text' as const, body: broadcast.body, broadcast_id: broadcast.id, created_at: now }));
          const inserted = await tx
            .insertInto('chat_messages')
            .values(rows)
            .onConflict((oc) => oc.columns(['broadcast_id', 'conversation_id']).where('broadcast_id', 'is not', null).doNothing())
            .returning(['id', 'conversation_id'])
            .execute();
          if (inserted.length > 0) {
            const conversations = inserted.map((m) => m.conversation_id);
            const messages = inserted.map((m) => m.id);
            await sql`update chat_conversations c set last_message_id = v.mid, last_activity_at = ${now}
              from unnest(${conversations}::text[], ${messages}::text[]) as v(cid, mid) where c.id = v.cid`.execute(tx);
            // Sending marks the conversation read for its sender.
            await sql`update chat_members m set last_read_id = v.mid
              from unnest(${conversations}::text[], ${messages}::text[]) as v(cid, mid) where m.conversation_id = v.cid and m.user_id = ${senderId}`.execute(tx);
          }
          await tx.updateTable('chat_broadcast_recipients').set({ delivered_at: now }).where('broadcast_id', '=', broadcast.id).where('user_id', 'in', userIds).execute();
          return inserted;
        });
        const peerOf = new Map(targets.map((t) => [t.conversationId, t.userId]));
        for (const message of await messagesByIds(db, stored.map((m) => m.id))) {
          chat.sink.deliver([senderId, peerOf.get(message.conversation_id)!], { type: 'new_message', message });
        }
        return stored.length;
      },
    );
  }
}
