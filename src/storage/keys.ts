import { AppError } from '../shared/errors.ts';

export const MAX_KEY_BYTES = 1024;
/** S3 refuses presigned URLs that live longer than 7 days; the local driver keeps the same limit. */
export const MAX_SIGNED_URL_TTL_SECONDS = 7 * 24 * 3600;

// Control characters break HTTP paths and headers; lone surrogates cannot be encoded as UTF-8.
// eslint-disable-next-line no-control-regex -- control characters are exactly what this rejects
const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f]|\p{Cs}/u;

function problemOf(value: string, isPrefix: boolean): string | null {
  if (Buffer.byteLength(value, 'utf8') > MAX_KEY_BYTES) return `must be at most ${MAX_KEY_BYTES} bytes`;
  if (FORBIDDEN_CHARS.test(value)) return 'must not contain NUL, control characters or lone surrogates';
  if (value.startsWith('/')) return 'must not start with /';
  const segments = value.split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    // The last segment of a prefix is a partial name ('rec/a' matches 'rec/abc'), so anything goes there.
    if (isPrefix && i === segments.length - 1) continue;
    // The local driver maps keys onto paths: '..' would escape its directory and '' or '.' would alias other keys.
    if (segment === '..' || segment === '.') return 'must not contain . or .. segments';
    if (segment === '') return 'must not contain empty segments (// or a trailing /)';
  }
  return null;
}

/** Returns the key unchanged, or throws validation_failed. Both drivers apply the same rules. */
export function validateKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new AppError('validation_failed', 'Storage key must be a non-empty string', { field: 'key' });
  }
  const problem = problemOf(key, false);
  if (problem) throw new AppError('validation_failed', `Storage key ${problem}`, { field: 'key' });
  return key;
}

/** A listing prefix: '' lists everything, and a trailing '/' or partial last segment is allowed. */
export function validatePrefix(prefix: unknown): string {
  if (typeof prefix !== 'string') {
    throw new AppError('validation_failed', 'Storage prefix must be a string', { field: 'prefix' });
  }
  const problem = problemOf(prefix, true);
  if (problem) throw new AppError('validation_failed', `Storage prefix ${problem}`, { field: 'prefix' });
  return prefix;
}

export function validateTtl(value: number | undefined, fallback: number): number {
  const ttl = value ?? fallback;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_SIGNED_URL_TTL_SECONDS) {
    throw new AppError('validation_failed', `expiresInSeconds must be an integer in 1..${MAX_SIGNED_URL_TTL_SECONDS}`, {
      field: 'expiresInSeconds',
    });
  }
  return ttl;
}

export function validatePageSize(value: number | undefined): number {
  const size = value ?? 1000;
  if (!Number.isInteger(size) || size < 1 || size > 1000) {
    throw new AppError('validation_failed', 'pageSize must be an integer in 1..1000', { field: 'pageSize' });
  }
  return size;
}

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
