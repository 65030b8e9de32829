import { sql, type Kysely } from 'kysely';

/**
 * Requests that a crash cut off (docs/api.md, "Idempotency keys"):
 * - `idempotency_keys.instance_id`: the server process that holds an in-progress key. A key held by
 *   another (dead) process is taken over at once by the retry, instead of after a lease.
 * - `calls.idempotency_key`: the key of the initiate that created the call, stored with the call in
 *   one transaction, so a retried initiate finds the call (and its one hold) instead of making another.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('idempotency_keys').addColumn('instance_id', 'text').execute();
  await db.schema.alterTable('calls').addColumn('idempotency_key', 'text').execute();
  await sql`create unique index calls_initiator_idempotency_key_idx on calls (initiator_id, idempotency_key) where idempotency_key is not null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index calls_initiator_idempotency_key_idx`.execute(db);
  await db.schema.alterTable('calls').dropColumn('idempotency_key').execute();
  await db.schema.alterTable('idempotency_keys').dropColumn('instance_id').execute();
}
