/**
 * The demo client's bundle and its static serving (src/http/routes/web.ts), on a bare HttpServer:
 * content types, caching, path traversal, the 503 when the bundle is missing, and the page booting
 * in real Chromium without errors.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpServer } from '../../src/http/server.ts';
import { webRoutes, assetPathFromUrl } from '../../src/http/routes/web.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { browserTest, ensureWebBuilt, launchClient, openDemo, pageState } from './helpers/browser.ts';

const distDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/web/dist');

async function serve(dir: string): Promise<string> {
  const http = new HttpServer({
    logger: silentLogger(),
    maxBodyBytes: 1024 * 1024,
    trustProxy: false,
    publicUrl: null,
    authenticate: async () => null,
  });
  webRoutes(http, { distDir: dir });
  const port = await http.listen('127.0.0.1', 0);
  t.teardown(() => http.close(0));
  return `http://127.0.0.1:${port}`;
}

/** A GET with the path sent exactly as given (fetch would normalise `..`). */
function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

ensureWebBuilt();

t.test('asset paths: no traversal, no hidden files', async (t) => {
  t.equal(assetPathFromUrl('/assets/app.js'), 'app.js');
  t.equal(assetPathFromUrl('/assets/sub/x.css'), 'sub/x.css');
  for (const bad of ['/assets/../package.json', '/assets/%2e%2e/package.json', '/assets/.build.json', '/assets/a//b', '/assets/', '/assets/%zz', '/assets/a%00b', '/assets/..%5c..%5cx', '/other/app.js']) {
    t.equal(assetPathFromUrl(bad), null, bad);
  }
});

t.test('serves the built bundle', async (t) => {
  const base = await serve(distDir);

  const index = await fetch(`${base}/`);
  t.equal(index.status, 200);
  t.match(index.headers.get('content-type'), /^text\/html/);
  t.equal(index.headers.get('cache-control'), 'no-cache');
  const html = await index.text();
  const script = /src="(\/assets\/app\.js\?v=[0-9a-f]+)"/.exec(html)?.[1];
  const style = /href="(\/assets\/app\.css\?v=[0-9a-f]+)"/.exec(html)?.[1];
  t.ok(script, 'index.html loads a versioned app.js');
  t.ok(style, 'index.html loads a versioned app.css');

  const js = await fetch(`${base}${script}`);
  t.equal(js.status, 200);
  t.match(js.headers.get('content-type'), /^text\/javascript/);
  t.match(js.headers.get('cache-control'), /immutable/);
  t.ok((await js.text()).length > 10_000, 'app.js is the bundle');
  const css = await fetch(`${base}${style}`);
  t.match(css.headers.get('content-type'), /^text\/css/);

  const etag = index.headers.get('etag')!;
  t.ok(etag, 'index.html has an ETag');
  const again = await fetch(`${base}/`, { headers: { 'if-none-match': etag } });
  t.equal(again.status, 304, 'a matching ETag answers 304');

  const head = await fetch(`${base}/assets/app.js`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers.get('cache-control'), 'no-cache', 'unversioned URLs are revalidated');

  const missing = await fetch(`${base}/assets/nope.js`);
  t.equal(missing.status, 404);
  t.equal((await missing.json()).error.code, 'not_found');

  for (const path of ['/assets/../package.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/.build.json', '/assets/..%2f..%2fpackage.json']) {
    const answer = await rawGet(base, path);
    t.equal(answer.status, 404, `${path} is not served`);
    t.notMatch(answer.body, /"name"\s*:\s*"callplane"/, `${path} does not leak package.json`);
  }
});

t.test('a missing bundle answers 503 with how to build it', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'callplane-nodist-'));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  const base = await serve(empty);
  const answer = await fetch(`${base}/`);
  t.equal(answer.status, 503);
  const body = await answer.json();
  t.equal(body.error.code, 'service_unavailable');
  t.match(body.error.message, /demo client not built: run npm run setup/);
  t.equal((await fetch(`${base}/assets/app.js`)).status, 404);
});

browserTest(t, 'the page boots in Chromium', async (t) => {
  const base = await serve(distDir);
  const client = await launchClient(t, 'Boot');
  await openDemo(client, base);
  t.equal(await pageState(client), 'signin', 'a new visitor sees the sign-in form');
  t.ok(await client.page.getByTestId('login-name').isVisible(), 'the name field is visible');
  const debug = await client.page.evaluate(() => ({
    notifications: Array.isArray(window.callplane.notifications),
    session: window.callplane.session,
    state: window.callplane.state,
  }));
  t.same(debug, { notifications: true, session: null, state: 'signin' }, 'window.callplane is there');
  const pageErrors = client.logs.filter((line) => line.includes('pageerror'));
  t.same(pageErrors, [], 'no uncaught errors');
});
