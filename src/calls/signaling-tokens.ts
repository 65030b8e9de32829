import type { DbHandle } from '../db/database.ts';
import type { Clock } from '../shared/clock.ts';
import { randomToken, sha256Hex } from '../shared/ids.ts';

/**
 * Signaling tokens: opaque `st_` + 32 random bytes, stored only as a hash, bound to one participant
 * of one call, single use, short-lived (docs/api.md, "Signaling WebSocket").
 */
export class SignalingTokenService {
  constructor(
    private readonly db: DbHandle,
    private readonly clock: Clock,
    private readonly ttlSeconds: number,
  ) {}

  async issue(callId: string, participantId: string): Promise<{ token: string; expiresAt: Date }> {
    const token = `st_${randomToken(32)}`;
    const expiresAt = new Date(this.clock.nowMs() + this.ttlSeconds * 1000);
    await this.db.insertInto('signaling_tokens').values({ token_hash: sha256Hex(token), call_id: callId, participant_id: participantId, expires_at: expiresAt }).execute();
    return { token, expiresAt };
  }

  /** Marks the token used and returns what it is bound to; null when unknown, expired or already used. */
  async consume(token: string): Promise<{ callId: string; participantId: string } | null> {
    if (!/^st_[A-Za-z0-9_-]{43}$/.test(token)) return null;
    const now = this.clock.now();
    const row = await this.db
      .updateTable('signaling_tokens')
      .set({ used_at: now })
      .where('token_hash', '=', sha256Hex(token))
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .returning(['call_id', 'participant_id'])
      .executeTakeFirst();
    return row ? { callId: row.call_id, participantId: row.participant_id } : null;
  }

  async purgeExpired(): Promise<void> {
    await this.db.deleteFrom('signaling_tokens').where('expires_at', '<', new Date(this.clock.nowMs() - 3600_000)).execute();
  }
}
