import { sql, type Kysely } from 'kysely';

/** calls.status is one of CALL_STATUSES (src/db/schema.ts); nothing else can be stored. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table calls add constraint calls_status_check check (status in ('pending', 'waiting', 'active', 'ending', 'completed', 'cancelled', 'failed', 'ended'))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table calls drop constraint calls_status_check`.execute(db);
}
