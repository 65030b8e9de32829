#!/usr/bin/env node
// One idempotent setup for `npm start` and `npm test` (and `.ci/run` through `npm test`).
// Plain Node ESM with no npm dependencies: it runs before `npm ci`.
//
//   a. system packages (apt, when root; otherwise prints the command to run)
//   b. the mediasoup worker, built once from the npm package's sources and cached outside
//      the checkout: ${XDG_CACHE_HOME:-~/.cache}/callplane/mediasoup-worker-<version>-<platform>-<arch>/
//   c. `npm ci`, only when package-lock.json or the Node version changed since the last success
//   d. the worker binary copied to mediasoup's default lookup path
//   e. verification: mediasoup starts a worker, uWebSockets.js's native binary loads
//
// Environment:
//   CALLPLANE_SKIP_APT=1     skip step a (Docker installs packages in its own layer)
//   MEDIASOUP_WORKER_BIN     use this worker binary instead of the cached/built one
//   XDG_CACHE_HOME           cache root (default ~/.cache)
import { spawnSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants as fsConstants,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { APT_PACKAGES } from './lib/apt-packages.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

class SetupError extends Error {}

function fail(message) {
  throw new SetupError(message);
}

/** Runs one step, printing `setup: <name> ok (skipped|done in Xs)`. fn returns true when it did work. */
async function step(name, fn) {
  const started = process.hrtime.bigint();
  let didWork;
  try {
    didWork = await fn();
  } catch (error) {
    const message = error instanceof SetupError ? error.message : (error?.stack ?? String(error));
    console.error(`setup: ${name} FAILED: ${message}`);
    process.exit(1);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`setup: ${name} ok (${didWork ? `done in ${seconds.toFixed(1)}s` : 'skipped'})`);
}

/** Runs a command with inherited stdout/stderr (no stdin: CI has none). Resolves on exit 0. */
function run(command, args, options = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
    const forward = (signal) => child.kill(signal);
    process.on('SIGINT', forward).on('SIGTERM', forward);
    child.on('error', (error) => reject(new SetupError(`cannot run ${command}: ${error.message}`)));
    child.on('close', (code, signal) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      if (code === 0) resolvePromise();
      else reject(new SetupError(`\`${[command, ...args].join(' ')}\` failed (${signal ? `signal ${signal}` : `exit code ${code}`})`));
    });
  });
}

function sha256(...parts) {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

// ---------------------------------------------------------------------------------------------
// 0. Node itself: uWebSockets.js ships binaries for Node ABIs up to Node 20 only.

const nodeMajor = Number(process.versions.node.split('.')[0]);
if (nodeMajor !== 20) {
  console.error(`setup: node FAILED: callplane needs Node.js 20 (found ${process.version}); uWebSockets.js has no native build for it`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// a. System packages

function missingAptPackages() {
  const result = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\\n', ...APT_PACKAGES], { encoding: 'utf8' });
  if (result.error) return null; // not a dpkg system
  const installed = new Set();
  for (const line of result.stdout.split('\n')) {
    const [name, ...status] = line.trim().split(/\s+/);
    if (name && status.join(' ') === 'install ok installed') installed.add(name.replace(/:.*$/, ''));
  }
  return APT_PACKAGES.filter((name) => !installed.has(name));
}

await step('system packages', async () => {
  if (process.env.CALLPLANE_SKIP_APT === '1') return false;
  const missing = missingAptPackages();
  if (missing === null) {
    console.warn(`setup: dpkg-query not found; make sure these (Debian names) are installed: ${APT_PACKAGES.join(' ')}`);
    return false;
  }
  if (missing.length === 0) return false;
  const install = ['install', '-y', '--no-install-recommends', ...missing];
  if (process.getuid?.() !== 0) {
    fail(`missing system packages: ${missing.join(' ')}\n  run: sudo apt-get update && sudo apt-get ${install.join(' ')}\n  then run this command again`);
  }
  console.log(`setup: installing system packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update'], { env });
  await run('apt-get', install, { env });
  const still = missingAptPackages();
  if (still?.length) fail(`still missing after apt-get install: ${still.join(' ')}`);
  return true;
});

// ---------------------------------------------------------------------------------------------
// b. The mediasoup worker

const packageJson = readJson(join(root, 'package.json'));
const mediasoupVersion = String(packageJson.dependencies?.mediasoup ?? '').replace(/^=/, '');
if (!/^\d+\.\d+\.\d+$/.test(mediasoupVersion)) {
  console.error(`setup: mediasoup worker FAILED: package.json must pin dependencies.mediasoup to an exact version (found "${mediasoupVersion}")`);
  process.exit(1);
}
const cacheRoot =
  process.env.XDG_CACHE_HOME && isAbsolute(process.env.XDG_CACHE_HOME) ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache');
const cacheDir = join(cacheRoot, 'callplane', `mediasoup-worker-${mediasoupVersion}-${process.platform}-${process.arch}`);
const cachedWorker = join(cacheDir, 'mediasoup-worker');
let workerBin = cachedWorker;

function isExecutable(path) {
  try {
    accessSync(path, fsConstants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A mkdir lock next to the cache dir, so two setups on one machine never build at once.
 * The owner's pid is written inside; a lock whose owner is gone is taken over.
 */
async function withBuildLock(fn) {
  const lockDir = `${cacheDir}.lock`;
  const pidFile = join(lockDir, 'pid');
  mkdirSync(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + 30 * 60_000;
  let announced = false;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(pidFile, String(process.pid));
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(pidFile, 'utf8'));
    } catch {
      /* the owner has not written its pid yet, or just released the lock */
    }
    const ageMs = (() => {
      try {
        return Date.now() - statSync(lockDir).mtimeMs;
      } catch {
        return 0;
      }
    })();
    const ownerGone = Number.isInteger(owner) && owner > 0 && !processAlive(owner);
    // No pid after a minute: the owner died while taking the lock. Older than 20 min: a pid
    // reused after a reboot (a build takes 3-4 min).
    if (ownerGone || (Number.isNaN(owner) && ageMs > 60_000) || ageMs > 20 * 60_000) {
      console.log(`setup: removing stale worker build lock ${lockDir}`);
      rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) fail(`timed out waiting for the worker build lock ${lockDir} (held by pid ${owner})`);
    if (!announced) {
      console.log(`setup: another setup (pid ${owner}) is building the mediasoup worker; waiting`);
      announced = true;
    }
    await sleep(2000);
  }
  const release = () => rmSync(lockDir, { recursive: true, force: true });
  process.on('exit', release);
  try {
    return await fn();
  } finally {
    release();
    process.off('exit', release);
  }
}

await step('mediasoup worker', async () => {
  const fromEnv = process.env.MEDIASOUP_WORKER_BIN;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) fail(`MEDIASOUP_WORKER_BIN=${fromEnv} is not an executable file`);
    workerBin = resolve(fromEnv);
    return false;
  }
  if (isExecutable(cachedWorker)) return false;
  return withBuildLock(async () => {
    if (isExecutable(cachedWorker)) return true; // built by the setup we waited for
    console.log(`setup: building mediasoup-worker ${mediasoupVersion} into ${cacheDir} (takes a few minutes, once per machine)`);
    await run('bash', [join(root, 'workers/mediasoup/build.sh'), mediasoupVersion, cachedWorker], { cwd: root });
    if (!isExecutable(cachedWorker)) fail(`the build finished but ${cachedWorker} is not there`);
    return true;
  });
});

// ---------------------------------------------------------------------------------------------
// c. npm ci, when package-lock.json, patches/ (applied by the postinstall, patch-package) or Node
//    changed since the last successful install

const nodeModules = join(root, 'node_modules');
const stampPath = join(nodeModules, '.callplane-setup.json');

await step('npm ci', async () => {
  const lockPath = join(root, 'package-lock.json');
  if (!existsSync(lockPath)) fail('package-lock.json is missing (npm ci needs it)');
  const patchesDir = join(root, 'patches');
  const patches = existsSync(patchesDir) ? readdirSync(patchesDir).sort().map((name) => `${name}\n${readFileSync(join(patchesDir, name), 'utf8')}`) : [];
  const stamp = {
    lockHash: sha256(readFileSync(lockPath)),
    patchesHash: sha256(...patches),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
  try {
    const previous = readJson(stampPath);
    if (previous.lockHash === stamp.lockHash && previous.patchesHash === stamp.patchesHash && previous.node === stamp.node && previous.platform === stamp.platform) return false;
  } catch {
    /* no stamp: never installed by setup, or node_modules was removed */
  }
  // With MEDIASOUP_WORKER_BIN set, mediasoup's postinstall skips its (online) worker build.
  await run('npm', ['ci', '--no-audit', '--no-fund'], {
    cwd: root,
    env: { ...process.env, MEDIASOUP_WORKER_BIN: workerBin },
  });
  writeFileSync(stampPath, `${JSON.stringify({ ...stamp, installedAt: new Date().toISOString() }, null, 2)}\n`);
  return true;
});

// ---------------------------------------------------------------------------------------------
// tap builds its Test class from its plugins; package.json "tap".plugin drops the ts-node plugin
// (tests load TypeScript with tsx, as bin/callplane.js does). tap rebuilds itself when the list
// changed, but only for the runs after the one that noticed: build it here, before any run.

await step('tap plugins', async () => {
  const testPackage = join(nodeModules, '@tapjs/test');
  const { defaultPlugins } = await import(pathToFileURL(join(testPackage, 'dist/esm/default-plugins.js')).href);
  const wanted = new Set(defaultPlugins);
  for (const plugin of readJson(join(root, 'package.json')).tap?.plugin ?? []) {
    if (plugin.startsWith('!')) wanted.delete(plugin.slice(1));
    else wanted.add(plugin);
  }
  const expected = [...wanted].sort((a, b) => a.localeCompare(b, 'en')).join('\n');
  const built = /export const signature = `([^`]*)`/.exec(readFileSync(join(testPackage, 'test-built/dist/esm/index.js'), 'utf8'))?.[1]?.trim();
  if (built === expected) return false;
  await run(join(nodeModules, '.bin/tap'), ['build'], { cwd: root });
  return true;
});

// ---------------------------------------------------------------------------------------------
// d. The worker at mediasoup's default lookup path, so the app runs without MEDIASOUP_WORKER_BIN

await step('worker in node_modules', async () => {
  const target = join(nodeModules, 'mediasoup/worker/out/Release/mediasoup-worker');
  const source = statSync(workerBin);
  try {
    const current = statSync(target);
    if (current.size === source.size && Math.trunc(current.mtimeMs / 1000) === Math.trunc(source.mtimeMs / 1000) && isExecutable(target)) {
      return false;
    }
  } catch {
    /* missing */
  }
  if (!existsSync(join(nodeModules, 'mediasoup/package.json'))) fail('node_modules/mediasoup is missing after npm ci');
  mkdirSync(dirname(target), { recursive: true });
  const temporary = `${target}.tmp-${process.pid}`;
  copyFileSync(workerBin, temporary);
  utimesSync(temporary, source.atime, source.mtime);
  renameSync(temporary, target);
  return true;
});

// ---------------------------------------------------------------------------------------------
// The demo client bundle (esbuild); the build script itself skips work when nothing changed.

await step('demo client bundle', async () => {
  const before = existsSync(join(root, 'src/web/dist/.build.json')) ? statSync(join(root, 'src/web/dist/.build.json')).mtimeMs : 0;
  await run(process.execPath, [join(root, 'scripts/build-web.mjs'), '--quiet'], { cwd: root });
  const after = existsSync(join(root, 'src/web/dist/.build.json')) ? statSync(join(root, 'src/web/dist/.build.json')).mtimeMs : 0;
  return after !== before;
});

// ---------------------------------------------------------------------------------------------
// The load tester's pre-encoded media (VP8 in IVF, Opus in Ogg), made once with ffmpeg and cached
// outside the checkout like the worker: ${XDG_CACHE_HOME:-~/.cache}/callplane/loadtest-media-v1/.

await step('load tester media', async () => {
  const script = "import { ensureMediaFixtures } from './src/loadtest/media-files.ts'; process.stdout.write(String(await ensureMediaFixtures(500)));";
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 300_000 });
  if (result.status !== 0) fail((result.stderr || `exit code ${result.status}`).trim());
  return result.stdout.trim() === 'true';
});

// ---------------------------------------------------------------------------------------------
// e. Verify: mediasoup loads and starts a worker (the binary links against the system
//    libraries), and uWebSockets.js's native binary loads (the package otherwise falls back
//    silently to a slow pure-JS server).

await step('verify', async () => {
  const probe = `
    const fail = (what, error) => { console.error(what + ': ' + (error && error.message || error)); process.exit(1); };
    const uwsBinary = '@trufflesuite/uws-js-unofficial/binaries/uws_' + process.platform + '_' + process.arch + '_' + process.versions.modules + '.node';
    try { require(uwsBinary); } catch (error) { fail('uWebSockets.js native binary ' + uwsBinary + ' does not load', error); }
    let mediasoup;
    try { mediasoup = require('mediasoup'); } catch (error) { fail("require('mediasoup') failed", error); }
    const timer = setTimeout(() => fail('mediasoup worker', 'did not start within 15 s'), 15000);
    mediasoup.createWorker({ logLevel: 'error' }).then(
      (worker) => { clearTimeout(timer); worker.close(); },
      (error) => fail('the mediasoup worker does not start', error),
    );
  `;
  // Without MEDIASOUP_WORKER_BIN, so the copy at the default path is what gets checked.
  const env = { ...process.env };
  delete env.MEDIASOUP_WORKER_BIN;
  const result = spawnSync(process.execPath, ['-e', probe], { cwd: root, env, encoding: 'utf8', timeout: 30_000 });
  if (result.error) fail(`verification process: ${result.error.message}`);
  if (result.status !== 0) fail((result.stderr || result.stdout || `exit code ${result.status}`).trim());
  return true;
});
