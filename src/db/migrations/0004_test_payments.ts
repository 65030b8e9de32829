import { sql, type Kysely } from 'kysely';

/**
 * The state of the in-process `test` payment provider (src/billing/providers/test.ts), kept like
 * Stripe keeps it: outside the process, so a hold placed before a restart can be captured after it
 * and an idempotency key answers the same after a restart. Only the test provider reads or writes
 * these tables; with `payments.provider: stripe` they stay empty.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // Hold ids are pi_test_<n>, n from this sequence: unique across restarts.
  await sql`create sequence test_payment_hold_seq`.execute(db);

  await db.schema
    .createTable('test_payment_holds')
    .addColumn('hold_id', 'text', (c) => c.primaryKey())
    // The provider knows our call only as metadata: no foreign key, as Stripe has none.
    .addColumn('call_id', 'text', (c) => c.notNull())
    .addColumn('window', 'integer', (c) => c.notNull())
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().check(sql`amount_minor >= 1`))
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('payment_method_id', 'text', (c) => c.notNull())
    // {accountId, applicationFeeMinor} of a destination charge, or null.
    .addColumn('destination', 'jsonb')
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('held', 'captured', 'released', 'failed')`))
    .addColumn('amount_captured_minor', 'bigint', (c) => c.notNull().defaultTo(0).check(sql`amount_captured_minor >= 0 and amount_captured_minor <= amount_minor`))
    .addColumn('released_by', 'text', (c) => c.check(sql`released_by in ('caller', 'provider')`))
    // The provider's clock (a ScaledClock or a test's ManualClock), not the database's.
    .addColumn('placed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('settled_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('test_payment_holds_call_idx').on('test_payment_holds').column('call_id').execute();

  // Stripe-like idempotency: the first answer to a key (a value or an error) is replayed for it.
  await db.schema
    .createTable('test_payment_replies')
    .addColumn('idempotency_key', 'text', (c) => c.primaryKey())
    // What was asked with the key: the same key with other arguments is an idempotency_conflict.
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    // {value} or {error: {kind, code, message, decline_code, details}}; null only inside the
    // transaction that claimed the key, so a committed row always has its answer.
    .addColumn('outcome', 'jsonb')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('test_payment_replies').execute();
  await db.schema.dropTable('test_payment_holds').execute();
  await sql`drop sequence test_payment_hold_seq`.execute(db);
}
