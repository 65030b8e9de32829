import { LRUCache } from 'lru-cache';
import { SignJWT, decodeJwt, jwtVerify, createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, type JWTPayload } from 'jose';
import type { AuthConfig } from '../config/schema.ts';
import type { UserRole } from '../db/schema.ts';
import { AppError } from '../shared/errors.ts';
import type { Clock } from '../shared/clock.ts';
import type { SigningKey } from './keys.ts';

const ROLES: readonly UserRole[] = ['guest', 'user', 'host', 'admin'];

export interface AccessClaims {
  userId: string;
  role: UserRole;
  expiresAt: Date;
  /** "iat", to the second: tokens issued up to a user's revocation time are refused (Authenticator). */
  issuedAt: Date;
  /** Narrows what a token may do, e.g. a guest token scoped to one link: "link:<short_code>". */
  scope?: string;
}

export interface MintedToken {
  accessToken: string;
  expiresAt: Date;
}

/**
 * Mints and verifies the server's EdDSA access tokens; optionally also accepts an external IdP's tokens.
 * Verified local tokens are kept in a bounded LRU (auth.token_cache_size), so a client that sends
 * the same token on every request pays the signature check once; an entry is used only while the
 * token is unexpired by this service's clock. External tokens are always checked against the IdP's
 * keys (they may rotate). Revocation is checked by the caller on every request, cached or not.
 */
export class TokenService {
  private readonly localKeys: ReturnType<typeof createLocalJWKSet>;
  private readonly externalKeys: ReturnType<typeof createRemoteJWKSet> | null;
  private readonly verified: LRUCache<string, AccessClaims> | null;

  constructor(
    private readonly key: SigningKey,
    private readonly config: AuthConfig,
    private readonly clock: Clock,
  ) {
    this.localKeys = createLocalJWKSet({ keys: [key.publicJwk] });
    this.externalKeys = config.external_jwks ? createRemoteJWKSet(new URL(config.external_jwks.url), { timeoutDuration: 5000 }) : null;
    this.verified = config.token_cache_size > 0 ? new LRUCache({ max: config.token_cache_size }) : null;
  }

  /** Tokens held by the verified-token cache (for metrics and tests). */
  get cachedTokenCount(): number {
    return this.verified?.size ?? 0;
  }

  get publicJwks(): { keys: unknown[] } {
    return { keys: [this.key.publicJwk] };
  }

  async mint(input: { userId: string; role: UserRole; ttlSeconds?: number; scope?: string }): Promise<MintedToken> {
    const ttl = input.ttlSeconds ?? this.config.token_ttl_seconds;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > this.config.max_token_ttl_seconds) {
      throw new AppError('validation_failed', `ttl_seconds must be between 1 and ${this.config.max_token_ttl_seconds}`, {
        errors: [{ in: 'body', path: '/ttl_seconds', message: `must be between 1 and ${this.config.max_token_ttl_seconds}` }],
      });
    }
    const nowSeconds = Math.floor(this.clock.nowMs() / 1000);
    const expiresAt = new Date((nowSeconds + ttl) * 1000);
    const accessToken = await new SignJWT({ role: input.role, ...(input.scope ? { scope: input.scope } : {}) })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.key.kid, typ: 'JWT' })
      .setSubject(input.userId)
      .setIssuer(this.config.issuer)
      .setIssuedAt(nowSeconds)
      .setExpirationTime(nowSeconds + ttl)
      .sign(this.key.privateKey);
    return { accessToken, expiresAt };
  }

  /** Verifies a bearer token; any failure is 401 unauthorized with the reason. */
  async verify(token: string): Promise<AccessClaims> {
    const currentDate = this.clock.now();
    const cached = this.verified?.get(token);
    if (cached) {
      if (cached.expiresAt > currentDate) return cached;
      this.verified!.delete(token); // expired: jwtVerify below says so with the usual error
    }
    const external = this.config.external_jwks;
    let payload: JWTPayload;
    let local = false;
    try {
      // The (unverified) issuer only picks which keys to check against; the signature decides.
      if (external && this.externalKeys && claimedIssuer(token) === external.issuer) {
        ({ payload } = await jwtVerify(token, this.externalKeys, { issuer: external.issuer, audience: external.audience, currentDate }));
      } else {
        ({ payload } = await jwtVerify(token, this.localKeys, { issuer: this.config.issuer, algorithms: ['EdDSA'], currentDate }));
        local = true;
      }
    } catch (error) {
      throw unauthorized(error);
    }
    const claims = claimsOf(payload);
    // Only tokens with an expiry are kept: the cache must never outlive what the token allows.
    if (local && payload.exp !== undefined) this.verified?.set(token, claims);
    return claims;
  }
}

function claimsOf(payload: JWTPayload): AccessClaims {
  if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new AppError('unauthorized', 'Token has no subject');
  const role = (payload.role ?? 'user') as UserRole;
  if (!ROLES.includes(role)) throw new AppError('unauthorized', 'Token has an unknown role');
  return Object.freeze({
    userId: payload.sub,
    role,
    expiresAt: new Date((payload.exp ?? 0) * 1000),
    issuedAt: new Date((payload.iat ?? 0) * 1000),
    ...(typeof payload.scope === 'string' ? { scope: payload.scope } : {}),
  });
}

function claimedIssuer(token: string): string | undefined {
  try {
    return decodeJwt(token).iss;
  } catch {
    return undefined;
  }
}

function unauthorized(error: unknown): AppError {
  if (error instanceof joseErrors.JWTExpired) return new AppError('unauthorized', 'Token expired');
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return new AppError('unauthorized', 'Token signature is invalid');
  if (error instanceof joseErrors.JWTClaimValidationFailed) return new AppError('unauthorized', `Token claim "${error.claim}" is invalid`);
  if (error instanceof AppError) return error;
  return new AppError('unauthorized', 'Token is malformed or not signed by a trusted key');
}
