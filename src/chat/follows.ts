/** Follows (docs/api.md, "Chat"): a user follows a host; a host's broadcasts reach its followers. */
import type { Database } from '../db/database.ts';
import type { Follow } from '../protocol/chat.ts';
import type { Clock } from '../shared/clock.ts';
import { AppError } from '../shared/errors.ts';

export class FollowService {
  constructor(private readonly deps: { db: Database; clock: Clock }) {}

  /** Follows `hostId` (a host or an admin: both can broadcast). `created` is false when already following. */
  async follow(userId: string, hostId: string): Promise<{ follow: Follow; created: boolean }> {
    const { db, clock } = this.deps;
    if (hostId === userId) throw new AppError('validation_failed', 'You cannot follow yourself', { field: 'id' });
    const host = await db.selectFrom('users').select('role').where('id', '=', hostId).executeTakeFirst();
    if (!host || (host.role !== 'host' && host.role !== 'admin')) throw new AppError('not_found', `Host ${hostId} not found`);
    const inserted = await db
      .insertInto('chat_follows')
      .values({ host_id: hostId, user_id: userId, created_at: clock.now() })
      .onConflict((oc) => oc.columns(['host_id', 'user_id']).doNothing())
      .returning(['host_id', 'user_id', 'created_at'])
      .executeTakeFirst();
    const row = inserted ?? (await db.selectFrom('chat_follows').select(['host_id', 'user_id', 'created_at']).where('host_id', '=', hostId).where('user_id', '=', userId).executeTakeFirstOrThrow());
    return { follow: { host_id: row.host_id, user_id: row.user_id, created_at: row.created_at.toISOString() }, created: inserted !== undefined };
  }

  /** Idempotent: not following is not an error. */
  async unfollow(userId: string, hostId: string): Promise<void> {
    await this.deps.db.deleteFrom('chat_follows').where('host_id', '=', hostId).where('user_id', '=', userId).execute();
  }
}
