import type { Principal } from './principal.ts';
import { AppError } from '../shared/errors.ts';
import { constantTimeEquals } from './keys.ts';
import type { TokenService } from './tokens.ts';

/** Turns request headers into a Principal: X-Api-Key (operator, acts as admin) or a Bearer access token. */
export function createAuthenticator(apiKey: string, tokens: TokenService) {
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
    return {
      kind: 'user',
      userId: claims.userId,
      role: claims.role,
      tokenExpiresAt: claims.expiresAt,
      ...(claims.scope ? { scope: claims.scope } : {}),
    };
  };
}
