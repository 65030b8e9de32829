/**
 * Which users have a live paid call with a host: chat's posting rule (the LiveCalls port of
 * chat/ports.ts) asks it. Live means `waiting` (the host is being rung) or `active`.
 */
import type { DbHandle } from '../../db/database.ts';

export class PaidLiveCalls {
  constructor(private readonly db: DbHandle) {}

  async hasLiveCall(userId: string, hostId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('call_billing as b')
      .innerJoin('calls as c', 'c.id', 'b.call_id')
      .select('c.id')
      .where('b.host_id', '=', hostId)
      .where('b.guest_id', '=', userId)
      .where('c.kind', '=', 'paid')
      .where('c.status', 'in', ['waiting', 'active'])
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }
}
