import type { Kysely } from 'kysely';

/**
 * Token revocation (docs/api.md "Access tokens"): access tokens of a user issued up to
 * `users.tokens_revoked_at` (to the second) are refused, also when the token cache holds them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('users').addColumn('tokens_revoked_at', 'timestamptz').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('tokens_revoked_at').execute();
}
