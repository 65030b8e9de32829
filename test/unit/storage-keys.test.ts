import t from 'tap';
import { AppError } from '../../src/shared/errors.ts';
import { MAX_KEY_BYTES, validateKey, validatePageSize, validatePrefix, validateTtl } from '../../src/storage/keys.ts';
import {
  decodeLocalStoragePath,
  encodeLocalStoragePath,
  signLocal,
  verifyLocalSignature,
} from '../../src/storage/local-signing.ts';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? err.code : 'not an AppError';
  }
  return undefined;
}

t.test('validateKey accepts ordinary keys, including ones exactly MAX_KEY_BYTES long', async (t) => {
  for (const key of ['a', 'recordings/01J/2026-01-01T00:00:00Z.mp4', 'a b/ü€.webm', 'a..b', '.hidden', 'x'.repeat(MAX_KEY_BYTES)]) {
    t.equal(validateKey(key), key, JSON.stringify(key).slice(0, 60));
  }
  // 341 three-byte characters plus one byte = 1024 bytes.
  t.equal(validateKey('€'.repeat(341) + 'a'), '€'.repeat(341) + 'a');
});

t.test('validateKey rejects traversal, aliasing, control characters and over-long keys', async (t) => {
  const bad: unknown[] = [
    '',
    '/abs',
    '..',
    '../x',
    'a/../b',
    'a/..',
    './a',
    'a/./b',
    'a//b',
    'a/',
    'a\u0000b',
    'a\nb',
    'x'.repeat(MAX_KEY_BYTES + 1),
    '€'.repeat(342), // 1026 bytes in UTF-8 although only 342 characters
    'a\ud800b', // lone surrogate
    42,
    null,
  ];
  for (const key of bad) t.equal(codeOf(() => validateKey(key)), 'validation_failed', JSON.stringify(key)?.slice(0, 40) ?? String(key));
});

t.test('validatePrefix allows empty, trailing slash and partial segments but not traversal', async (t) => {
  for (const prefix of ['', 'rec/', 'rec/a', 'rec/.', 'rec/..x']) t.equal(validatePrefix(prefix), prefix);
  for (const prefix of ['/rec', '../', 'a/../b', 'a//b', 'a\u0000']) t.equal(codeOf(() => validatePrefix(prefix)), 'validation_failed', prefix);
});

t.test('validateTtl and validatePageSize enforce their ranges', async (t) => {
  t.equal(validateTtl(undefined, 900), 900);
  t.equal(validateTtl(60, 900), 60);
  for (const bad of [0, -1, 1.5, 7 * 24 * 3600 + 1]) t.equal(codeOf(() => validateTtl(bad, 900)), 'validation_failed', String(bad));
  t.equal(validatePageSize(undefined), 1000);
  for (const bad of [0, 1001, 2.5]) t.equal(codeOf(() => validatePageSize(bad)), 'validation_failed', String(bad));
});

t.test('local signatures: HMAC over method, key and expiry, checked in constant time', async (t) => {
  const secret = 'unit-test-secret-0123456789';
  const now = new Date('2026-01-01T00:00:00Z');
  const expires = Math.floor(now.getTime() / 1000) + 60;
  const sig = signLocal(secret, 'GET', 'rec/a.mp4', expires);
  t.match(sig, /^[0-9a-f]{64}$/);
  t.ok(verifyLocalSignature(secret, 'GET', 'rec/a.mp4', expires, sig, now), 'fresh signature');
  t.ok(verifyLocalSignature(secret, 'get', 'rec/a.mp4', String(expires), sig.toUpperCase(), now), 'method and hex case do not matter');
  t.ok(verifyLocalSignature(secret, 'GET', 'rec/a.mp4', expires, sig, new Date(expires * 1000)), 'valid up to the expiry second');
  t.notOk(verifyLocalSignature(secret, 'GET', 'rec/a.mp4', expires, sig, new Date((expires + 1) * 1000)), 'expired');
  t.notOk(verifyLocalSignature(secret, 'PUT', 'rec/a.mp4', expires, sig, now), 'other method');
  t.notOk(verifyLocalSignature(secret, 'GET', 'rec/b.mp4', expires, sig, now), 'other key');
  t.notOk(verifyLocalSignature(secret, 'GET', 'rec/a.mp4', expires + 3600, sig, now), 'extended expiry');
  t.notOk(verifyLocalSignature('another-secret-0123456789', 'GET', 'rec/a.mp4', expires, sig, now), 'other secret');
  const flipped = (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1);
  t.notOk(verifyLocalSignature(secret, 'GET', 'rec/a.mp4', expires, flipped, now), 'tampered signature');
  t.notOk(verifyLocalSignature(secret, 'GET', 'rec/a.mp4', expires, sig.slice(2), now), 'short signature');
  t.notOk(verifyLocalSignature(secret, 'GET', 'rec/a.mp4', 'soon', sig, now), 'non-numeric expiry');
  t.notOk(verifyLocalSignature(secret, 'DELETE', 'rec/a.mp4', expires, signLocal(secret, 'GET', 'rec/a.mp4', expires), now), 'unsigned method');
});

t.test('local storage paths encode each segment and decode back to the key', async (t) => {
  const key = 'rec/a b/ü%?#.mp4';
  const path = encodeLocalStoragePath(key);
  t.equal(path, '/v1/storage/rec/a%20b/%C3%BC%25%3F%23.mp4');
  t.equal(decodeLocalStoragePath(path), key);
  t.equal(decodeLocalStoragePath('/v1/storage/a%2Fb'), null, 'an encoded slash is not a separator');
  t.equal(decodeLocalStoragePath('/v1/storage/a/%2E%2E/b'), null, 'encoded traversal');
  t.equal(decodeLocalStoragePath('/v1/storage/%E0%A4%A'), null, 'malformed escape');
  t.equal(decodeLocalStoragePath('/v1/other/a'), null, 'other route');
  t.equal(codeOf(() => encodeLocalStoragePath('../x')), 'validation_failed');
});
