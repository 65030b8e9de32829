import { Migrator, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';
import type { Database } from './database.ts';
import * as m0001 from './migrations/0001_identity.ts';
import * as m0002 from './migrations/0002_calls.ts';
import * as m0003 from './migrations/0003_paid_calls.ts';
import * as m0004 from './migrations/0004_test_payments.ts';
import * as m0005 from './migrations/0005_crash_safe_requests.ts';
import * as m0006 from './migrations/0006_call_status.ts';
import * as m0007 from './migrations/0007_webhooks.ts';
import * as m0008 from './migrations/0008_chat.ts';
import * as m0009 from './migrations/0009_videochat.ts';
import * as m0010 from './migrations/0010_recordings.ts';
import * as m0011 from './migrations/0011_token_revocation.ts';

/** Migrations are listed in code (not read from disk) so they work the same from source, a bundle or a container. */
const migrations: Record<string, Migration> = {
  '0001_identity': m0001,
  '0002_calls': m0002,
  '0003_paid_calls': m0003,
  '0004_test_payments': m0004,
  '0005_crash_safe_requests': m0005,
  '0006_call_status': m0006,
  '0007_webhooks': m0007,
  '0008_chat': m0008,
  '0009_videochat': m0009,
  '0010_recordings': m0010,
  '0011_token_revocation': m0011,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrateToLatest(db: Database): Promise<MigrationResultSet> {
  const migrator = new Migrator({ db, provider });
  const result = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${String(result.error)}`);
  }
  return result;
}

export function latestMigrationName(): string {
  return Object.keys(migrations).sort().at(-1)!;
}
