/**
 * Chat's queries: conversations (one per pair, created race-free), a member's list with unread
 * counts, message pages, and the message DTO. The service (chat-service.ts) decides; this reads and
 * writes.
 */
import { sql } from 'kysely';
import type { DbHandle } from '../db/database.ts';
import type { ChatMessageType } from '../db/schema.ts';
import type { ChatConversation, ChatMessage } from '../protocol/chat.ts';

export interface ConversationRow {
  id: string;
  user_a: string;
  user_b: string;
  last_message_id: string | null;
}

/** The pair as stored: smaller id first. */
export function orderedPair(one: string, other: string): [string, string] {
  return one < other ? [one, other] : [other, one];
}

/**
 * Gets or creates the conversation of each pair. Creation is `insert … on conflict do nothing` on
 * the pair's unique key, so concurrent creators wait for each other and all find the one row; the
 * creator adds both member rows in the same transaction. Returns pair key "a:b" → conversation id,
 * and the ids it created.
 */
export async function ensureConversations(
  tx: DbHandle,
  pairs: ReadonlyArray<[string, string]>,
  newId: () => string,
  now: Date,
): Promise<{ ids: Map<string, string>; created: Set<string> }> {
  const unique = [...new Map(pairs.map(([x, y]) => orderedPair(x, y)).map((p) => [`${p[0]}:${p[1]}`, p] as const)).values()];
  const created = new Set<string>();
  if (unique.length === 0) return { ids: new Map(), created };
  const inserted = await tx
    .insertInto('chat_conversations')
    .values(unique.map(([a, b]) => ({ id: newId(), user_a: a, user_b: b, last_activity_at: now, created_at: now })))
    .onConflict((oc) => oc.columns(['user_a', 'user_b']).doNothing())
    .returning(['id', 'user_a', 'user_b'])
    .execute();
  if (inserted.length > 0) {
    await tx
      .insertInto('chat_members')
      .values(inserted.flatMap((c) => [
        { conversation_id: c.id, user_id: c.user_a, peer_id: c.user_b },
        { conversation_id: c.id, user_id: c.user_b, peer_id: c.user_a },
      ]))
      .execute();
    for (const c of inserted) created.add(c.id);
  }
  const rows = await sql<{ id: string; user_a: string; user_b: string }>`
    select c.id, c.user_a, c.user_b from chat_conversations c
    join unnest(${unique.map((p) => p[0])}::text[], ${unique.map((p) => p[1])}::text[]) as p(a, b) on c.user_a = p.a and c.user_b = p.b`.execute(tx);
  return { ids: new Map(rows.rows.map((r) => [`${r.user_a}:${r.user_b}`, r.id])), created };
}

export async function findConversation(db: DbHandle, id: string): Promise<ConversationRow | undefined> {
  return db.selectFrom('chat_conversations').select(['id', 'user_a', 'user_b', 'last_message_id']).where('id', '=', id).executeTakeFirst();
}

interface ListedRow {
  id: string;
  created_at: Date;
  last_activity_at: Date;
  peer_id: string;
  display_name: string;
  avatar_url: string | null;
  lm_body: string | null;
  lm_type: ChatMessageType | null;
  lm_at: Date | null;
  unread: number;
}

/** A member's conversations, latest activity first (ties: the later message or conversation id first). */
export async function listConversations(db: DbHandle, userId: string, limit: number, offset: number, only?: string): Promise<{ rows: ChatConversation[]; total: number }> {
  const filter = only === undefined ? sql`` : sql`and c.id = ${only}`;
  const result = await sql<ListedRow>`
    select c.id, c.created_at, c.last_activity_at, m.peer_id, u.display_name, u.avatar_url,
           lm.body as lm_body, lm.type as lm_type, lm.created_at as lm_at,
           (select count(*)::int from chat_messages x
             where x.conversation_id = c.id and x.sender_id <> ${userId}
               and (m.last_read_id is null or x.id > m.last_read_id)) as unread
      from chat_members m
      join chat_conversations c on c.id = m.conversation_id
      join users u on u.id = m.peer_id
      left join chat_messages lm on lm.id = c.last_message_id
     where m.user_id = ${userId} ${filter}
     order by c.last_activity_at desc, coalesce(c.last_message_id, c.id) desc
     limit ${limit} offset ${offset}`.execute(db);
  const total =
    only === undefined
      ? Number((await db.selectFrom('chat_members').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', userId).executeTakeFirstOrThrow()).n)
      : result.rows.length;
  return {
    total,
    rows: result.rows.map((r) => ({
      id: r.id,
      participant: { id: r.peer_id, display_name: r.display_name, avatar_url: r.avatar_url },
      last_message: r.lm_body !== null && r.lm_type !== null && r.lm_at !== null ? { body: r.lm_body, type: r.lm_type, sent_at: r.lm_at.toISOString() } : null,
      unread_count: r.unread,
      created_at: r.created_at.toISOString(),
      updated_at: r.last_activity_at.toISOString(),
    })),
  };
}

interface MessageJoinRow {
  id: string;
  conversation_id: string;
  sender_id: string;
  body: string;
  type: ChatMessageType;
  created_at: Date;
  file_url: string | null;
  file_name: string | null;
  file_size: number | null;
  file_type: string | null;
}

export function messageDto(r: MessageJoinRow): ChatMessage {
  return {
    id: r.id,
    conversation_id: r.conversation_id,
    sender_id: r.sender_id,
    body: r.body,
    type: r.type,
    file_url: r.file_url,
    file_name: r.file_name,
    file_size: r.file_size === null ? null : Number(r.file_size),
    file_type: r.file_type,
    created_at: r.created_at.toISOString(),
  };
}

function messagesQuery(db: DbHandle) {
  return db
    .selectFrom('chat_messages as m')
    .leftJoin('chat_uploads as f', 'f.id', 'm.upload_id')
    .select(['m.id', 'm.conversation_id', 'm.sender_id', 'm.body', 'm.type', 'm.created_at', 'f.file_url', 'f.file_name', 'f.file_size', 'f.file_type']);
}

export async function messagesByIds(db: DbHandle, ids: readonly string[]): Promise<ChatMessage[]> {
  if (ids.length === 0) return [];
  return (await messagesQuery(db).where('m.id', 'in', ids).orderBy('m.id').execute()).map(messageDto);
}

/** Newest first; `before` (a message id) keeps pages stable while new messages arrive. */
export async function pageOfMessages(db: DbHandle, conversationId: string, limit: number, offset: number, before?: string): Promise<{ rows: ChatMessage[]; total: number }> {
  let rows = messagesQuery(db).where('m.conversation_id', '=', conversationId);
  let count = db.selectFrom('chat_messages').select((eb) => eb.fn.countAll<number>().as('n')).where('conversation_id', '=', conversationId);
  if (before !== undefined) {
    rows = rows.where('m.id', '<', before);
    count = count.where('id', '<', before);
  }
  const [page, total] = await Promise.all([rows.orderBy('m.id', 'desc').limit(limit).offset(offset).execute(), count.executeTakeFirstOrThrow()]);
  return { rows: page.map(messageDto), total: Number(total.n) };
}
