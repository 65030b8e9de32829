import { sql, type Kysely } from 'kysely';

/**
 * Outbound webhooks (docs/webhooks.md):
 * - `calls.event_seq`: the call's event counter. Recording an event increments it, which locks the
 *   call row until the commit, so a call's events commit in the order of their numbers.
 * - `call_participants.in_session`: the participant's signaling is in the call's SFU session now
 *   (participant.joined was recorded and participant.left not yet).
 * - `webhook_events`: the outbox, one row per recorded event, with the exact body that is signed.
 * - `webhook_endpoints`: receivers (from the config file or the admin API).
 * - `webhook_deliveries`: one row per (endpoint, event), written with the event.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('calls').addColumn('event_seq', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('call_participants').addColumn('in_session', 'boolean', (c) => c.notNull().defaultTo(false)).execute();

  await db.schema
    .createTable('webhook_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('call_id', 'text', (c) => c.notNull().references('calls.id'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('recorded_at', 'timestamptz', (c) => c.notNull())
    .addUniqueConstraint('webhook_events_call_seq_key', ['call_id', 'seq'])
    .execute();
  await db.schema.createIndex('webhook_events_call_type_idx').on('webhook_events').columns(['call_id', 'type']).execute();

  await db.schema
    .createTable('webhook_endpoints')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('events', 'jsonb')
    .addColumn('description', 'text')
    .addColumn('enabled', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('api', 'config')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create unique index webhook_endpoints_config_url_idx on webhook_endpoints (url) where source = 'config'`.execute(db);

  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('endpoint_id', 'text', (c) => c.notNull().references('webhook_endpoints.id').onDelete('cascade'))
    .addColumn('event_id', 'text', (c) => c.notNull().references('webhook_events.id'))
    .addColumn('call_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'delivered', 'failed')`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('next_attempt_at', 'timestamptz')
    .addColumn('first_attempt_at', 'timestamptz')
    .addColumn('delivered_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('webhook_deliveries_endpoint_event_key', ['endpoint_id', 'event_id'])
    .execute();
  await sql`create index webhook_deliveries_stream_idx on webhook_deliveries (endpoint_id, call_id, seq) where status = 'pending'`.execute(db);
  await db.schema.createIndex('webhook_deliveries_endpoint_idx').on('webhook_deliveries').columns(['endpoint_id', 'id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('webhook_deliveries').execute();
  await db.schema.dropTable('webhook_endpoints').execute();
  await db.schema.dropTable('webhook_events').execute();
  await db.schema.alterTable('call_participants').dropColumn('in_session').execute();
  await db.schema.alterTable('calls').dropColumn('event_seq').execute();
}
