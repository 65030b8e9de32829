import { createHmac } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { TurnConfig } from '../config/schema.ts';
import type { Clock } from '../shared/clock.ts';

export const TurnCredentialsSchema = Type.Object({ urls: Type.Array(Type.String()), username: Type.String(), credential: Type.String(), ttl_seconds: Type.Integer() });
export type TurnCredentials = Static<typeof TurnCredentialsSchema>;

/**
 * TURN REST API credentials (the scheme coturn's use-auth-secret verifies):
 * username "<unix expiry>:<participant id>", credential base64(HMAC-SHA1(secret, username)).
 */
export class TurnCredentialMinter {
  constructor(
    private readonly config: TurnConfig,
    private readonly secret: string,
    private readonly clock: Clock,
  ) {}

  mint(participantId: string): TurnCredentials {
    const expiry = Math.floor(this.clock.nowMs() / 1000) + this.config.credential_ttl_seconds;
    const username = `${expiry}:${participantId}`;
    return {
      urls: [...this.config.urls],
      username,
      credential: createHmac('sha1', this.secret).update(username).digest('base64'),
      ttl_seconds: this.config.credential_ttl_seconds,
    };
  }

  /** The same credentials as RTCPeerConnection iceServers (empty when no TURN URL is configured). */
  iceServers(participantId: string): Array<{ urls: string[]; username: string; credential: string }> {
    if (this.config.urls.length === 0) return [];
    const { urls, username, credential } = this.mint(participantId);
    return [{ urls, username, credential }];
  }
}
