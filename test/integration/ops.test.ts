import t from 'tap';
import { once } from 'node:events';
import { Validator } from '@seriousme/openapi-schema-validator';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { startTestServer } from '../helpers/server.ts';

const server = await startTestServer(t, { media: { workers: 2 } });

t.test('healthz is 200 and readyz lists the database, every media worker and storage', async (t) => {
  const health = await server.api('/healthz');
  t.equal(health.status, 200);
  t.same(health.body, { status: 'ok' });
  const ready = await server.api('/readyz');
  t.equal(ready.status, 200);
  t.equal(ready.body.status, 'ready');
  t.match(ready.body.components.database, [{ name: 'database', ok: true }]);
  t.equal(ready.body.components.media_workers.length, 2, 'one entry per worker');
  t.ok(ready.body.components.media_workers.every((w: { ok: boolean; pid: number }) => w.ok && w.pid > 0));
  t.match(ready.body.components.storage, [{ name: 'storage (local)', ok: true }]);
});

t.test('a media worker killed with SIGKILL is replaced and readyz is green again', async (t) => {
  const before = (await server.api('/readyz')).body.components.media_workers as Array<{ pid: number }>;
  const victim = before[0]!.pid;
  const replaced = once(server.ctx.media, 'workerreplaced');
  process.kill(victim, 'SIGKILL');
  const [event] = await replaced;
  t.not(event.pid, victim, 'the replacement is a new process');
  const after = await server.api('/readyz');
  t.equal(after.status, 200);
  const pids = after.body.components.media_workers.map((w: { pid: number }) => w.pid);
  t.notOk(pids.includes(victim), 'the dead pid is gone');
  t.equal(pids.length, 2);
  const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
  t.match(metrics, /callplane_media_worker_deaths_total\{[^}]*\} 1/, 'the death is counted');
});

t.test('/metrics parses as Prometheus text and has process, HTTP and worker metrics', async (t) => {
  const response = await fetch(`${server.baseUrl}/metrics`);
  t.equal(response.status, 200);
  t.match(response.headers.get('content-type'), /text\/plain/);
  const families = parsePrometheusTextFormat(await response.text()) as Array<{ name: string; type: string; metrics: unknown[] }>;
  const names = new Set(families.map((f) => f.name));
  for (const name of ['callplane_http_requests_total', 'callplane_http_request_duration_seconds', 'callplane_media_workers', 'callplane_media_worker_consumers', 'callplane_process_cpu_seconds_total']) {
    t.ok(names.has(name), `has ${name}`);
  }
  const requests = families.find((f) => f.name === 'callplane_http_requests_total')!;
  t.equal(requests.type, 'COUNTER');
  t.ok(requests.metrics.length > 0, 'requests so far are counted');
});

t.test('/v1/openapi.json is a valid OpenAPI 3.1 document covering the routes', async (t) => {
  const response = await server.api('/v1/openapi.json');
  t.equal(response.status, 200);
  const validator = new Validator();
  const result = await validator.validate(response.body);
  t.same(result.errors ?? [], [], 'no validation errors');
  t.equal(result.valid, true);
  t.equal(validator.version, '3.1');
  t.ok(response.body.paths['/v1/users'].post.requestBody, 'bodies are described');
  t.ok(response.body.paths['/v1/users/{id}'].patch, 'path parameters use OpenAPI syntax');
});

t.test('local storage: signed GET and PUT URLs work over HTTP; unsigned or tampered ones are refused', async (t) => {
  await server.ctx.storage.put('recordings/call-1/track.webm', Buffer.from('media bytes'), { contentType: 'video/webm' });
  const getUrl = await server.ctx.storage.signedGetUrl('recordings/call-1/track.webm');
  t.ok(getUrl.startsWith(server.baseUrl), 'the URL points at this server');
  const got = await fetch(getUrl);
  t.equal(got.status, 200);
  t.equal(got.headers.get('content-type'), 'video/webm');
  t.equal(await got.text(), 'media bytes');

  const tampered = await fetch(getUrl.replace('track.webm', 'other.webm'));
  t.equal(tampered.status, 403);
  const unsigned = await fetch(`${server.baseUrl}/v1/storage/recordings/call-1/track.webm`);
  t.equal(unsigned.status, 403);
  t.equal(((await unsigned.json()) as { error: { code: string } }).error.code, 'forbidden');

  const putUrl = await server.ctx.storage.signedPutUrl('uploads/u1/photo.png', { contentType: 'image/png' });
  const body = Buffer.alloc(3 * 1024 * 1024, 7);
  const put = await fetch(putUrl, { method: 'PUT', body, headers: { 'content-type': 'image/png' } });
  t.equal(put.status, 200);
  const stored = await server.ctx.storage.get('uploads/u1/photo.png');
  t.equal(stored.length, body.length);
  t.ok(stored.equals(body), 'the uploaded bytes are stored');
  const putWithGetSignature = await fetch(getUrl, { method: 'PUT', body: 'x' });
  t.equal(putWithGetSignature.status, 403, 'a GET signature does not allow PUT');
});

t.test('graceful stop: readyz reports shutting down and new requests are refused', async (t) => {
  const other = await startTestServer(t);
  const stopping = other.stop();
  await stopping;
  await t.rejects(fetch(`${other.baseUrl}/healthz`), 'the listener is closed after stop');
  await other.stop(); // twice is safe
});
