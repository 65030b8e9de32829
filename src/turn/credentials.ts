import { createHmac, timingSafeEqual } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { Clock } from '../shared/clock.ts';

export const TurnCredentialsSchema = Type.Object({ urls: Type.Array(Type.String()), username: Type.String(), credential: Type.String(), ttl_seconds: Type.Integer() });
export type TurnCredentials = Static<typeof TurnCredentialsSchema>;

/** base64(HMAC-SHA1(secret, username)): the TURN REST API credential, what coturn's use-auth-secret computes. */
export function restCredential(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64');
}

/**
 * TURN REST API credentials (docs/turn.md): username "<unix expiry>:<participant id>",
 * credential base64(HMAC-SHA1(secret, username)). `urls` are the configured engine's (or the
 * operator's external) URLs, read at mint time.
 */
export class TurnCredentialMinter {
  constructor(
    private readonly urls: () => readonly string[],
    private readonly ttlSeconds: number,
    private readonly secret: string,
    private readonly clock: Clock,
  ) {}

  mint(participantId: string): TurnCredentials {
    const expiry = Math.floor(this.clock.nowMs() / 1000) + this.ttlSeconds;
    const username = `${expiry}:${participantId}`;
    return { urls: [...this.urls()], username, credential: restCredential(this.secret, username), ttl_seconds: this.ttlSeconds };
  }

  /** The same credentials as RTCPeerConnection iceServers (empty when no TURN URL is offered). */
  iceServers(participantId: string): Array<{ urls: string[]; username: string; credential: string }> {
    if (this.urls().length === 0) return [];
    const { urls, username, credential } = this.mint(participantId);
    return [{ urls, username, credential }];
  }
}

/** Why a TURN username is refused, or its participant and password. */
export type TurnUserCheck = { ok: true; participantId: string; password: string } | { ok: false; reason: 'malformed' | 'expired' };

/**
 * The stateless check the embedded TURN server runs on every request: the username must be
 * "<expiry>:<id>" with the expiry still ahead; the password is then derived from the secret, so
 * a wrong or foreign credential fails MESSAGE-INTEGRITY. Nothing is stored per user.
 */
export function checkTurnUsername(secret: string, username: string, nowMs: number): TurnUserCheck {
  const match = /^(\d{1,12}):([\x21-\x7e]{1,128})$/.exec(username);
  if (!match) return { ok: false, reason: 'malformed' };
  if (Number(match[1]) * 1000 <= nowMs) return { ok: false, reason: 'expired' };
  return { ok: true, participantId: match[2]!, password: restCredential(secret, username) };
}

/** Constant-time comparison of two credentials (for callers that hold both). */
export function sameCredential(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
