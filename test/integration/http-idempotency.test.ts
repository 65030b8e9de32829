import t from 'tap';
import { requestFingerprint } from '../../src/http/idempotency.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { startTestServer } from '../helpers/server.ts';

const clock = new ManualClock(Date.now());
const server = await startTestServer(t, { rate_limits: { enabled: true, token: { per_ip: 1000, per_user: 1000, window_seconds: 60 } } }, { clock });

async function countUsers(): Promise<number> {
  const row = await server.ctx.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

t.test('the same key and body replays the first response and does the work once', async (t) => {
  const before = await countUsers();
  const headers = { 'x-idempotency-key': 'create-dana-1' };
  const first = await server.api('/v1/users', { method: 'POST', apiKey: true, headers, body: { display_name: 'Dana', role: 'host' } });
  t.equal(first.status, 201);
  // Same JSON with its keys in another order is the same request.
  const second = await server.api('/v1/users', { method: 'POST', apiKey: true, headers, body: { role: 'host', display_name: 'Dana' } });
  t.equal(second.status, 201);
  t.same(second.body, first.body, 'the replay is the stored response');
  t.equal(second.headers.get('idempotent-replayed'), 'true');
  t.equal(await countUsers(), before + 1, 'one user was created');
});

t.test('the same key with a different body is 409 idempotency_conflict', async (t) => {
  const headers = { 'x-idempotency-key': 'create-eve-1' };
  const first = await server.api('/v1/users', { method: 'POST', apiKey: true, headers, body: { display_name: 'Eve' } });
  t.equal(first.status, 201);
  const before = await countUsers();
  const conflicting = await server.api('/v1/users', { method: 'POST', apiKey: true, headers, body: { display_name: 'Mallory' } });
  t.equal(conflicting.status, 409);
  t.equal(conflicting.body.error.code, 'idempotency_conflict');
  t.equal(await countUsers(), before, 'nothing was created');
});

t.test('a duplicate while the first is still running is 409 request_in_progress', async (t) => {
  // The first request is "still running" in this process: its key is reserved in Postgres exactly as begin() leaves it.
  const begun = await server.ctx.db
    .insertInto('idempotency_keys')
    .values({ caller: 'api_key', key: 'slow-1', method: 'POST', path: '/v1/users', request_hash: requestFingerprint('POST', '/v1/users', { display_name: 'Frank' }), state: 'in_progress', instance_id: server.ctx.instanceId, expires_at: new Date(Date.now() + 3600_000) })
    .returning('key')
    .executeTakeFirst();
  t.ok(begun);
  const before = await countUsers();
  const duplicate = await server.api('/v1/users', { method: 'POST', apiKey: true, headers: { 'x-idempotency-key': 'slow-1' }, body: { display_name: 'Frank' } });
  t.equal(duplicate.status, 409);
  t.equal(duplicate.body.error.code, 'request_in_progress');
  t.equal(await countUsers(), before);
});

t.test('two concurrent requests with one key: one runs, the other is refused or replayed', async (t) => {
  const before = await countUsers();
  const headers = { 'x-idempotency-key': 'race-1' };
  const results = await Promise.all(
    Array.from({ length: 8 }, () => server.api('/v1/users', { method: 'POST', apiKey: true, headers, body: { display_name: 'Racer' } })),
  );
  const created = results.filter((r) => r.status === 201);
  const inProgress = results.filter((r) => r.status === 409 && r.body.error.code === 'request_in_progress');
  t.equal(created.length + inProgress.length, results.length, 'each answer is a 201 (first or replay) or request_in_progress');
  t.ok(created.length >= 1);
  t.equal(new Set(created.map((r) => r.body.user.id)).size, 1, 'every 201 carries the same user');
  t.equal(await countUsers(), before + 1, 'the user was created once');
});

t.test('keys are per caller, and errors are replayed too', async (t) => {
  const user = await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Gina' } });
  const token = (await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: user.body.user.id } })).body.access_token;
  const headers = { 'x-idempotency-key': 'shared-key' };
  const asKey = await server.api('/v1/auth/token', { method: 'POST', apiKey: true, headers, body: { user_id: '01ARZ3NDEKTSV4RRFFQ69G5FAV' } });
  t.equal(asKey.status, 404, 'the first answer is an error');
  const replayed = await server.api('/v1/auth/token', { method: 'POST', apiKey: true, headers, body: { user_id: '01ARZ3NDEKTSV4RRFFQ69G5FAV' } });
  t.equal(replayed.status, 404);
  t.equal(replayed.headers.get('idempotent-replayed'), 'true', 'a client error is stored and replayed');
  const asUser = await server.api('/v1/auth/token', { method: 'POST', token, headers, body: { user_id: user.body.user.id } });
  t.equal(asUser.status, 403, 'another caller with the same key runs its own request (a user cannot mint tokens)');
  t.not(asUser.headers.get('idempotent-replayed'), 'true');
});

t.test('a malformed idempotency key is refused', async (t) => {
  const response = await server.api('/v1/users', { method: 'POST', apiKey: true, headers: { 'x-idempotency-key': 'x'.repeat(300) }, body: { display_name: 'Hal' } });
  t.equal(response.status, 400);
  t.equal(response.body.error.code, 'validation_failed');
});

t.test('a key left in progress by a crashed process is taken over at once by its retry', async (t) => {
  // As a SIGKILLed process leaves it: in progress, held by an instance that no longer runs.
  const body = { display_name: 'Grace' };
  const firstReceivedAt = new Date(clock.nowMs() - 2_000);
  await server.ctx.db
    .insertInto('idempotency_keys')
    .values({ caller: 'api_key', key: 'crashed-1', method: 'POST', path: '/v1/users', request_hash: requestFingerprint('POST', '/v1/users', body), state: 'in_progress', instance_id: '01DEADPROCESS0000000000000', created_at: firstReceivedAt, expires_at: new Date(clock.nowMs() + 3600_000) })
    .execute();
  const before = await countUsers();
  const conflicting = await server.api('/v1/users', { method: 'POST', apiKey: true, headers: { 'x-idempotency-key': 'crashed-1' }, body: { display_name: 'Not Grace' } });
  t.equal(conflicting.body.error?.code, 'idempotency_conflict', 'a different body is still a conflict');
  const retried = await server.api('/v1/users', { method: 'POST', apiKey: true, headers: { 'x-idempotency-key': 'crashed-1' }, body });
  t.equal(retried.status, 201, JSON.stringify(retried.body));
  t.equal(await countUsers(), before + 1, 'the retry did the work, with no wait');
  const row = await server.ctx.db.selectFrom('idempotency_keys').select(['instance_id', 'state', 'created_at']).where('key', '=', 'crashed-1').executeTakeFirstOrThrow();
  t.same([row.instance_id, row.state, row.created_at.getTime()], [server.ctx.instanceId, 'done', firstReceivedAt.getTime()], 'taken over by this process; first receipt kept');
  const replay = await server.api('/v1/users', { method: 'POST', apiKey: true, headers: { 'x-idempotency-key': 'crashed-1' }, body });
  t.same(replay.body, retried.body, 'and is stored for replay like any first answer');
});

t.test('two retries of a crashed request at once: exactly one runs', async (t) => {
  const body = { display_name: 'Heidi' };
  await server.ctx.db
    .insertInto('idempotency_keys')
    .values({ caller: 'api_key', key: 'crashed-2', method: 'POST', path: '/v1/users', request_hash: requestFingerprint('POST', '/v1/users', body), state: 'in_progress', instance_id: null, expires_at: new Date(clock.nowMs() + 3600_000) })
    .execute();
  const before = await countUsers();
  const results = await Promise.all(Array.from({ length: 6 }, () => server.api('/v1/users', { method: 'POST', apiKey: true, headers: { 'x-idempotency-key': 'crashed-2' }, body })));
  t.ok(results.every((r) => r.status === 201 || r.body.error?.code === 'request_in_progress'), results.map((r) => r.status).join(','));
  t.equal(await countUsers(), before + 1, 'the user was created once');
});
