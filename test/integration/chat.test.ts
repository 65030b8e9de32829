/**
 * Chat over REST (docs/api.md, "Chat"; seed 002's shapes) on a real server and PostgreSQL:
 * get-or-create (also concurrently), messages and pagination, unread counts and read state, the
 * posting rule against real paid calls (waiting, active, ended), follows, broadcasts, and the error
 * envelope for every refusal.
 */
import t, { type Test } from 'tap';
import { TestPaymentProvider } from '../../src/billing/index.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { createAccount, startTestServer, type TestAccount } from '../helpers/server.ts';
import { recorder } from '../helpers/ws.ts';
import { eventually } from '../helpers/wait.ts';

const clock = new ManualClock(Date.UTC(2026, 2, 15, 13, 0, 0));
const provider = new TestPaymentProvider({ clock });
const server = await startTestServer(t, { http: { max_body_bytes: 64 * 1024 }, chat: { max_message_chars: 500 } }, { clock, payments: provider });

const host = await createAccount(server, 'host', 'Jane Smith');
const admin = await createAccount(server, 'admin', 'Ada Admin');
const ann = await createAccount(server, 'user', 'Ann');
const bob = await createAccount(server, 'user', 'Bob');
const eve = await createAccount(server, 'user', 'Eve');

// The host holds a user socket, so it is available for paid calls.
const hostSocket = recorder(`${server.baseUrl.replace('http', 'ws')}/v1/ws?token=${host.token}`);
t.teardown(() => hostSocket.ws.close());
await eventually(() => server.ctx.userNotifier.isOnline(host.id), Boolean);

async function open(from: TestAccount, to: TestAccount) {
  return server.api('/v1/chat/conversations', { method: 'POST', token: from.token, body: { user_id: to.id } });
}
async function conversationId(from: TestAccount, to: TestAccount): Promise<string> {
  const res = await open(from, to);
  if (res.status !== 200 && res.status !== 201) throw new Error(`open: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}
async function send(from: TestAccount, id: string, body: unknown) {
  return server.api(`/v1/chat/conversations/${id}/messages`, { method: 'POST', token: from.token, body });
}
async function list(who: TestAccount, query = '') {
  return server.api(`/v1/chat/conversations${query}`, { token: who.token });
}
const unreadOf = async (who: TestAccount, id: string): Promise<number | undefined> => (await list(who, '?per_page=100')).body.data.find((c: { id: string }) => c.id === id)?.unread_count;

function isEnvelope(t: Test, res: { status: number; body: unknown }, status: number, code: string): void {
  t.equal(res.status, status, JSON.stringify(res.body));
  t.match(res.body, { error: { code, message: String } });
}

t.test('get or create: 201 with the seed shape, then 200 with the same conversation from either side', async (t) => {
  const first = await open(ann, host);
  t.equal(first.status, 201, JSON.stringify(first.body));
  t.match(first.body, { id: String, participant: { id: host.id, display_name: 'Jane Smith', avatar_url: null }, unread_count: 0, created_at: new Date(clock.nowMs()).toISOString(), last_message: null });
  const again = await open(ann, host);
  t.equal(again.status, 200);
  t.equal(again.body.id, first.body.id);
  const reverse = await open(host, ann);
  t.equal(reverse.status, 200);
  t.equal(reverse.body.id, first.body.id);
  t.same(reverse.body.participant, { id: ann.id, display_name: 'Ann', avatar_url: null });
});

t.test('get or create is safe under concurrent creation: 20 racing requests from both sides, one conversation', async (t) => {
  const racer = await createAccount(server, 'user', 'Racer');
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? open(racer, host) : open(host, racer))));
  const ids = new Set(answers.map((a) => a.body.id));
  t.equal(ids.size, 1, 'every answer names the same conversation');
  t.same(answers.map((a) => a.status).filter((s) => s === 201).length, 1, 'exactly one request created it');
  t.ok(answers.every((a) => a.status === 200 || a.status === 201));
  const rows = await server.ctx.db.selectFrom('chat_conversations').select('id').where((eb) => eb.or([eb('user_a', '=', racer.id), eb('user_b', '=', racer.id)])).execute();
  t.equal(rows.length, 1);
  const members = await server.ctx.db.selectFrom('chat_members').select('user_id').where('conversation_id', '=', rows[0]!.id).execute();
  t.same(members.map((m) => m.user_id).sort(), [racer.id, host.id].sort());
});

t.test('get or create refuses: yourself 400, an unknown user 404, the API key 403, no token 401, bad bodies 400', async (t) => {
  isEnvelope(t, await open(ann, ann), 400, 'validation_failed');
  isEnvelope(t, await server.api('/v1/chat/conversations', { method: 'POST', token: ann.token, body: { user_id: '01JN2X4K8M3F7QPZRVWT6YBHCE' } }), 404, 'not_found');
  isEnvelope(t, await server.api('/v1/chat/conversations', { method: 'POST', apiKey: true, body: { user_id: ann.id } }), 403, 'forbidden');
  isEnvelope(t, await server.api('/v1/chat/conversations', { method: 'POST', body: { user_id: ann.id } }), 401, 'unauthorized');
  isEnvelope(t, await server.api('/v1/chat/conversations', { method: 'POST', token: ann.token, body: { user_id: 'nope' } }), 400, 'validation_failed');
  isEnvelope(t, await server.api('/v1/chat/conversations', { method: 'POST', token: ann.token, body: { user_id: host.id, extra: 1 } }), 400, 'validation_failed');
  isEnvelope(t, await server.api('/v1/chat/conversations', { method: 'POST', token: ann.token, rawBody: '{"user_id":' }), 400, 'validation_failed');
  isEnvelope(t, await list(ann, '?per_page=101'), 400, 'validation_failed');
});

t.test('messages: 201 with the seed shape, newest first, page/per_page, and before=<id> stays put while messages arrive', async (t) => {
  const id = await conversationId(host, bob);
  const sent: string[] = [];
  for (let i = 1; i <= 7; i += 1) {
    const res = await send(host, id, { body: `m${i}`, type: 'text' });
    t.equal(res.status, 201);
    sent.push(res.body.id);
  }
  const one = await send(host, id, { body: 'without type' });
  t.same(Object.keys(one.body).sort(), ['body', 'conversation_id', 'created_at', 'file_name', 'file_size', 'file_type', 'file_url', 'id', 'sender_id', 'type']);
  t.match(one.body, { conversation_id: id, sender_id: host.id, body: 'without type', type: 'text', file_url: null, file_name: null, file_size: null, file_type: null });
  sent.push(one.body.id);
  t.same([...sent].sort(), sent, 'ids grow in sending order');

  const page1 = await server.api(`/v1/chat/conversations/${id}/messages?page=1&per_page=3`, { token: bob.token });
  t.equal(page1.status, 200);
  t.equal(page1.body.success, true);
  t.same(page1.body.pagination, { page: 1, per_page: 3, total: 8, total_pages: 3 });
  t.same(page1.body.data.map((m: { id: string }) => m.id), sent.slice(-3).reverse(), 'newest first');
  const page3 = await server.api(`/v1/chat/conversations/${id}/messages?page=3&per_page=3`, { token: bob.token });
  t.same(page3.body.data.map((m: { id: string }) => m.id), sent.slice(0, 2).reverse());

  // A new message arrives; the page before the oldest one seen is still the same messages.
  const oldestSeen = page1.body.data.at(-1).id;
  await send(host, id, { body: 'newer' });
  const next = await server.api(`/v1/chat/conversations/${id}/messages?before=${oldestSeen}&per_page=3`, { token: bob.token });
  t.same(next.body.data.map((m: { id: string }) => m.id), sent.slice(2, 5).reverse());
  t.same(next.body.pagination, { page: 1, per_page: 3, total: 5, total_pages: 2 });
  const byOffset = await server.api(`/v1/chat/conversations/${id}/messages?page=2&per_page=3`, { token: bob.token });
  t.not(byOffset.body.data[0].id, sent[4], 'an offset page shifts with the new message, before= does not');
  const defaults = await server.api(`/v1/chat/conversations/${id}/messages`, { token: bob.token });
  t.same(defaults.body.pagination, { page: 1, per_page: 50, total: 9, total_pages: 1 });
});

t.test('conversations: latest activity first, with participant, last_message and unread_count rising and falling', async (t) => {
  const carl = await createAccount(server, 'user', 'Carl');
  const dora = await createAccount(server, 'host', 'Dora');
  const withHost = await conversationId(carl, host);
  const withDora = await conversationId(carl, dora);
  await send(host, withHost, { body: 'first from Jane' });
  clock.advance(1000);
  await send(dora, withDora, { body: 'hi from Dora' });
  clock.advance(1000);
  await send(host, withHost, { body: 'See you tomorrow at 2pm!' });
  const listed = await list(carl);
  t.equal(listed.status, 200);
  t.same(listed.body.pagination, { page: 1, per_page: 20, total: 2, total_pages: 1 });
  t.same(listed.body.data.map((c: { id: string }) => c.id), [withHost, withDora], 'the conversation with the latest message first');
  t.match(listed.body.data[0], {
    participant: { id: host.id, display_name: 'Jane Smith', avatar_url: null },
    last_message: { body: 'See you tomorrow at 2pm!', type: 'text', sent_at: new Date(clock.nowMs()).toISOString() },
    unread_count: 2,
    updated_at: new Date(clock.nowMs()).toISOString(),
  });
  t.equal(listed.body.data[1].unread_count, 1);
  t.equal(await unreadOf(host, withHost), 0, 'sending marks the conversation read for the sender');

  const read = await server.api(`/v1/chat/conversations/${withHost}/read`, { method: 'PUT', token: carl.token });
  t.equal(read.status, 204);
  t.equal(read.body, undefined, 'no body');
  t.equal(await unreadOf(carl, withHost), 0);
  t.equal(await unreadOf(carl, withDora), 1, 'other conversations keep their count');
  await send(host, withHost, { body: 'one more' });
  t.equal(await unreadOf(carl, withHost), 1);
  const paged = await list(carl, '?page=2&per_page=1');
  t.same(paged.body.data.map((c: { id: string }) => c.id), [withDora]);
  t.same(paged.body.pagination, { page: 2, per_page: 1, total: 2, total_pages: 2 });
});

t.test('non-participants get 403 and unknown conversations 404, on every conversation route', async (t) => {
  const id = await conversationId(host, ann);
  const unknown = '01JN2XA0B1C2D3E4F5G6H7J8K9';
  isEnvelope(t, await send(eve, id, { body: 'let me in' }), 403, 'forbidden');
  isEnvelope(t, await server.api(`/v1/chat/conversations/${id}/messages`, { token: eve.token }), 403, 'forbidden');
  isEnvelope(t, await server.api(`/v1/chat/conversations/${id}/read`, { method: 'PUT', token: eve.token }), 403, 'forbidden');
  isEnvelope(t, await send(admin, id, { body: 'admins are not participants either' }), 403, 'forbidden');
  isEnvelope(t, await send(host, unknown, { body: 'x' }), 404, 'not_found');
  isEnvelope(t, await server.api(`/v1/chat/conversations/${unknown}/messages`, { token: host.token }), 404, 'not_found');
  isEnvelope(t, await server.api(`/v1/chat/conversations/${unknown}/read`, { method: 'PUT', token: host.token }), 404, 'not_found');
  isEnvelope(t, await server.api(`/v1/chat/conversations/not-an-id/messages`, { token: host.token }), 400, 'validation_failed');
});

t.test('message validation: blank text, unknown fields, file fields on text, over max_message_chars 400; over max_body_bytes 413', async (t) => {
  const id = await conversationId(host, ann);
  isEnvelope(t, await send(host, id, { body: '   ' }), 400, 'validation_failed');
  isEnvelope(t, await send(host, id, { text: 'wrong field' }), 400, 'validation_failed');
  isEnvelope(t, await send(host, id, { body: 'x', type: 'video' }), 400, 'validation_failed');
  isEnvelope(t, await send(host, id, { body: 'x', file_name: 'a.pdf' }), 400, 'validation_failed');
  isEnvelope(t, await send(host, id, { body: 'x'.repeat(501) }), 400, 'validation_failed');
  isEnvelope(t, await send(host, id, { body: 'x', type: 'file' }), 400, 'validation_failed');
  isEnvelope(t, await send(host, id, { body: 'x', type: 'file', file_url: `${server.baseUrl}/v1/chat/files/01JN2XA0B1C2D3E4F5G6H7J8K9` }), 400, 'validation_failed');
  const huge = await send(host, id, { body: 'x'.repeat(70 * 1024) });
  isEnvelope(t, huge, 413, 'payload_too_large');
  const count = await server.ctx.db.selectFrom('chat_messages').select((eb) => eb.fn.countAll<number>().as('n')).where('conversation_id', '=', id).where('sender_id', '=', host.id).executeTakeFirstOrThrow();
  t.equal(Number(count.n), 0, 'nothing refused was stored');
});

t.test('posting rule: a user writes to a host only while a paid call with them is waiting or active', async (t) => {
  const guest = await createAccount(server, 'user', 'Gus');
  const id = await conversationId(guest, host);
  isEnvelope(t, await send(guest, id, { body: 'before any call' }), 403, 'forbidden');
  t.equal((await send(host, id, { body: 'hosts may always write' })).status, 201);

  const link = await server.api('/v1/links', { method: 'POST', token: host.token, body: { rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 10 } });
  t.equal(link.status, 201);
  const initiated = await server.api('/v1/calls/initiate', { method: 'POST', token: guest.token, body: { short_code: link.body.link.short_code, payment_method_id: 'pm_card_visa' } });
  t.equal(initiated.status, 201, JSON.stringify(initiated.body));
  const callId = initiated.body.call.id;
  t.equal(initiated.body.call.status, 'waiting');
  t.equal((await send(guest, id, { body: 'while waiting' })).status, 201);

  // Media connected as the SFU reports it: the call is active.
  t.equal((await server.ctx.billing.dispatch(callId, { type: 'media_connected', dtls: { host: 'connected', guest: 'connected' } })).ok, true);
  t.equal((await server.api(`/v1/calls/${callId}`, { token: guest.token })).body.call.status, 'active');
  t.equal((await send(guest, id, { body: 'while active' })).status, 201);

  clock.advance(60_000);
  const ended = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: guest.token, body: {} });
  t.equal(ended.status, 200, JSON.stringify(ended.body));
  t.not(ended.body.call.status, 'active');
  isEnvelope(t, await send(guest, id, { body: 'after the end' }), 403, 'forbidden');

  // The call is with this host only: another host is still out of reach.
  const other = await createAccount(server, 'host', 'Other Host');
  isEnvelope(t, await send(guest, await conversationId(guest, other), { body: 'hello?' }), 403, 'forbidden');
  // Users cannot write to users; admins can write to anyone.
  isEnvelope(t, await send(ann, await conversationId(ann, bob), { body: 'hi Bob' }), 403, 'forbidden');
  t.equal((await send(admin, await conversationId(admin, bob), { body: 'from the admin' })).status, 201);
});

t.test('follows: 201, 200 when already following, 204 on delete; unknown hosts and non-hosts 404; yourself 400', async (t) => {
  const fan = await createAccount(server, 'user', 'Fan');
  const first = await server.api(`/v1/hosts/${host.id}/follow`, { method: 'POST', token: fan.token });
  t.equal(first.status, 201);
  t.match(first.body, { follow: { host_id: host.id, user_id: fan.id, created_at: String } });
  const again = await server.api(`/v1/hosts/${host.id}/follow`, { method: 'POST', token: fan.token });
  t.equal(again.status, 200);
  t.same(again.body, first.body);
  isEnvelope(t, await server.api(`/v1/hosts/${ann.id}/follow`, { method: 'POST', token: fan.token }), 404, 'not_found');
  isEnvelope(t, await server.api(`/v1/hosts/01JN2X4K8M3F7QPZRVWT6YBHCE/follow`, { method: 'POST', token: fan.token }), 404, 'not_found');
  isEnvelope(t, await server.api(`/v1/hosts/${host.id}/follow`, { method: 'POST', token: host.token }), 400, 'validation_failed');
  const removed = await server.api(`/v1/hosts/${host.id}/follow`, { method: 'DELETE', token: fan.token });
  t.equal(removed.status, 204);
  t.equal((await server.ctx.db.selectFrom('chat_follows').select('user_id').where('user_id', '=', fan.id).execute()).length, 0);
  t.equal((await server.api(`/v1/hosts/${host.id}/follow`, { method: 'DELETE', token: fan.token })).status, 204, 'deleting again is fine');
});

t.test('broadcast: users 403; a host reaches exactly its followers, one message each, unread for them', async (t) => {
  const caster = await createAccount(server, 'host', 'Caster');
  const fans = await Promise.all([1, 2, 3].map((i) => createAccount(server, 'user', `Fan ${i}`)));
  for (const fan of fans) t.equal((await server.api(`/v1/hosts/${caster.id}/follow`, { method: 'POST', token: fan.token })).status, 201);
  const already = await conversationId(fans[0]!, caster); // one conversation exists, the others are created by the broadcast
  isEnvelope(t, await server.api('/v1/chat/broadcast', { method: 'POST', token: ann.token, body: { body: 'hi all' } }), 403, 'forbidden');
  isEnvelope(t, await server.api('/v1/chat/broadcast', { method: 'POST', token: caster.token, body: {} }), 400, 'validation_failed');

  const res = await server.api('/v1/chat/broadcast', { method: 'POST', token: caster.token, body: { body: 'Available for sessions this afternoon!' } });
  t.equal(res.status, 201, JSON.stringify(res.body));
  t.match(res.body, { broadcast: { id: String, body: 'Available for sessions this afternoon!', recipients: 3, created_at: String } });
  const broadcastId = res.body.broadcast.id;
  const done = await eventually(() => server.ctx.db.selectFrom('chat_broadcasts').select('completed_at').where('id', '=', broadcastId).executeTakeFirstOrThrow(), (b) => b.completed_at !== null, 20_000);
  t.not(done.completed_at, null, 'the job completed');
  for (const fan of fans) {
    const conversations = (await list(fan)).body.data;
    t.equal(conversations.length, 1);
    t.match(conversations[0], { participant: { id: caster.id }, last_message: { body: 'Available for sessions this afternoon!' }, unread_count: 1 });
  }
  t.equal((await list(fans[0]!)).body.data[0].id, already, 'the existing conversation was used');
  const messages = await server.ctx.db.selectFrom('chat_messages').select('conversation_id').where('broadcast_id', '=', broadcastId).execute();
  t.equal(messages.length, 3);
  t.equal(new Set(messages.map((m) => m.conversation_id)).size, 3);
  const none = await server.api('/v1/chat/broadcast', { method: 'POST', token: admin.token, body: { body: 'nobody follows me' } });
  t.match(none.body, { broadcast: { recipients: 0 } });
});
