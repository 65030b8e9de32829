import { randomBytes, createHash } from 'node:crypto';
import { ulid } from 'ulid';

/** Resource ids are ULIDs: sortable by creation time, as every id in the API (docs/api.md). */
export function newId(): string {
  return ulid();
}

const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;
export function isUlid(value: string): boolean {
  return ULID_PATTERN.test(value);
}

/** A random secret encoded base64url, e.g. for API keys and opaque tokens. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}
