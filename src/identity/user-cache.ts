import { LRUCache } from 'lru-cache';
import type { DbHandle } from '../db/database.ts';
import type { UserRow } from '../db/schema.ts';

const MAX_USERS = 10_000;

/**
 * Users' rows as read for authentication (their token revocation time) and GET /v1/users/me,
 * reused for auth.user_cache_ttl_ms so that a client's requests do not each cost a query.
 * UserService drops a user's entry when it changes the row, so this node's own changes show at
 * once; a change made by another node sharing the database shows within the TTL.
 * Concurrent misses for one user share one query.
 */
export class UserCache {
  readonly #db: DbHandle;
  readonly #rows: LRUCache<string, UserRow> | null;

  constructor(db: DbHandle, ttlMs: number) {
    this.#db = db;
    this.#rows =
      ttlMs > 0
        ? new LRUCache<string, UserRow>({ max: MAX_USERS, ttl: ttlMs, fetchMethod: (id) => this.#read(id) })
        : null;
  }

  /** The user's row, or undefined when there is no such user (never cached). */
  async get(id: string): Promise<UserRow | undefined> {
    return this.#rows ? this.#rows.fetch(id) : this.#read(id);
  }

  invalidate(id: string): void {
    this.#rows?.delete(id);
  }

  #read(id: string): Promise<UserRow | undefined> {
    return this.#db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }
}
