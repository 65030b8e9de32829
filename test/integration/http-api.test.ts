import t from 'tap';
import { once } from 'node:events';
import { connect } from 'node:net';
import { SignJWT, generateKeyPair } from 'jose';
import { ManualClock } from '../../src/shared/clock.ts';
import { startTestServer } from '../helpers/server.ts';

// The server's clock is injected so token expiry can be reached without waiting.
const clock = new ManualClock(Date.now());
const server = await startTestServer(t, {}, { clock });
const created = await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Ann Host', role: 'host', default_rate: '2.00', currency: 'usd' } });
const userId: string = created.body.user.id;
const minted = await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: userId } });
const token: string = minted.body.access_token;

// Every authenticated endpoint, with a request that is valid apart from what each case breaks.
interface Endpoint {
  method: string;
  path: string;
  body?: Record<string, unknown>;
  wrongTypes?: Record<string, unknown>;
  query?: { wrongType: string };
}
const endpoints: Endpoint[] = [
  { method: 'POST', path: '/v1/users', body: { display_name: 'Bob' }, wrongTypes: { display_name: 42, privacy_mode: 'yes' } },
  { method: 'GET', path: '/v1/users', query: { wrongType: 'per_page=lots' } },
  { method: 'GET', path: '/v1/users/me' },
  { method: 'GET', path: `/v1/users/${userId}` },
  { method: 'PATCH', path: `/v1/users/${userId}`, body: { company_name: 'Acme' }, wrongTypes: { company_name: ['Acme'] } },
  { method: 'POST', path: '/v1/auth/token', body: { user_id: userId }, wrongTypes: { user_id: 7, ttl_seconds: 'long' } },
];

t.test('creating a user returns it with snake_case fields and money as a decimal string', async (t) => {
  t.equal(created.status, 201);
  t.match(created.body.user, { role: 'host', display_name: 'Ann Host', default_rate: '2.00', currency: 'usd', privacy_mode: 0 });
  t.match(created.body.user.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  t.equal(minted.status, 201);
  t.ok(Date.parse(minted.body.expires_at) > Date.now(), 'token expires in the future');
});

for (const endpoint of endpoints.filter((e) => e.body)) {
  t.test(`${endpoint.method} ${endpoint.path}: body validation`, async (t) => {
    const malformed = await server.api(endpoint.path, { method: endpoint.method, apiKey: true, rawBody: '{"display_name": "x",' });
    t.equal(malformed.status, 400, 'malformed JSON is 400');
    t.equal(malformed.body.error.code, 'validation_failed');
    t.match(malformed.body.error.details.errors[0].message, /Malformed JSON/);

    const wrong = await server.api(endpoint.path, { method: endpoint.method, apiKey: true, body: { ...endpoint.body, ...endpoint.wrongTypes } });
    t.equal(wrong.status, 400, 'wrong types are 400');
    t.equal(wrong.body.error.code, 'validation_failed');
    const wrongPaths = wrong.body.error.details.errors.map((e: { path: string }) => e.path);
    for (const field of Object.keys(endpoint.wrongTypes!)) t.ok(wrongPaths.includes(`/${field}`), `details name /${field}`);

    const unknown = await server.api(endpoint.path, { method: endpoint.method, apiKey: true, body: { ...endpoint.body, surprise: true } });
    t.equal(unknown.status, 400, 'unknown fields are 400');
    t.equal(unknown.body.error.code, 'validation_failed');
    t.ok(unknown.body.error.details.errors.some((e: { path: string }) => e.path === '/surprise'), 'details name the unknown field');
  });
}

for (const endpoint of endpoints.filter((e) => e.query)) {
  t.test(`${endpoint.method} ${endpoint.path}: query validation`, async (t) => {
    const wrong = await server.api(`${endpoint.path}?${endpoint.query!.wrongType}`, { apiKey: true });
    t.equal(wrong.status, 400);
    t.equal(wrong.body.error.details.errors[0].in, 'query');
    const unknown = await server.api(`${endpoint.path}?surprise=1`, { apiKey: true });
    t.equal(unknown.status, 400);
    t.equal(unknown.body.error.details.errors[0].path, '/surprise');
  });
}

t.test('every authenticated endpoint refuses missing, expired and forged tokens with 401', async (t) => {
  // Expired: signed by the server's own key (minted through the server's TokenService) but in the past.
  const expiredToken = (await server.ctx.tokens.mint({ userId, role: 'admin', ttlSeconds: 60 })).accessToken;
  // Forged: right claims and shape, wrong key.
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const forged = await new SignJWT({ role: 'admin' })
    .setProtectedHeader({ alg: 'EdDSA', kid: 'whatever' })
    .setSubject(userId)
    .setIssuer('callplane')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(privateKey);
  // Tampered: a real token whose payload was edited (role escalated).
  const [header, payload, signature] = token.split('.');
  const escalated = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), role: 'admin' })).toString('base64url');
  const tampered = `${header}.${escalated}.${signature}`;

  for (const endpoint of endpoints) {
    const body = endpoint.body;
    const missing = await server.api(endpoint.path, { method: endpoint.method, ...(body ? { body } : {}) });
    t.equal(missing.status, 401, `${endpoint.method} ${endpoint.path} without credentials`);
    t.equal(missing.body.error.code, 'unauthorized');
    for (const [label, bad] of [['forged', forged], ['tampered', tampered], ['garbage', 'not.a.jwt']] as const) {
      const response = await server.api(endpoint.path, { method: endpoint.method, token: bad, ...(body ? { body } : {}) });
      t.equal(response.status, 401, `${endpoint.method} ${endpoint.path} with a ${label} token`);
    }
    const wrongKey = await server.api(endpoint.path, { method: endpoint.method, headers: { 'x-api-key': 'nope' }, ...(body ? { body } : {}) });
    t.equal(wrongKey.status, 401, `${endpoint.method} ${endpoint.path} with a wrong API key`);
  }
  const before = clock.nowMs();
  clock.advance(61_000);
  try {
    for (const endpoint of endpoints) {
      const response = await server.api(endpoint.path, { method: endpoint.method, token: expiredToken, ...(endpoint.body ? { body: endpoint.body } : {}) });
      t.equal(response.status, 401, `${endpoint.method} ${endpoint.path} with an expired token`);
      t.match(response.body.error.message, /expired/i);
    }
    const fresh = await server.ctx.tokens.mint({ userId, role: 'user', ttlSeconds: 60 });
    t.equal((await server.api('/v1/users/me', { token: fresh.accessToken })).status, 200, 'a token minted now still works');
  } finally {
    clock.set(before);
  }
});

t.test('user tokens: /users/me works, admin endpoints are forbidden to non-admins', async (t) => {
  const me = await server.api('/v1/users/me', { token });
  t.equal(me.status, 200);
  t.equal(me.body.user.id, userId);
  const list = await server.api('/v1/users', { token });
  t.equal(list.status, 403);
  t.equal(list.body.error.code, 'forbidden');
  const meWithKey = await server.api('/v1/users/me', { apiKey: true });
  t.equal(meWithKey.status, 403, 'the API key is not a user');
});

t.test('users: list is paginated, patch updates, unknown ids are 404', async (t) => {
  for (const name of ['C1', 'C2', 'C3']) await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: name } });
  const page = await server.api('/v1/users?page=2&per_page=2', { apiKey: true });
  t.equal(page.status, 200);
  t.equal(page.body.success, true);
  t.same(page.body.pagination, { page: 2, per_page: 2, total: page.body.pagination.total, total_pages: Math.ceil(page.body.pagination.total / 2) });
  t.ok(page.body.pagination.total >= 4);
  t.equal(page.body.data.length, 2);
  const tooMany = await server.api('/v1/users?per_page=101', { apiKey: true });
  t.equal(tooMany.status, 400, 'per_page is at most 100');

  const patched = await server.api(`/v1/users/${userId}`, { method: 'PATCH', apiKey: true, body: { company_name: 'Acme', privacy_mode: 1, avatar3d: { asset_id: 'a1' } } });
  t.equal(patched.status, 200);
  t.match(patched.body.user, { company_name: 'Acme', privacy_mode: 1, avatar3d: { asset_id: 'a1' } });
  const missing = await server.api('/v1/users/01ARZ3NDEKTSV4RRFFQ69G5FAV', { apiKey: true });
  t.equal(missing.status, 404);
  t.equal(missing.body.error.code, 'not_found');
  const badId = await server.api('/v1/users/not-an-id', { apiKey: true });
  t.equal(badId.status, 400);
  const tokenForMissing = await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: '01ARZ3NDEKTSV4RRFFQ69G5FAV' } });
  t.equal(tokenForMissing.status, 404);
});

t.test('unknown routes get a JSON 404 and oversized bodies a 413', async (t) => {
  const unknown = await server.api('/v1/nothing-here');
  t.equal(unknown.status, 404);
  t.equal(unknown.body.error.code, 'not_found');
  t.match(unknown.headers.get('content-type'), /application\/json/);
  const huge = await server.api('/v1/users', { method: 'POST', apiKey: true, rawBody: JSON.stringify({ display_name: 'x'.repeat(2 * 1024 * 1024) }) });
  t.equal(huge.status, 413);
  t.equal(huge.body.error.code, 'payload_too_large');
  const after = await server.api('/healthz');
  t.equal(after.status, 200, 'the server keeps serving after a 413');
});

t.test('over-limit bodies: Node fetch reads the 413 envelope at any size (lingering close)', async (t) => {
  // Sized from the server's own limit (1 MiB by default): 1.5, 5 and 50 MiB on the defaults.
  const limit = server.ctx.config.http.max_body_bytes;
  const headers = { 'content-type': 'application/json', 'x-api-key': server.apiKey };
  for (const factor of [1.5, 5, 50]) {
    const response = await fetch(`${server.baseUrl}/v1/users`, { method: 'POST', headers, body: Buffer.alloc(Math.round(factor * limit), 0x20) });
    t.equal(response.status, 413, `${factor} × the limit: 413`);
    t.equal(response.headers.get('connection'), 'close');
    const body = await response.json();
    t.equal(body.error.code, 'payload_too_large', `${factor} × the limit: the error envelope`);
  }

  // No Content-Length (a chunked upload): the limit is crossed while reading.
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= 5 * limit) controller.close();
      else {
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      }
    },
  });
  // duplex: Node's fetch needs it for a stream body; the DOM typings do not know it yet.
  const chunked = await fetch(`${server.baseUrl}/v1/users`, { method: 'POST', headers, body: stream, duplex: 'half' } as RequestInit);
  t.equal(chunked.status, 413);
  t.equal(((await chunked.json()) as { error: { code: string } }).error.code, 'payload_too_large');

  const after = await server.api('/healthz');
  t.equal(after.status, 200, 'the server keeps serving');
});

t.test('over-limit bodies: a client that reads only after sending all of its body still gets the 413', async (t) => {
  const body = Buffer.alloc(5 * server.ctx.config.http.max_body_bytes, 0x20);
  const socket = connect(server.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.pause();
  const head = `POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Api-Key: ${server.apiKey}\r\nContent-Length: ${body.length}\r\n\r\n`;
  // Before the drain the server reset the connection under such a client: this write failed with EPIPE.
  await new Promise<void>((resolve, reject) => socket.write(Buffer.concat([Buffer.from(head), body]), (error) => (error ? reject(error) : resolve())));
  socket.resume();
  const received: Buffer[] = [];
  for await (const data of socket) received.push(data as Buffer);
  const text = Buffer.concat(received).toString('utf8');
  const [headPart, bodyPart] = text.split('\r\n\r\n');
  t.match(headPart, /^HTTP\/1\.1 413 /);
  t.match(headPart, /\r\nConnection: close(\r\n|$)/i);
  t.equal(Number(/\r\nContent-Length: (\d+)/i.exec(headPart ?? '')?.[1]), Buffer.byteLength(bodyPart ?? ''), 'Content-Length frames the body');
  t.equal(JSON.parse(bodyPart ?? '').error.code, 'payload_too_large');
});

t.test('ttl_seconds beyond the configured maximum is refused', async (t) => {
  const response = await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: userId, ttl_seconds: 10 * 86400 } });
  t.equal(response.status, 400);
  t.equal(response.body.error.code, 'validation_failed');
});

t.test('webhook endpoints on loopback, private or link-local addresses are refused by default', async (t) => {
  for (const url of ['http://127.0.0.1:9000/hooks', 'http://localhost:9000/hooks', 'http://192.168.0.10/hooks', 'http://169.254.169.254/latest']) {
    const response = await server.api('/v1/webhook-endpoints', { method: 'POST', apiKey: true, body: { url } });
    t.equal(response.status, 400, url);
    t.equal(response.body.error.code, 'validation_failed');
    t.match(response.body.error.message, /loopback, link-local or private/);
  }
  const listed = await server.api('/v1/webhook-endpoints', { apiKey: true });
  t.equal(listed.body.pagination.total, 0, 'nothing was stored');
});
