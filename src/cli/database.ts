import type { Config } from '../config/schema.ts';
import { createDatabase, type Database } from '../db/database.ts';
import { startEmbeddedPostgres } from '../db/embedded.ts';
import { migrateToLatest } from '../db/migrate.ts';
import type { Logger } from '../shared/logger.ts';

/** Opens the configured database (starting the embedded one if needed, never stopping a running server's), migrated. */
export async function withDatabase<T>(config: Readonly<Config>, logger: Logger, work: (db: Database) => Promise<T>): Promise<T> {
  let stopEmbedded: (() => Promise<void>) | null = null;
  let url = config.database.url;
  if (!url) {
    const embedded = await startEmbeddedPostgres(config.data_dir, config.database.embedded_port, logger, { stopIfReused: false });
    stopEmbedded = embedded.stop;
    url = embedded.url;
  }
  const db = createDatabase(url, 2);
  try {
    await migrateToLatest(db);
    return await work(db);
  } finally {
    await db.destroy();
    await stopEmbedded?.();
  }
}
