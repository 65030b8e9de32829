import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { StorageConfig } from '../../src/config/schema.ts';
import { AppError } from '../../src/shared/errors.ts';
import { createStorage, S3Storage, type ObjectStorage } from '../../src/storage/index.ts';
import { startS3rver } from '../helpers/s3rver.ts';

const MiB = 1024 * 1024;
const BUCKET = 'callplane-test';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof AppError ? err.code : `not an AppError: ${String(err)}`;
  }
}

function config(endpoint: string, bucket = BUCKET): StorageConfig {
  return {
    driver: 's3',
    local_dir: null,
    signed_url_ttl_seconds: 900,
    // s3rver accepts only this key pair, and checks signatures made with it.
    s3: { endpoint, region: 'us-east-1', bucket, access_key_id: 'S3RVER', secret_access_key: 'S3RVER', force_path_style: true },
  };
}

/** Counts the SDK commands a storage really sends, by name, until stop() is called. */
function countCommands(storage: ObjectStorage): { counts: Map<string, number>; stop: () => void } {
  if (!(storage instanceof S3Storage)) throw new Error('expected the s3 driver');
  const counts = new Map<string, number>();
  const name = `count-${Math.random()}`;
  storage.client.middlewareStack.add(
    (next, context) => async (args) => {
      counts.set(context.commandName ?? '?', (counts.get(context.commandName ?? '?') ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name },
  );
  return { counts, stop: () => void storage.client.middlewareStack.remove(name) };
}

const { endpoint } = await startS3rver(t, BUCKET);

function open(cfg: StorageConfig = config(endpoint)): ObjectStorage {
  const storage = createStorage(cfg, { signingSecret: 'unused-by-s3-driver', publicBaseUrl: () => 'http://unused' });
  t.teardown(() => storage.close());
  return storage;
}
const storage = open();

t.test('put/get/head/list/delete roundtrip', async (t) => {
  t.equal(storage.driver, 's3');
  await storage.put('rt/a.txt', 'hello', { contentType: 'text/plain' });
  await storage.put('rt/b/c.bin', Buffer.from([1, 2, 3]));
  await storage.put('rt/b/d.bin', new Uint8Array([4, 5]));
  await storage.put('rt/stream.bin', Readable.from([Buffer.from('str'), Buffer.from('eam')]));
  await storage.put('rtx', 'outside the prefix');

  t.equal((await storage.get('rt/a.txt')).toString(), 'hello');
  t.same([...(await storage.get('rt/b/d.bin'))], [4, 5]);
  t.equal((await storage.get('rt/stream.bin')).toString(), 'stream');
  const chunks: Buffer[] = [];
  for await (const c of await storage.getStream('rt/a.txt')) chunks.push(c as Buffer);
  t.equal(Buffer.concat(chunks).toString(), 'hello', 'getStream');

  const head = await storage.head('rt/a.txt');
  t.equal(head?.size, 5);
  t.equal(head?.contentType, 'text/plain');
  t.ok(head?.lastModified instanceof Date && Math.abs(head.lastModified.getTime() - Date.now()) < 60_000, 'lastModified is now');
  t.equal((await storage.head('rt/b/c.bin'))?.contentType, 'application/octet-stream', 'default content type');
  t.equal(await storage.head('rt/missing'), null);

  t.same((await storage.list('rt/')).map((e) => [e.key, e.size]), [['rt/a.txt', 5], ['rt/b/c.bin', 3], ['rt/b/d.bin', 2], ['rt/stream.bin', 6]]);
  t.same((await storage.list('rt')).map((e) => e.key), ['rt/a.txt', 'rt/b/c.bin', 'rt/b/d.bin', 'rt/stream.bin', 'rtx']);
  t.same(await storage.list('nothing/'), []);

  for (const e of await storage.list('rt')) await storage.delete(e.key);
  await storage.delete('rt/a.txt'); // idempotent, as on S3
  t.same(await storage.list('rt'), []);
  t.equal(await storage.head('rt/a.txt'), null);
});

t.test('missing keys are AppError not_found', async (t) => {
  t.equal(await codeOf(storage.get('missing/x')), 'not_found');
  t.equal(await codeOf(storage.getStream('missing/x')), 'not_found');
  t.equal(await storage.head('missing/x'), null);
});

t.test('a 12 MiB stream goes up as a 3-part multipart upload and comes back intact', async (t) => {
  const data = randomBytes(12 * MiB + 4321);
  const source = Readable.from(
    (function* () {
      for (let off = 0; off < data.length; off += MiB) yield data.subarray(off, off + MiB);
    })(),
  );
  const parts = new Set<number>();
  let lastLoaded = 0;
  const sent = countCommands(storage);
  await storage.upload('big/rec.webm', source, {
    contentType: 'video/webm',
    partSizeBytes: 5 * MiB,
    onProgress: (p) => {
      if (p.part !== undefined) parts.add(p.part);
      lastLoaded = Math.max(lastLoaded, p.loadedBytes);
    },
  });
  sent.stop();
  t.same([...parts].sort(), [1, 2, 3], 'three parts reported');
  t.equal(sent.counts.get('CreateMultipartUploadCommand'), 1, 'a multipart upload was started');
  t.equal(sent.counts.get('UploadPartCommand'), 3, 'three parts were sent');
  t.equal(sent.counts.get('CompleteMultipartUploadCommand'), 1, 'and completed');
  t.notOk(sent.counts.has('PutObjectCommand'), 'no single PUT');
  t.equal(lastLoaded, data.length, 'all bytes reported');
  const head = await storage.head('big/rec.webm');
  t.equal(head?.size, data.length);
  t.equal(head?.contentType, 'video/webm');
  t.equal(sha(await storage.get('big/rec.webm')), sha(data), 'sha256 via get');
  const chunks: Buffer[] = [];
  for await (const c of await storage.getStream('big/rec.webm')) chunks.push(c as Buffer);
  t.equal(sha(Buffer.concat(chunks)), sha(data), 'sha256 via getStream');
  t.equal(await codeOf(storage.upload('big/x', Buffer.alloc(1), { partSizeBytes: MiB })), 'validation_failed', 'parts under 5 MiB');
  await storage.delete('big/rec.webm');
});

t.test('a failing source stream rethrows its own error and stores nothing', async (t) => {
  const boom = new Error('source broke');
  const failing = new Readable({ read() {} });
  failing.push(randomBytes(1024));
  const done = storage.upload('fail/x.bin', failing);
  setImmediate(() => failing.destroy(boom));
  await t.rejects(done, boom);
  t.equal(await storage.head('fail/x.bin'), null);
});

// s3rver checks presigned URLs' expiry but not their SigV4 signatures, so tampering cannot be shown against it;
// these tests check what the URL signs and that a plain HTTP client can use it.
t.test('a signed GET URL serves the bytes to plain fetch', async (t) => {
  const bytes = randomBytes(64 * 1024);
  await storage.put('signed/get.bin', bytes);
  const url = new URL(await storage.signedGetUrl('signed/get.bin', { expiresInSeconds: 60 }));
  t.match(url.href, /^http:\/\/127\.0\.0\.1:\d+\/callplane-test\/signed\/get\.bin\?/);
  t.equal(url.searchParams.get('X-Amz-Expires'), '60');
  t.equal(url.searchParams.get('X-Amz-SignedHeaders'), 'host');
  t.match(url.searchParams.get('X-Amz-Signature'), /^[0-9a-f]{64}$/);
  const res = await fetch(url);
  t.equal(res.status, 200);
  t.equal(sha(Buffer.from(await res.arrayBuffer())), sha(bytes));
  t.match(new URL(await storage.signedGetUrl('signed/get.bin')).searchParams.get('X-Amz-Expires'), '900', 'default ttl from config');
  t.equal(await codeOf(storage.signedGetUrl('signed/get.bin', { expiresInSeconds: 8 * 24 * 3600 })), 'validation_failed');
});

t.test('a signed PUT URL uploads with plain fetch and signs its content type', async (t) => {
  const body = randomBytes(10_000);
  const url = await storage.signedPutUrl('signed/put.mp4', { contentType: 'video/mp4', expiresInSeconds: 60 });
  t.equal(new URL(url).searchParams.get('X-Amz-SignedHeaders'), 'content-type;host', 'the uploader must send this type');
  const res = await fetch(url, { method: 'PUT', body, headers: { 'content-type': 'video/mp4' } });
  t.equal(res.status, 200, await res.text());
  t.equal(sha(await storage.get('signed/put.mp4')), sha(body));
  t.equal((await storage.head('signed/put.mp4'))?.contentType, 'video/mp4');
  const untyped = await storage.signedPutUrl('signed/untyped.bin');
  t.equal(new URL(untyped).searchParams.get('X-Amz-SignedHeaders'), 'host');
  t.equal((await fetch(untyped, { method: 'PUT', body: 'raw' })).status, 200);
  t.equal((await storage.get('signed/untyped.bin')).toString(), 'raw');
});

t.test('list follows continuation tokens across pages', async (t) => {
  const keys = Array.from({ length: 25 }, (_, i) => `page/${String(i).padStart(2, '0')}.txt`);
  await Promise.all(keys.map((k) => storage.put(k, k)));
  await storage.put('pagex/outside.txt', 'x');
  const sent = countCommands(storage);
  const listed = await storage.list('page/', { pageSize: 4 });
  sent.stop();
  t.same(listed.map((e) => e.key), keys, 'all 25 keys, in order, nothing outside the prefix');
  t.equal(sent.counts.get('ListObjectsV2Command'), 7, '25 keys at 4 per page take 7 requests');
  t.same(listed.map((e) => e.size), keys.map((k) => k.length));
  t.equal((await storage.list('page/')).length, 25, 'default page size');
  await Promise.all([...keys, 'pagex/outside.txt'].map((k) => storage.delete(k)));
});

t.test('invalid keys are rejected before any request', async (t) => {
  for (const key of ['', '/abs', '../x', 'a/../b', 'a//b', 'a\u0000b', 'k'.repeat(1025)]) {
    const label = JSON.stringify(key).slice(0, 30);
    t.equal(await codeOf(storage.put(key, 'x')), 'validation_failed', `put ${label}`);
    t.equal(await codeOf(storage.get(key)), 'validation_failed', `get ${label}`);
    t.equal(await codeOf(storage.head(key)), 'validation_failed', `head ${label}`);
    t.equal(await codeOf(storage.delete(key)), 'validation_failed', `delete ${label}`);
    t.equal(await codeOf(storage.signedPutUrl(key)), 'validation_failed', `signedPutUrl ${label}`);
  }
  t.equal(await codeOf(storage.list('/x')), 'validation_failed');
  t.equal(await codeOf(storage.list('x/', { pageSize: 0 })), 'validation_failed');
});

t.test('check: HeadBucket on a live bucket, a missing bucket, and a dead endpoint', async (t) => {
  t.same(await storage.check(), { ok: true, detail: `s3 bucket ${BUCKET} is reachable` });
  const missing = await open(config(endpoint, 'no-such-bucket')).check();
  t.equal(missing.ok, false);
  t.match(missing.detail, /no-such-bucket.*404/);
  const dead = await open(config('http://127.0.0.1:1')).check();
  t.equal(dead.ok, false);
  t.match(dead.detail, /not reachable/);
  t.throws(
    () => open({ ...config(endpoint), s3: { ...config(endpoint).s3, secret_access_key: null } }),
    { code: 'validation_failed' },
    'half a key pair',
  );
});
