/**
 * The job runner: a registry of task handlers that any module fills in at start-up, run by
 * graphile-worker on a connection pool of ours. Failures are retried by graphile-worker with
 * exponential backoff; a handler logs why it failed.
 */
import pg from 'pg';
import { run, runMigrations, makeWorkerUtils, type Runner, type Logger as GraphileLogger, type TaskList, Logger as GraphileLoggerClass } from 'graphile-worker';
import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { Logger } from '../shared/logger.ts';
import type { TaskKind } from './queue.ts';

/** Task name → handler. A name registered twice is a wiring mistake and throws at start-up. */
export class TaskRegistry {
  readonly #handlers = new Map<string, (payload: unknown) => Promise<void>>();

  register<P>(task: TaskKind<P>, handler: (payload: P) => Promise<void>): void {
    if (this.#handlers.has(task.name)) throw new Error(`jobs: task ${task.name} is registered twice`);
    this.#handlers.set(task.name, handler as (payload: unknown) => Promise<void>);
  }

  get names(): string[] {
    return [...this.#handlers.keys()];
  }

  taskList(): TaskList {
    return Object.fromEntries([...this.#handlers].map(([name, handler]) => [name, async (payload: unknown) => handler(payload)]));
  }
}

function graphileLogger(logger: Logger): GraphileLogger {
  const log = logger.child({ component: 'jobs' });
  return new GraphileLoggerClass(() => (level, message, meta) => {
    // A failed attempt is retried with backoff; the handler already logged why.
    if (level === 'error' || level === 'warning') log.warn(meta ?? {}, message);
    else log.debug(meta ?? {}, message);
  });
}

/**
 * graphile-worker's connections, in a pool of ours: a connection the database drops (restart,
 * failover, an administrator) is logged and replaced instead of crashing the process.
 */
export function createJobPool(connectionString: string, max: number, logger: Logger): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, connectionTimeoutMillis: 5000 });
  pool.on('error', (error) => logger.warn({ err: error }, 'jobs: a database connection was lost; it is replaced'));
  // A client checked out of the pool (LISTEN, a running job) reports on itself, not on the pool.
  pool.on('connect', (client) => client.on('error', (error) => logger.warn({ err: error }, 'jobs: a database connection in use was lost')));
  return pool;
}

/** Creates or upgrades graphile-worker's schema (idempotent; run at start-up before anything adds a job). */
export async function migrateJobs(pgPool: pg.Pool, logger: Logger): Promise<void> {
  await runMigrations({ pgPool, logger: graphileLogger(logger) });
}

/**
 * A killed process leaves its running jobs locked (graphile-worker would wait 4 hours): on start-up
 * this node unlocks them so they run again. One node per database (see docs/known-issues.md).
 */
export async function unlockAbandonedJobs(db: Database, pgPool: pg.Pool, logger: Logger): Promise<number> {
  const rows = await sql<{ locked_by: string }>`select distinct locked_by from graphile_worker._private_jobs where locked_by is not null`.execute(db);
  const workerIds = rows.rows.map((r) => r.locked_by);
  if (workerIds.length === 0) return 0;
  const utils = await makeWorkerUtils({ pgPool, logger: graphileLogger(logger) });
  try {
    await utils.forceUnlockWorkers(workerIds);
  } finally {
    await utils.release();
  }
  logger.info({ workers: workerIds.length }, 'jobs: unlocked jobs abandoned by a previous process');
  return workerIds.length;
}

/** Runs every registered task until `stop()`; register everything before starting. */
export async function startJobRunner(options: { pgPool: pg.Pool; concurrency: number; pollIntervalMs: number; logger: Logger; tasks: TaskRegistry }): Promise<Runner> {
  return run({
    pgPool: options.pgPool,
    concurrency: options.concurrency,
    pollInterval: options.pollIntervalMs,
    // One fetch loop per runner instead of one per slot: idle, a runner polls once per interval.
    preset: { worker: { localQueue: { size: options.concurrency + 1 } } },
    noHandleSignals: true,
    logger: graphileLogger(options.logger),
    taskList: options.tasks.taskList(),
  });
}
