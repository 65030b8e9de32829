import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import pg from 'pg';
import type { DB } from './schema.ts';

export type Database = Kysely<DB>;
export type Tx = Transaction<DB>;
/** Services take a DbHandle so they work the same inside or outside a transaction. */
export type DbHandle = Kysely<DB> | Transaction<DB>;

// BIGINT (int8) comes back as a string by default; our bigints are money in minor units, well within 2^53.
pg.types.setTypeParser(20, (value: string) => Number(value));

export function createDatabase(url: string, poolSize: number): Database {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000 });
  // A broken idle connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

export type CommitHook = () => void | Promise<void>;

/**
 * Runs `work` in a transaction. Side effects that leave the process (payments, webhooks, S3)
 * are registered with `onCommit` and only run once the commit that records their intent succeeded.
 */
export async function inTransaction<T>(
  db: Database,
  work: (tx: Tx, onCommit: (hook: CommitHook) => void) => Promise<T>,
  onHookError: (error: unknown) => void = () => undefined,
): Promise<T> {
  const hooks: CommitHook[] = [];
  const result = await db.transaction().execute((tx) => work(tx, (hook) => hooks.push(hook)));
  for (const hook of hooks) {
    try {
      await hook();
    } catch (error) {
      onHookError(error);
    }
  }
  return result;
}

export async function pingDatabase(db: DbHandle): Promise<void> {
  await db.selectNoFrom((eb) => eb.val(1).as('one')).execute();
}
