import { sql, type Kysely } from 'kysely';

/**
 * Direct videochat (docs/videochat.md):
 * - `videochat_requests`: the handshake's requests and their lifecycle (requested → accepted |
 *   declined | expired | merged); `call_id` is the call an invite is for, or the call an accepted
 *   or merged request led to.
 * - `call_shared_secrets`: the per-call secret for end-to-end encryption, handed to participants only.
 * - `call_participants.permissions`: roles a moderator changed over signaling (null: the kind's defaults).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('videochat_requests')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('direct', 'invite')`))
    .addColumn('initiator_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('target_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('call_id', 'text', (c) => c.references('calls.id'))
    .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('requested', 'accepted', 'declined', 'expired', 'merged')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('answered_at', 'timestamptz')
    .addColumn('answered_by', 'text')
    .execute();
  await sql`create index videochat_requests_open_idx on videochat_requests (target_id) where state = 'requested'`.execute(db);

  await db.schema
    .createTable('call_shared_secrets')
    .addColumn('call_id', 'text', (c) => c.primaryKey().references('calls.id').onDelete('cascade'))
    .addColumn('secret', 'text', (c) => c.notNull())
    .execute();

  await db.schema.alterTable('call_participants').addColumn('permissions', 'jsonb').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('call_participants').dropColumn('permissions').execute();
  await db.schema.dropTable('call_shared_secrets').execute();
  await db.schema.dropTable('videochat_requests').execute();
}
