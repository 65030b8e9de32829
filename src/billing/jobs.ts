/**
 * Billing's durable jobs on graphile-worker (schema graphile_worker in the same PostgreSQL): window
 * ticks and timeouts (`billing_tick`) and payment operations (`billing_payment`). Jobs are added with
 * SQL inside the transaction that decided them, so a job exists exactly when its decision was committed;
 * failures are retried by graphile-worker with exponential backoff.
 */
import { sql } from 'kysely';
import pg from 'pg';
import { run, runMigrations, makeWorkerUtils, type Runner, type Logger as GraphileLogger, Logger as GraphileLoggerClass } from 'graphile-worker';
import type { Database, DbHandle } from '../db/database.ts';
import type { Logger } from '../shared/logger.ts';
import type { JobQueue, PaymentJob, TickJob } from './ports.ts';

export const JOB_SCHEMA = 'graphile_worker';

/** Adds jobs with graphile_worker.add_job() on whatever handle it is given (a transaction, usually). */
export class SqlJobQueue implements JobQueue {
  async add(db: DbHandle, task: 'billing_tick' | 'billing_payment', payload: TickJob | PaymentJob, options: { runAt?: Date; jobKey?: string } = {}): Promise<void> {
    await sql`select graphile_worker.add_job(
      identifier => ${task},
      payload => ${JSON.stringify(payload)}::json,
      run_at => ${options.runAt ?? null}::timestamptz,
      max_attempts => 1000,
      job_key => ${options.jobKey ?? null}::text
    )`.execute(db);
  }
}

export interface BillingTaskHandlers {
  tick(job: TickJob): Promise<void>;
  payment(job: PaymentJob): Promise<void>;
}

function graphileLogger(logger: Logger): GraphileLogger {
  const log = logger.child({ component: 'jobs' });
  return new GraphileLoggerClass(() => (level, message, meta) => {
    // A failed attempt is retried with backoff; the handler already logged why.
    if (level === 'error') log.warn(meta ?? {}, message);
    else if (level === 'warning') log.warn(meta ?? {}, message);
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
 * this node unlocks them so they run again. One node per database (SPEC §16 is not built yet).
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

export async function startJobRunner(options: {
  pgPool: pg.Pool;
  concurrency: number;
  pollIntervalMs: number;
  logger: Logger;
  handlers: BillingTaskHandlers;
}): Promise<Runner> {
  const { handlers } = options;
  return run({
    pgPool: options.pgPool,
    concurrency: options.concurrency,
    pollInterval: options.pollIntervalMs,
    noHandleSignals: true,
    logger: graphileLogger(options.logger),
    taskList: {
      billing_tick: async (payload) => handlers.tick(payload as TickJob),
      billing_payment: async (payload) => handlers.payment(payload as PaymentJob),
    },
  });
}
