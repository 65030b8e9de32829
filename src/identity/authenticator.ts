import type { Principal } from './principal.ts';
import { AppError } from '../shared/errors.ts';
import { constantTimeEquals } from './keys.ts';
import type { TokenService } from './tokens.ts';
import type { UserCache } from './user-cache.ts';

/**
 * Turns request headers into a Principal: X-Api-Key (operator, acts as admin) or a Bearer access token.
 * A token is refused once its user's tokens were revoked after it was issued; the token's own
 * claims (user, role, scope) say everything else, so no other per-request lookup is made.
 */
export function createAuthenticator(apiKey: string, tokens: TokenService, users: UserCache) {
  return async (headers: Record<string, string>): Promise<Principal | null> => {
    const presentedKey = headers['x-api-key'];
    if (presentedKey !== undefined) {
      if (!constantTimeEquals(presentedKey, apiKey)) throw new AppError('unauthorized', 'Invalid API key');
      return { kind: 'api_key' };
    }
    const authorization = headers.authorization;
    if (authorization === undefined) return null;
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!match) throw new AppError('unauthorized', 'Authorization header must be "Bearer <access token>"');
    const claims = await tokens.verify(match[1]!);
    // Tokens of an IdP may name users this node has no row for: nothing to revoke then.
    const revokedAt = (await users.get(claims.userId))?.tokens_revoked_at;
    if (revokedAt && claims.issuedAt.getTime() <= revokedAt.getTime()) throw new AppError('unauthorized', 'Token was revoked');
    return {
      kind: 'user',
      userId: claims.userId,
      role: claims.role,
      tokenExpiresAt: claims.expiresAt,
      ...(claims.scope ? { scope: claims.scope } : {}),
    };
  };
}
