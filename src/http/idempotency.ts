import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import { AppError } from '../shared/errors.ts';
import { sha256Hex } from '../shared/ids.ts';
import type { Clock } from '../shared/clock.ts';
import type { HttpResult } from './types.ts';

const RETENTION_MS = 24 * 3600 * 1000;
/** A request still 'in progress' after this long was cut off by a crash; its key may be used again. */
const ABANDONED_AFTER_MS = 5 * 60 * 1000;

export type BeginOutcome = { kind: 'proceed' } | { kind: 'replay'; result: HttpResult };

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

/** Stores the first response to each (caller, X-Idempotency-Key) in Postgres for 24 h and replays it. */
export class IdempotencyStore {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
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
          // On the application clock, like the abandonment check below (the database's now() may differ).
          created_at: now,
          expires_at: new Date(now.getTime() + RETENTION_MS),
        })
        .onConflict((oc) => oc.columns(['caller', 'key']).doNothing())
        .returning('key')
        .executeTakeFirst();
      if (inserted) return { kind: 'proceed' };

      const existing = await this.db
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('caller', '=', input.caller)
        .where('key', '=', input.key)
        .executeTakeFirst();
      if (!existing) continue; // removed between our insert and select: try again
      const abandonedBefore = new Date(now.getTime() - ABANDONED_AFTER_MS);
      const expired = existing.expires_at.getTime() <= now.getTime();
      const abandoned = existing.state === 'in_progress' && existing.created_at.getTime() < abandonedBefore.getTime();
      if (expired || abandoned) {
        // Deleted by the condition itself, not by matching the timestamp read back (PostgreSQL keeps
        // microseconds a JS Date drops): a concurrent retry that already replaced the row is left alone.
        await this.db
          .deleteFrom('idempotency_keys')
          .where('caller', '=', input.caller)
          .where('key', '=', input.key)
          .where((eb) => eb.or([eb('expires_at', '<=', now), eb.and([eb('state', '=', 'in_progress'), eb('created_at', '<', abandonedBefore)])]))
          .execute();
        continue;
      }
      if (existing.request_hash !== requestHash) {
        throw new AppError('idempotency_conflict', 'This X-Idempotency-Key was already used with a different request', { key: input.key });
      }
      if (existing.state === 'in_progress') {
        throw new AppError('request_in_progress', 'A request with this X-Idempotency-Key is still being processed; retry later', { key: input.key });
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
