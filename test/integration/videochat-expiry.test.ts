/**
 * An unanswered videochat request is declined 30 s (of the server's clock) after it was made, by
 * the durable expiry job: every socket of both sides hears videochatDeclined. The server runs on a
 * clock 60 times faster than the wall clock, so the 30 s pass in half a real second.
 */
import t from 'tap';
import { sql } from 'kysely';
import { ScaledClock } from '../../src/shared/clock.ts';
import { createAccount, startTestServer } from '../helpers/server.ts';
import { UserSocketClient } from '../helpers/user-socket.ts';
import { eventually } from '../helpers/wait.ts';

const clock = new ScaledClock(60, Date.now());
const server = await startTestServer(t, { jobs: { poll_interval_ms: 100 } }, { clock });
const ann = await createAccount(server, 'user', 'Ann');
const bob = await createAccount(server, 'user', 'Bob');

t.test('an unanswered request expires as declined, on every socket of both sides', async (t) => {
  const connect = (u: { token: string }) => UserSocketClient.connect(server.baseUrl, u.token);
  const [a1, a2, b1, b2] = [await connect(ann), await connect(ann), await connect(bob), await connect(bob)];
  t.teardown(() => [a1, a2, b1, b2].forEach((s) => s.ws.terminate()));
  const madeAt = clock.nowMs();
  const asked = await a1.ask('videochat:requestDirectVideochat', { targetUser: bob.id });
  const requestId = asked.data.videochatRequestId;
  await b1.next('videochat:videochatRequested');

  const job = await sql<{ key: string }>`select key from graphile_worker.jobs where key = ${`videochat_expire:${requestId}`}`.execute(server.ctx.db);
  t.equal(job.rows.length, 1, 'the expiry is a durable job, committed with the request');

  for (const s of [a1, a2, b1, b2]) t.same((await s.next('videochat:videochatDeclined')).data, { videochatRequestId: requestId });
  t.ok(clock.nowMs() - madeAt >= 30_000, 'not before 30 s of the server clock');
  const row = await server.ctx.db.selectFrom('videochat_requests').select(['state', 'answered_by']).where('id', '=', requestId).executeTakeFirstOrThrow();
  t.same(row, { state: 'expired', answered_by: null });
  t.match(await b2.ask('videochat:acceptVideochatRequest', { videochatRequestId: requestId }), { data: null, error: { status: true, code: 409 } }, 'an expired request cannot be accepted');
});

t.test('an answered request is not declined by its expiry job', async (t) => {
  const [a1, b1] = [await UserSocketClient.connect(server.baseUrl, ann.token), await UserSocketClient.connect(server.baseUrl, bob.token)];
  t.teardown(() => [a1, b1].forEach((s) => s.ws.terminate()));
  const requestId = (await a1.ask('videochat:requestDirectVideochat', { targetUser: bob.id })).data.videochatRequestId;
  await b1.next('videochat:videochatRequested');
  t.same((await b1.ask('videochat:acceptVideochatRequest', { videochatRequestId: requestId })).error, { status: false, code: 0, message: '' });
  await a1.next('videochat:directVideochatRequestAccepted');
  // The job's run is the event to wait for: it leaves the queue once it ran.
  const key = `videochat_expire:${requestId}`;
  const left = await eventually(async () => (await sql`select 1 from graphile_worker.jobs where key = ${key}`.execute(server.ctx.db)).rows.length, (n) => n === 0);
  t.equal(left, 0, 'the expiry job ran');
  const row = await server.ctx.db.selectFrom('videochat_requests').select('state').where('id', '=', requestId).executeTakeFirstOrThrow();
  t.equal(row.state, 'accepted');
  await a1.ask('ping');
  t.notOk(a1.has('videochat:videochatDeclined'));
});
