import { sql, type Kysely } from 'kysely';

/**
 * Chat (docs/chat.md): one direct conversation per pair of users, its members' read state, messages,
 * uploads, follows, and broadcasts with the recipients fixed when the broadcast was accepted.
 * Numbered 0008: 0007 belongs to another branch; kysely runs migrations in name order.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('chat_conversations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    // The pair, smaller id first: one conversation per pair, whoever creates it, however concurrently.
    .addColumn('user_a', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('user_b', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('last_message_id', 'text')
    .addColumn('last_activity_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('chat_conversations_pair_ordered', sql`user_a < user_b`)
    .addUniqueConstraint('chat_conversations_pair_key', ['user_a', 'user_b'])
    .execute();
  await db.schema.createIndex('chat_conversations_user_b_idx').on('chat_conversations').column('user_b').execute();

  // One row per participant: what they have read (messages are ULID-ordered, so "up to this id").
  await db.schema
    .createTable('chat_members')
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('chat_conversations.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('peer_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('last_read_id', 'text')
    .addPrimaryKeyConstraint('chat_members_pkey', ['conversation_id', 'user_id'])
    .execute();
  await db.schema.createIndex('chat_members_user_idx').on('chat_members').columns(['user_id', 'conversation_id']).execute();

  await db.schema
    .createTable('chat_uploads')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('storage_key', 'text', (c) => c.notNull().unique())
    .addColumn('file_url', 'text', (c) => c.notNull())
    .addColumn('file_name', 'text', (c) => c.notNull())
    .addColumn('file_size', 'bigint', (c) => c.notNull().check(sql`file_size >= 0`))
    .addColumn('file_type', 'text', (c) => c.notNull())
    // Set once the object was found in storage with the declared size and type.
    .addColumn('verified_at', 'timestamptz')
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('chat_broadcasts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('sender_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('recipients', 'integer', (c) => c.notNull())
    .addColumn('completed_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('chat_messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('chat_conversations.id').onDelete('cascade'))
    .addColumn('sender_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('type', 'text', (c) => c.notNull().check(sql`type in ('text', 'file')`))
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('upload_id', 'text', (c) => c.references('chat_uploads.id'))
    .addColumn('client_id', 'text')
    .addColumn('broadcast_id', 'text', (c) => c.references('chat_broadcasts.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('chat_messages_file_has_upload', sql`(type = 'file') = (upload_id is not null)`)
    .execute();
  await db.schema.createIndex('chat_messages_conversation_idx').on('chat_messages').columns(['conversation_id', 'id']).execute();
  await db.schema.createIndex('chat_messages_upload_idx').on('chat_messages').column('upload_id').where(sql.ref('upload_id'), 'is not', null).execute();
  // A retried send (same client_id) and a retried or restarted broadcast job find their message instead of adding one.
  await db.schema
    .createIndex('chat_messages_client_key')
    .unique()
    .on('chat_messages')
    .columns(['conversation_id', 'sender_id', 'client_id'])
    .where(sql.ref('client_id'), 'is not', null)
    .execute();
  await db.schema
    .createIndex('chat_messages_broadcast_key')
    .unique()
    .on('chat_messages')
    .columns(['broadcast_id', 'conversation_id'])
    .where(sql.ref('broadcast_id'), 'is not', null)
    .execute();

  await db.schema
    .createTable('chat_follows')
    .addColumn('host_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('chat_follows_pkey', ['host_id', 'user_id'])
    .execute();

  // The followers at the moment of the broadcast; delivered_at is set in the transaction that stored the message.
  await db.schema
    .createTable('chat_broadcast_recipients')
    .addColumn('broadcast_id', 'text', (c) => c.notNull().references('chat_broadcasts.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('delivered_at', 'timestamptz')
    .addPrimaryKeyConstraint('chat_broadcast_recipients_pkey', ['broadcast_id', 'user_id'])
    .execute();
  await db.schema
    .createIndex('chat_broadcast_recipients_pending_idx')
    .on('chat_broadcast_recipients')
    .columns(['broadcast_id', 'user_id'])
    .where(sql.ref('delivered_at'), 'is', null)
    .execute();

  // The posting rule asks for a guest's live calls with one host on every message.
  await db.schema.createIndex('call_billing_host_guest_idx').on('call_billing').columns(['host_id', 'guest_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('call_billing_host_guest_idx').execute();
  for (const table of ['chat_broadcast_recipients', 'chat_follows', 'chat_messages', 'chat_broadcasts', 'chat_uploads', 'chat_members', 'chat_conversations']) {
    await db.schema.dropTable(table).execute();
  }
}
