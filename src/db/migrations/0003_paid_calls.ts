import { sql, type Kysely } from 'kysely';

/** Paid link calls (README, "Paid link calls"; docs/api.md): links, host availability, and each paid call's billing snapshot. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('links')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('short_code', 'text', (c) => c.notNull().unique())
    .addColumn('host_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('rate_minor', 'bigint', (c) => c.notNull().check(sql`rate_minor >= 0`))
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('window_size_minutes', 'integer', (c) => c.notNull().check(sql`window_size_minutes between 1 and 60`))
    .addColumn('max_uses', 'integer', (c) => c.check(sql`max_uses is null or max_uses >= 1`))
    // Uses reserved by calls that were not released (a refused first hold gives its use back).
    .addColumn('uses', 'integer', (c) => c.notNull().defaultTo(0).check(sql`uses >= 0 and (max_uses is null or uses <= max_uses)`))
    .addColumn('expires_at', 'timestamptz')
    .addColumn('deleted_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('links_host_idx').on('links').columns(['host_id', 'created_at']).execute();

  await db.schema
    .alterTable('users')
    .addColumn('accepting_calls', 'boolean', (c) => c.notNull().defaultTo(true))
    .execute();

  await db.schema
    .createTable('call_billing')
    .addColumn('call_id', 'text', (c) => c.primaryKey().references('calls.id'))
    .addColumn('link_id', 'text', (c) => c.notNull().references('links.id'))
    .addColumn('host_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('guest_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('guest_name', 'text')
    .addColumn('state', 'text', (c) => c.notNull())
    // The machine's BillingSnapshot (src/billing/model.ts); `state` duplicates snapshot.state for queries.
    .addColumn('snapshot', 'jsonb', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
    // Last instant the SFU saw both sides' media connected (a heartbeat): after a crash the meter stops here.
    .addColumn('media_seen_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('call_billing_state_idx').on('call_billing').column('state').execute();
  await db.schema.createIndex('call_billing_link_idx').on('call_billing').column('link_id').execute();

  // The payment outbox and ledger: one row per provider operation, keyed by its deterministic
  // idempotency key, written in the transaction that decided it and marked done once the provider answered.
  await db.schema
    .createTable('payment_ops')
    .addColumn('idempotency_key', 'text', (c) => c.primaryKey())
    .addColumn('call_id', 'text', (c) => c.notNull().references('calls.id'))
    .addColumn('op', 'text', (c) => c.notNull().check(sql`op in ('hold', 'capture', 'release')`))
    .addColumn('window', 'integer', (c) => c.notNull())
    .addColumn('hold_id', 'text')
    .addColumn('amount_minor', 'bigint', (c) => c.notNull())
    // The provider request, exactly as it must be repeated after a crash.
    .addColumn('request', 'jsonb', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'done', 'failed')`))
    .addColumn('result', 'jsonb')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('done_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('payment_ops_call_idx').on('payment_ops').column('call_id').execute();
  await db.schema.createIndex('payment_ops_pending_idx').on('payment_ops').column('status').where(sql.ref('status'), '=', 'pending').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('payment_ops').execute();
  await db.schema.dropTable('call_billing').execute();
  await db.schema.alterTable('users').dropColumn('accepting_calls').execute();
  await db.schema.dropTable('links').execute();
}
