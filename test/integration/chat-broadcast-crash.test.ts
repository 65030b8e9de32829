/**
 * A broadcast to 10,000 followers survives a SIGKILL of the server in the middle of its delivery
 * (docs/chat.md, "Broadcasts"): after the restart the job resumes, and every follower ends with
 * exactly one copy of the message in their conversation with the host — none missing, none twice.
 * Small batches (chat.broadcast_batch_size 50) make the middle of the delivery long enough to hit.
 */
import t from 'tap';
import { ulid } from 'ulid';
import { sql } from 'kysely';
import { createDatabase } from '../../src/db/database.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { ServerProcess } from '../helpers/server-process.ts';
import { eventually } from '../helpers/wait.ts';

const FOLLOWERS = 10_000;
const databaseUrl = await createTestDatabase(t);
const db = createDatabase(databaseUrl, 2);
t.teardown(() => db.destroy());
const server = await ServerProcess.create(t, databaseUrl, { CALLPLANE_CHAT_BROADCAST_BATCH_SIZE: '50' });
await server.start();

const created = await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Jane Smith', role: 'host' } });
const hostId: string = created.body.user.id;
const hostToken: string = (await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: hostId } })).body.access_token;

// The followers are test data, written straight into the database: creating 10,000 users over HTTP is not what this tests.
const followerIds = Array.from({ length: FOLLOWERS }, () => ulid());
for (let i = 0; i < FOLLOWERS; i += 1000) {
  const slice = followerIds.slice(i, i + 1000);
  await db.insertInto('users').values(slice.map((id, j) => ({ id, role: 'user' as const, display_name: `Follower ${i + j}`, privacy_mode: 0, updated_at: new Date() }))).execute();
  await db.insertInto('chat_follows').values(slice.map((id) => ({ host_id: hostId, user_id: id }))).execute();
}
// A few followers already talk with the host: their conversation is used, not a second one.
for (const id of followerIds.slice(0, 5)) {
  const opened = await server.api('/v1/chat/conversations', { method: 'POST', token: hostToken, body: { user_id: id } });
  if (opened.status !== 201) throw new Error(`conversation: ${opened.status}`);
}

const deliveredCount = async (broadcastId: string): Promise<number> =>
  Number((await db.selectFrom('chat_messages').select((eb) => eb.fn.countAll<number>().as('n')).where('broadcast_id', '=', broadcastId).executeTakeFirstOrThrow()).n);

t.test('SIGKILL mid-broadcast, restart: each of 10,000 followers has the message exactly once', async (t) => {
  const started = performance.now();
  const res = await server.api('/v1/chat/broadcast', { method: 'POST', token: hostToken, body: { body: 'Available for sessions this afternoon!' } });
  t.equal(res.status, 201, JSON.stringify(res.body));
  t.equal(res.body.broadcast.recipients, FOLLOWERS, 'recipients: the followers at that moment');
  const broadcastId: string = res.body.broadcast.id;
  t.comment(`201 after ${Math.round(performance.now() - started)} ms`);

  const partial = await eventually(() => deliveredCount(broadcastId), (n) => n > 0, 60_000);
  await server.kill();
  const atKill = await deliveredCount(broadcastId);
  t.ok(partial > 0 && atKill < FOLLOWERS, `killed mid-way: ${atKill} of ${FOLLOWERS} delivered`);
  const marked = await db.selectFrom('chat_broadcast_recipients').select((eb) => eb.fn.countAll<number>().as('n')).where('broadcast_id', '=', broadcastId).where('delivered_at', 'is not', null).executeTakeFirstOrThrow();
  t.equal(Number(marked.n), atKill, 'recipients marked delivered are exactly those with a message (one transaction per batch)');

  await server.start();
  const done = await eventually(
    () => db.selectFrom('chat_broadcasts').select(['completed_at']).where('id', '=', broadcastId).executeTakeFirstOrThrow(),
    (b) => b.completed_at !== null,
    90_000,
  );
  t.not(done.completed_at, null, 'the job finished after the restart');

  t.equal(await deliveredCount(broadcastId), FOLLOWERS, 'one message per follower');
  const perConversation = await sql<{ conversations: number; max: number }>`
    select count(*)::int as conversations, max(n)::int as max from (
      select conversation_id, count(*) as n from chat_messages where broadcast_id = ${broadcastId} group by conversation_id) per`.execute(db);
  t.same(perConversation.rows[0], { conversations: FOLLOWERS, max: 1 }, 'in 10,000 conversations, none twice');
  const reached = await sql<{ n: number }>`
    select count(distinct m.user_id)::int as n from chat_messages x join chat_members m on m.conversation_id = x.conversation_id and m.user_id <> ${hostId}
     where x.broadcast_id = ${broadcastId}`.execute(db);
  t.equal(reached.rows[0]!.n, FOLLOWERS, 'every follower, each in their own conversation');
  const hostConversations = await db.selectFrom('chat_members').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', hostId).executeTakeFirstOrThrow();
  t.equal(Number(hostConversations.n), FOLLOWERS, 'no second conversation for the followers who already had one');

  // Through the API: a follower sees one unread message from the host.
  for (const followerId of [followerIds[0]!, followerIds[FOLLOWERS - 1]!]) {
    const token = (await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: followerId } })).body.access_token;
    const listed = await server.api('/v1/chat/conversations', { token });
    t.equal(listed.body.data.length, 1);
    t.match(listed.body.data[0], { participant: { id: hostId }, last_message: { body: 'Available for sessions this afternoon!' }, unread_count: 1 });
  }
});
