import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import tap, { type Test } from 'tap';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { silentLogger } from '../../src/shared/logger.ts';

let adminUrlPromise: Promise<string> | null = null;

/**
 * The admin URL of the suite's PostgreSQL: scripts/test.mjs provides one (embedded, or DATABASE_URL).
 * A test file run on its own (npx tap file) starts a private embedded PostgreSQL instead.
 */
function adminUrl(): Promise<string> {
  const fromRunner = process.env.CALLPLANE_TEST_DATABASE_URL;
  if (fromRunner) return Promise.resolve(fromRunner);
  adminUrlPromise ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'callplane-pg-'));
    const port = 20000 + (process.pid % 10000);
    const embedded = await startEmbeddedPostgres(dir, port, silentLogger());
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    tap.teardown(() => embedded.stop()); // the root test: the cluster outlives every subtest of the file
    return embedded.url;
  })();
  return adminUrlPromise;
}

/** A fresh, empty database for one test file (or test), dropped at teardown. */
export async function createTestDatabase(t: Test): Promise<string> {
  const admin = await adminUrl();
  const name = `t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  t.teardown(async () => {
    const dropper = new pg.Client({ connectionString: admin });
    await dropper.connect();
    await dropper.query(`drop database if exists ${name} with (force)`);
    await dropper.end();
  });
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}
