import { createHmac, timingSafeEqual } from 'node:crypto';
import { validateKey } from './keys.ts';

/**
 * Signed URLs of the local driver point at callplane's own HTTP server:
 *   <public_base_url>/v1/storage/<key, each segment percent-encoded>?expires=<unix seconds>&signature=<hex>
 * where signature = HMAC-SHA256(secret, METHOD + '\n' + key + '\n' + expires).
 * The HTTP route decodes the path with decodeLocalStoragePath and checks the query with verifyLocalSignature.
 */
export const LOCAL_STORAGE_PATH_PREFIX = '/v1/storage/';

export type SignedMethod = 'GET' | 'PUT';

export function signLocal(secret: string, method: SignedMethod, key: string, expires: number): string {
  return createHmac('sha256', secret).update(`${method}\n${key}\n${expires}`).digest('hex');
}

/** The URL path for a key; '/' separates segments, everything else is percent-encoded. */
export function encodeLocalStoragePath(key: string): string {
  return LOCAL_STORAGE_PATH_PREFIX + validateKey(key).split('/').map(encodeURIComponent).join('/');
}

/** The key of a raw (still percent-encoded) request path, or null when it is not a valid storage path. */
export function decodeLocalStoragePath(rawPath: string): string | null {
  if (!rawPath.startsWith(LOCAL_STORAGE_PATH_PREFIX)) return null;
  try {
    // Decoding segment by segment keeps an encoded '%2F' from turning into a separator.
    const segments = rawPath.slice(LOCAL_STORAGE_PATH_PREFIX.length).split('/').map(decodeURIComponent);
    if (segments.some((s) => s.includes('/'))) return null;
    return validateKey(segments.join('/'));
  } catch {
    return null;
  }
}

const EXPIRES_PATTERN = /^\d{1,12}$/;
const SIGNATURE_PATTERN = /^[0-9a-f]{64}$/i;

/**
 * True when `signature` signs (method, key, expires) with `secret` and `now` is not past `expires`.
 * `expires` may be the raw query string value. The comparison is constant-time.
 */
export function verifyLocalSignature(
  secret: string,
  method: string,
  key: string,
  expires: string | number,
  signature: string,
  now: Date = new Date(),
): boolean {
  const upper = method.toUpperCase();
  if (upper !== 'GET' && upper !== 'PUT') return false;
  const expiresText = String(expires);
  if (!EXPIRES_PATTERN.test(expiresText) || !SIGNATURE_PATTERN.test(signature)) return false;
  const expiresAt = Number(expiresText);
  if (Math.floor(now.getTime() / 1000) > expiresAt) return false;
  const expected = Buffer.from(signLocal(secret, upper, key, expiresAt), 'hex');
  return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
}
