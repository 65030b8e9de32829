import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { StorageConfig } from '../../src/config/schema.ts';
import { AppError } from '../../src/shared/errors.ts';
import { createStorage, decodeLocalStoragePath, isLocalStorage, type LocalStorage } from '../../src/storage/index.ts';

const MiB = 1024 * 1024;
const SECRET = 'local-storage-test-secret-0123456789';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof AppError ? err.code : `not an AppError: ${String(err)}`;
  }
}

function config(localDir: string): StorageConfig {
  const s3 = { endpoint: null, region: 'us-east-1', bucket: 'unused', access_key_id: null, secret_access_key: null, force_path_style: true };
  return { driver: 'local', local_dir: localDir, signed_url_ttl_seconds: 900, s3 };
}

/** Stands in for the HTTP route another module owns: it serves signed URLs exactly as the contract says. */
function serveSigned(storage: LocalStorage): Server {
  return createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const key = decodeLocalStoragePath(url.pathname);
      const ok =
        key !== null &&
        storage.verifyLocalSignature(req.method ?? '', key, url.searchParams.get('expires') ?? '', url.searchParams.get('signature') ?? '');
      if (!ok || key === null) return res.writeHead(403).end();
      if (req.method === 'PUT') {
        await storage.put(key, req, { contentType: req.headers['content-type'] ?? 'application/octet-stream' });
        return res.writeHead(200).end();
      }
      const head = await storage.head(key);
      if (!head) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': head.contentType ?? 'application/octet-stream', 'content-length': head.size });
      (await storage.getStream(key)).pipe(res);
    })().catch(() => res.writeHead(500).end());
  });
}

const root = await mkdtemp(join(tmpdir(), 'callplane-storage-local-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
let baseUrl = 'http://unset.invalid';
const dir = join(root, 'store');
const storage = createStorage(config(dir), { signingSecret: SECRET, publicBaseUrl: () => baseUrl });
t.teardown(() => storage.close());
if (!isLocalStorage(storage)) throw new Error('expected the local driver');
const local = storage;

t.test('put/get/head/list/delete roundtrip', async (t) => {
  t.equal(storage.driver, 'local');
  await storage.put('rt/a.txt', 'hello', { contentType: 'text/plain' });
  await storage.put('rt/b/c.bin', Buffer.from([1, 2, 3]));
  await storage.put('rt/b/d.bin', new Uint8Array([4, 5]));
  await storage.put('rt/stream.bin', Readable.from([Buffer.from('str'), Buffer.from('eam')]));
  await storage.put('rtx', 'outside the prefix');

  t.equal((await storage.get('rt/a.txt')).toString(), 'hello');
  t.same([...(await storage.get('rt/b/d.bin'))], [4, 5]);
  t.equal((await storage.get('rt/stream.bin')).toString(), 'stream');

  const head = await storage.head('rt/a.txt');
  t.equal(head?.size, 5);
  t.equal(head?.contentType, 'text/plain');
  t.ok(head?.lastModified instanceof Date && Math.abs(head.lastModified.getTime() - Date.now()) < 60_000, 'lastModified is now');
  t.equal((await storage.head('rt/b/c.bin'))?.contentType, 'application/octet-stream', 'default content type');
  t.equal(await storage.head('rt/missing'), null);
  t.equal(await storage.head('rt/b'), null, 'a directory of keys is not an object');

  const listed = await storage.list('rt/');
  t.same(listed.map((e) => [e.key, e.size]), [['rt/a.txt', 5], ['rt/b/c.bin', 3], ['rt/b/d.bin', 2], ['rt/stream.bin', 6]]);
  t.same((await storage.list('rt/b/')).map((e) => e.key), ['rt/b/c.bin', 'rt/b/d.bin']);
  t.same((await storage.list('rt')).map((e) => e.key), ['rt/a.txt', 'rt/b/c.bin', 'rt/b/d.bin', 'rt/stream.bin', 'rtx'], 'partial segment');
  t.same(await storage.list('nothing/'), []);

  // Overwrite replaces bytes and content type.
  await storage.put('rt/a.txt', '{"x":1}', { contentType: 'application/json' });
  t.equal((await storage.head('rt/a.txt'))?.contentType, 'application/json');
  t.equal((await storage.get('rt/a.txt')).toString(), '{"x":1}');

  for (const e of await storage.list('rt')) await storage.delete(e.key);
  await storage.delete('rt/a.txt'); // idempotent
  t.equal(await codeOf(storage.get('rt/a.txt')), 'not_found');
  t.same(await storage.list('rt'), []);
  t.same(await readdir(join(dir, 'objects')), [], 'emptied directories are pruned');
});

t.test('missing keys are not_found; a file and a directory of keys cannot share a name', async (t) => {
  t.equal(await codeOf(storage.get('nope/x')), 'not_found');
  t.equal(await codeOf(storage.getStream('nope/x')), 'not_found');
  await storage.put('conf/x', 'file');
  t.equal(await codeOf(storage.get('conf')), 'not_found', 'directory is not an object');
  t.equal(await codeOf(storage.getStream('conf')), 'not_found');
  t.equal(await codeOf(storage.put('conf/x/y', 'under a file')), 'invalid_state');
  t.equal(await codeOf(storage.put('conf', 'over a directory')), 'invalid_state');
  t.equal((await storage.get('conf/x')).toString(), 'file', 'the existing object is untouched');
  await storage.delete('conf'); // names a directory: nothing to delete, no error
  t.equal((await storage.get('conf/x')).toString(), 'file');
  await storage.delete('conf/x');
});

t.test('stream upload lands atomically, reports parts, leaves no temp files', async (t) => {
  const data = randomBytes(12 * MiB + 321);
  const body = new PassThrough();
  const parts: number[] = [];
  let firstPart!: () => void;
  const firstPartSeen = new Promise<void>((resolve) => (firstPart = resolve));
  const done = storage.upload('up/big.bin', body, {
    contentType: 'video/webm',
    partSizeBytes: 5 * MiB,
    onProgress: (p) => {
      parts.push(p.part ?? -1);
      firstPart();
    },
  });
  body.write(data.subarray(0, 6 * MiB));
  await firstPartSeen;
  t.equal(await storage.head('up/big.bin'), null, 'not visible while uploading');
  t.same(await storage.list('up/'), [], 'temp file not listed');
  body.end(data.subarray(6 * MiB));
  await done;

  t.same(parts, [1, 2, 3]);
  const back = await storage.get('up/big.bin');
  t.equal(sha(back), sha(data), 'sha256 of the stored bytes');
  const chunks: Buffer[] = [];
  for await (const c of await storage.getStream('up/big.bin')) chunks.push(c as Buffer);
  t.equal(sha(Buffer.concat(chunks)), sha(data), 'sha256 through getStream');
  t.same(await storage.head('up/big.bin').then((h) => [h?.size, h?.contentType]), [data.length, 'video/webm']);
  t.same(await readdir(join(dir, 'tmp')), [], 'no temp files left');
});

t.test('a failing source stream rethrows its error and stores nothing', async (t) => {
  const boom = new Error('source broke');
  const failing = new Readable({ read() {} });
  failing.push(randomBytes(1024));
  const done = storage.upload('fail/x.bin', failing);
  setImmediate(() => failing.destroy(boom));
  await t.rejects(done, boom);
  t.equal(await storage.head('fail/x.bin'), null);
  t.same(await readdir(join(dir, 'tmp')), [], 'temp file removed');
});

t.test('signed URLs: verify accepts fresh ones, rejects expired and tampered ones, and serve over HTTP', async (t) => {
  const server = serveSigned(local);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  const key = 'signed/a b/ü.bin';
  const bytes = randomBytes(4096);
  await storage.put(key, bytes);
  const before = Math.floor(Date.now() / 1000);
  const url = new URL(await storage.signedGetUrl(key, { expiresInSeconds: 120 }));
  t.equal(url.origin, baseUrl.replace(/\/$/, ''));
  t.equal(url.pathname, '/v1/storage/signed/a%20b/%C3%BC.bin');
  const expires = Number(url.searchParams.get('expires'));
  t.ok(expires >= before + 120 && expires <= before + 122, 'expires = now + ttl');
  const sig = url.searchParams.get('signature') ?? '';

  t.ok(local.verifyLocalSignature('GET', key, String(expires), sig), 'fresh');
  t.notOk(local.verifyLocalSignature('GET', key, expires, sig, new Date((expires + 1) * 1000)), 'expired');
  t.notOk(local.verifyLocalSignature('GET', key, expires, sig.replace(/^./, (c) => (c === '0' ? '1' : '0'))), 'tampered signature');
  t.notOk(local.verifyLocalSignature('PUT', key, expires, sig), 'GET signature used for PUT');
  t.notOk(local.verifyLocalSignature('GET', 'signed/other', expires, sig), 'other key');

  const res = await fetch(url);
  t.equal(res.status, 200);
  t.equal(sha(Buffer.from(await res.arrayBuffer())), sha(bytes), 'signed GET returns the bytes');
  const tampered = new URL(url);
  tampered.searchParams.set('expires', String(expires + 1));
  t.equal((await fetch(tampered)).status, 403, 'extended expiry is refused');

  const putUrl = await storage.signedPutUrl('signed/put.json', { contentType: 'application/json' });
  const put = await fetch(putUrl, { method: 'PUT', body: '{"ok":true}', headers: { 'content-type': 'application/json' } });
  t.equal(put.status, 200);
  t.equal((await storage.get('signed/put.json')).toString(), '{"ok":true}');
  t.equal((await storage.head('signed/put.json'))?.contentType, 'application/json');
  t.equal((await fetch(putUrl)).status, 403, 'a PUT URL does not allow GET');
  t.equal(await codeOf(storage.signedGetUrl(key, { expiresInSeconds: 0 })), 'validation_failed');
});

t.test('invalid keys are rejected by every operation', async (t) => {
  for (const key of ['', '/abs', '../x', 'a/../b', 'a//b', 'a\u0000b', 'k'.repeat(1025)]) {
    const label = JSON.stringify(key).slice(0, 30);
    t.equal(await codeOf(storage.put(key, 'x')), 'validation_failed', `put ${label}`);
    t.equal(await codeOf(storage.upload(key, Buffer.from('x'))), 'validation_failed', `upload ${label}`);
    t.equal(await codeOf(storage.get(key)), 'validation_failed', `get ${label}`);
    t.equal(await codeOf(storage.head(key)), 'validation_failed', `head ${label}`);
    t.equal(await codeOf(storage.delete(key)), 'validation_failed', `delete ${label}`);
    t.equal(await codeOf(storage.signedGetUrl(key)), 'validation_failed', `signedGetUrl ${label}`);
  }
  t.equal(await codeOf(storage.list('../')), 'validation_failed');
  // 1024 bytes in segments short enough for the filesystem is fine.
  const longKey = Array.from({ length: 5 }, () => 'k'.repeat(200)).join('/') + '/' + 'k'.repeat(19);
  t.equal(Buffer.byteLength(longKey), 1024);
  await storage.put(longKey, 'long');
  t.equal((await storage.get(longKey)).toString(), 'long');
  await storage.delete(longKey);
});

t.test('check reports a writable directory, and a path that cannot be one', async (t) => {
  t.same(await storage.check(), { ok: true, detail: `local directory ${dir} is writable` });
  const file = join(root, 'a-file');
  await writeFile(file, 'x');
  const broken = createStorage(config(file), { signingSecret: SECRET, publicBaseUrl: () => baseUrl });
  const result = await broken.check();
  t.equal(result.ok, false);
  t.match(result.detail, /not writable: .*(ENOTDIR|EEXIST)/);
  t.equal(await codeOf(broken.put('x', 'y')), 'service_unavailable', 'writes fail as an outage, not a 500');
  t.ok((await stat(file)).isFile(), 'the file is untouched');
  t.throws(() => createStorage(config(dir), { signingSecret: 'short', publicBaseUrl: () => baseUrl }), { code: 'validation_failed' });
});
