/**
 * Durable jobs on graphile-worker (schema graphile_worker in the same PostgreSQL), for every domain
 * module: billing ticks and payments today; webhook delivery, recording composition and chat
 * broadcasts next. A job is added with SQL on the caller's handle — inside the transaction that
 * decided it, usually — so it exists exactly when its decision was committed.
 */
import { sql } from 'kysely';
import type { DbHandle } from '../db/database.ts';

/** A kind of job: its task name and, for the type checker only, its payload. */
export interface TaskKind<P> {
  readonly name: string;
  /** Never set: carries the payload type from where the kind is defined to add() and register(). */
  readonly payload?: P;
}

export function taskKind<P>(name: string): TaskKind<P> {
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new Error(`jobs: task name must be snake_case (got "${name}")`);
  return { name };
}

export interface JobOptions {
  /** When the job may run (real time); now when absent. */
  runAt?: Date;
  /** A second job with the same key replaces the first instead of being added beside it. */
  jobKey?: string;
  /** Attempts before graphile-worker gives up; retries back off exponentially. */
  maxAttempts?: number;
  /** With jobKey: `preserve_run_at` keeps the waiting job's run time instead of replacing it. */
  jobKeyMode?: 'replace' | 'preserve_run_at';
  /** Jobs of one named queue run one at a time, in order (one stream of deliveries, say). */
  queueName?: string;
}

export interface JobQueue {
  add<P>(db: DbHandle, task: TaskKind<P>, payload: P, options?: JobOptions): Promise<void>;
}

/** Adds jobs with graphile_worker.add_job() on whatever handle it is given. */
export class SqlJobQueue implements JobQueue {
  async add<P>(db: DbHandle, task: TaskKind<P>, payload: P, options: JobOptions = {}): Promise<void> {
    await sql`select graphile_worker.add_job(
      identifier => ${task.name},
      payload => ${JSON.stringify(payload)}::json,
      run_at => ${options.runAt ?? null}::timestamptz,
      max_attempts => ${options.maxAttempts ?? 1000}::int,
      job_key => ${options.jobKey ?? null}::text,
      queue_name => ${options.queueName ?? null}::text,
      job_key_mode => ${options.jobKeyMode ?? 'replace'}::text
    )`.execute(db);
  }
}
