import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import { AppError } from '../shared/errors.ts';
import { sha256Hex } from '../shared/ids.ts';
import type { Clock } from '../shared/clock.ts';
import type { HttpResult } from './types.ts';

const RETENTION_MS = 24 * 3600 * 1000;

/**
 * proceed: run the request. `firstReceivedAt` is when the key was first received: now, or, for the
 * retry of a request that a crash cut off, when the cut-off request arrived (an end counts from then).
 */
export type BeginOutcome = { kind: 'proceed'; firstReceivedAt: Date; retryOfAbandoned: boolean } | { kind: 'replay'; result: HttpResult };

/** Key order must not change the fingerprint: {"a":1,"b":2} and {"b":2,"a":1} are the same request. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** What makes two requests "the same" for an idempotency key: method, path and canonical JSON body. */
export function requestFingerprint(method: string, path: string, body: unknown): string {
  return sha256Hex(`${method} ${path}\n${canonicalJson(body ?? null)}`);
}

/**
 * Stores the first response to each (caller, X-Idempotency-Key) in Postgres for 24 h and replays it.
 * An in-progress key records the server process (`instanceId`) running its request. A key held by
 * another process was cut off by a crash (one node per database: the other process is a dead
 * predecessor), so its retry takes it over at once and runs the request again; the handlers find what
 * the cut-off request had already committed (docs/api.md, "Idempotency keys").
 */
export class IdempotencyStore {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly instanceId: string,
  ) {}

  async begin(input: { caller: string; key: string; method: string; path: string; body: unknown }): Promise<BeginOutcome> {
    const requestHash = requestFingerprint(input.method, input.path, input.body);
    const now = this.clock.now();
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const inserted = await this.db
        .insertInto('idempotency_keys')
        .values({
          caller: input.caller,
          key: input.key,
          method: input.method,
          path: input.path,
          request_hash: requestHash,
          state: 'in_progress',
          instance_id: this.instanceId,
          // On the application clock: it is when the request was first received (an end counts from then).
          created_at: now,
          expires_at: new Date(now.getTime() + RETENTION_MS),
        })
        .onConflict((oc) => oc.columns(['caller', 'key']).doNothing())
        .returning('key')
        .executeTakeFirst();
      if (inserted) return { kind: 'proceed', firstReceivedAt: now, retryOfAbandoned: false };

      const existing = await this.db
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('caller', '=', input.caller)
        .where('key', '=', input.key)
        .executeTakeFirst();
      if (!existing) continue; // removed between our insert and select: try again
      if (existing.expires_at.getTime() <= now.getTime()) {
        // Deleted by the condition itself, not by matching the timestamp read back (PostgreSQL keeps
        // microseconds a JS Date drops): a concurrent retry that already replaced the row is left alone.
        await this.db.deleteFrom('idempotency_keys').where('caller', '=', input.caller).where('key', '=', input.key).where('expires_at', '<=', now).execute();
        continue;
      }
      if (existing.request_hash !== requestHash) {
        throw new AppError('idempotency_conflict', 'This X-Idempotency-Key was already used with a different request', { key: input.key });
      }
      if (existing.state === 'in_progress' && existing.instance_id === this.instanceId) {
        throw new AppError('request_in_progress', 'A request with this X-Idempotency-Key is still being processed; retry later', { key: input.key });
      }
      if (existing.state === 'in_progress') {
        // Cut off by a crash: taken over by the condition that it still belongs to the dead process, so
        // of two concurrent retries exactly one runs (the other then sees it in progress here).
        const taken = await this.db
          .updateTable('idempotency_keys')
          .set({ instance_id: this.instanceId })
          .where('caller', '=', input.caller)
          .where('key', '=', input.key)
          .where('state', '=', 'in_progress')
          .where(sql<boolean>`instance_id is not distinct from ${existing.instance_id}`)
          .executeTakeFirst();
        if (Number(taken.numUpdatedRows) === 1) return { kind: 'proceed', firstReceivedAt: existing.created_at, retryOfAbandoned: true };
        continue;
      }
      return { kind: 'replay', result: { status: existing.response_status ?? 200, body: existing.response_body === null ? undefined : JSON.parse(existing.response_body) } };
    }
    throw new AppError('request_in_progress', 'Could not reserve the X-Idempotency-Key; retry');
  }

  async complete(caller: string, key: string, result: HttpResult): Promise<void> {
    await this.db
      .updateTable('idempotency_keys')
      .set({ state: 'done', response_status: result.status, response_body: result.body === undefined ? null : JSON.stringify(result.body) })
      .where('caller', '=', caller)
      .where('key', '=', key)
      .execute();
  }

  /** Server-side failures are not stored, so the client's retry runs the request again. */
  async abandon(caller: string, key: string): Promise<void> {
    await this.db.deleteFrom('idempotency_keys').where('caller', '=', caller).where('key', '=', key).execute();
  }

  async purgeExpired(): Promise<number> {
    const result = await this.db.deleteFrom('idempotency_keys').where('expires_at', '<', sql<Date>`now()`).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
