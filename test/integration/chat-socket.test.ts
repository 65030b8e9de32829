/**
 * The chat WebSocket (docs/api.md, "Chat WebSocket"; seed 002's frames) on a real server: fan-out
 * to every socket of both participants whether a message came over REST or the socket, client_id
 * echoes, read receipts and unread counts across two users and three sockets, typing (relayed,
 * rate-limited, never stored), error frames for refused frames, and 200 concurrent sends stored
 * once each and delivered to every socket in id order.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- frames read off the wire */
import t from 'tap';
import { createAccount, startTestServer, type TestAccount } from '../helpers/server.ts';
import { recorder } from '../helpers/ws.ts';
import { eventually } from '../helpers/wait.ts';

// A long typing interval: within one test, a second typing frame is always inside it.
const server = await startTestServer(t, { chat: { typing_interval_ms: 600_000, socket_messages_per_second: 1000, max_message_chars: 1000 } });
const wsBase = `${server.baseUrl.replace('http', 'ws')}/v1/chat/ws`;

const host = await createAccount(server, 'host', 'Jane Smith');
const ann = await createAccount(server, 'user', 'Ann');
const eve = await createAccount(server, 'user', 'Eve');

type Chat = ReturnType<typeof recorder> & { frame(value: unknown): void };

/** A chat socket, resolved once the server has authenticated and registered it. */
async function chatSocket(who: TestAccount): Promise<Chat> {
  const before = server.chatSockets.socketsOf(who.id);
  const socket = recorder(`${wsBase}?token=${who.token}`);
  t.teardown(() => socket.ws.close());
  await new Promise((resolve) => socket.ws.once('open', resolve));
  await eventually(() => server.chatSockets.socketsOf(who.id), (n) => n === before + 1);
  return Object.assign(socket, { frame: (value: unknown) => socket.ws.send(typeof value === 'string' ? value : JSON.stringify(value)) });
}

async function conversationId(from: TestAccount, to: TestAccount): Promise<string> {
  const res = await server.api('/v1/chat/conversations', { method: 'POST', token: from.token, body: { user_id: to.id } });
  return res.body.id;
}
const unreadOf = async (who: TestAccount, id: string): Promise<number> =>
  (await server.api('/v1/chat/conversations?per_page=100', { token: who.token })).body.data.find((c: any) => c.id === id).unread_count;
const newMessages = (socket: Chat, conversation: string) => socket.messages.filter((m) => m.type === 'new_message' && m.message.conversation_id === conversation);

t.test('a bad token is accepted, then closed with 4001', async (t) => {
  const socket = recorder(`${wsBase}?token=not-a-token`);
  t.equal((await socket.closed).code, 4001);
  const none = recorder(wsBase);
  t.equal((await none.closed).code, 4001);
});

t.test('two users, three sockets: REST and socket messages reach every socket, unread counts rise and fall, receipts reach the sender', async (t) => {
  const id = await conversationId(host, ann);
  const [h1, h2, a1] = [await chatSocket(host), await chatSocket(host), await chatSocket(ann)];

  // Over REST: every socket of both participants gets new_message.
  const rest = await server.api(`/v1/chat/conversations/${id}/messages`, { method: 'POST', token: host.token, body: { body: 'Hello! Ready for our session?', type: 'text' } });
  t.equal(rest.status, 201);
  for (const socket of [h1, h2, a1]) {
    const got = await socket.waitFor((m) => m.type === 'new_message' && m.message.id === rest.body.id);
    t.same(got, { type: 'new_message', message: rest.body }, 'the frame carries the stored message');
  }
  t.equal(await unreadOf(ann, id), 1);

  // Over the socket, with a client_id: the sender's sockets get it echoed, the other side does not.
  h1.frame({ type: 'message', conversation_id: id, body: 'Hello!', client_id: 'c-1' });
  const echoed = await h2.waitFor((m) => m.type === 'new_message' && m.client_id === 'c-1');
  t.match(echoed.message, { conversation_id: id, sender_id: host.id, body: 'Hello!', type: 'text' });
  t.match(await h1.waitFor((m) => m.type === 'new_message' && m.message.id === echoed.message.id), { client_id: 'c-1' });
  const atAnn = await a1.waitFor((m) => m.type === 'new_message' && m.message.id === echoed.message.id);
  t.notOk('client_id' in atAnn, 'the other participant does not see the sender\'s client_id');
  t.equal(await unreadOf(ann, id), 2);
  t.equal(await unreadOf(host, id), 0);

  // The same client_id again: stored once, echoed to the sender only.
  h2.frame({ type: 'message', conversation_id: id, body: 'Hello!', client_id: 'c-1' });
  await eventually(() => h1.messages.filter((m) => m.client_id === 'c-1').length, (n) => n === 2);
  const stored = await server.ctx.db.selectFrom('chat_messages').select('id').where('conversation_id', '=', id).execute();
  t.equal(stored.length, 2, 'two messages stored: one over REST, one over the socket');

  // Over REST, the socket's message is there.
  const listed = await server.api(`/v1/chat/conversations/${id}/messages`, { token: ann.token });
  t.same(listed.body.data.map((m: any) => m.id), [echoed.message.id, rest.body.id]);

  // Ann reads over the socket: the host's sockets get read_receipt, and so does Ann's own.
  a1.frame({ type: 'read', conversation_id: id });
  for (const socket of [h1, h2, a1]) {
    t.same(await socket.waitFor((m) => m.type === 'read_receipt'), { type: 'read_receipt', conversation_id: id, user_id: ann.id });
  }
  t.equal(await unreadOf(ann, id), 0);

  // A second Ann socket opens; the host writes; both of Ann's sockets get it; a REST read clears the count for both.
  const a2 = await chatSocket(ann);
  const third = await server.api(`/v1/chat/conversations/${id}/messages`, { method: 'POST', token: host.token, body: { body: 'third' } });
  await a2.waitFor((m) => m.type === 'new_message' && m.message.id === third.body.id);
  await a1.waitFor((m) => m.type === 'new_message' && m.message.id === third.body.id);
  t.equal(await unreadOf(ann, id), 1);
  t.equal((await server.api(`/v1/chat/conversations/${id}/read`, { method: 'PUT', token: ann.token })).status, 204);
  await a2.waitFor((m) => m.type === 'read_receipt' && m.user_id === ann.id);
  await eventually(() => h1.messages.filter((m) => m.type === 'read_receipt').length, (n) => n === 2);
  t.equal(await unreadOf(ann, id), 0);
});

t.test('typing: relayed to the other participant only, once per interval, never stored; refused where posting is', async (t) => {
  const id = await conversationId(host, eve);
  const [h, e] = [await chatSocket(host), await chatSocket(eve)];
  for (let i = 0; i < 5; i += 1) h.frame({ type: 'typing', conversation_id: id });
  h.frame({ type: 'message', conversation_id: id, body: 'done typing' });
  // The socket handles frames in order and relays typing at once, so the message comes after any typing frame.
  await e.waitFor((m) => m.type === 'new_message');
  t.same(e.messages.filter((m) => m.type === 'typing'), [{ type: 'typing', conversation_id: id, user_id: host.id }], 'one typing frame relayed');
  await h.waitFor((m) => m.type === 'new_message');
  t.equal(h.messages.filter((m) => m.type === 'typing').length, 0, 'not echoed to the typist');
  const rows = await server.ctx.db.selectFrom('chat_messages').select('body').where('conversation_id', '=', id).execute();
  t.same(rows, [{ body: 'done typing' }], 'typing stores nothing');

  // Eve has no call with the host: she may not type to them either.
  e.frame({ type: 'typing', conversation_id: id });
  t.same(await e.waitFor((m) => m.type === 'error'), { type: 'error', code: 'forbidden', message: String(e.messages.find((m) => m.type === 'error').message), conversation_id: id });
  t.equal(h.messages.filter((m) => m.type === 'typing').length, 0);
});

t.test('refused frames get an error frame with the REST code, and the socket stays open', async (t) => {
  const id = await conversationId(host, ann);
  const strangers = await conversationId(host, eve);
  const a = await chatSocket(ann);
  const expectError = async (frame: unknown, code: string, conversationId?: string) => {
    const before = a.messages.filter((m) => m.type === 'error').length;
    a.frame(frame);
    await eventually(() => a.messages.filter((m) => m.type === 'error').length, (n) => n > before);
    const error = a.messages.filter((m) => m.type === 'error')[before];
    t.match(error, { type: 'error', code, message: String }, `${JSON.stringify(frame).slice(0, 60)} → ${code}`);
    t.equal(error.conversation_id, conversationId);
  };
  await expectError('not json', 'validation_failed');
  await expectError({ type: 'shout', conversation_id: id }, 'validation_failed', id);
  await expectError({ conversation_id: id }, 'validation_failed', id);
  await expectError({ type: 'message', conversation_id: id }, 'validation_failed', id);
  await expectError({ type: 'message', conversation_id: id, body: 'x', extra: true }, 'validation_failed', id);
  await expectError({ type: 'message', conversation_id: id, body: 'x'.repeat(1001) }, 'validation_failed', id);
  await expectError({ type: 'message', conversation_id: '01JN2XA0B1C2D3E4F5G6H7J8K9', body: 'x' }, 'not_found', '01JN2XA0B1C2D3E4F5G6H7J8K9');
  await expectError({ type: 'message', conversation_id: strangers, body: 'x' }, 'forbidden', strangers);
  await expectError({ type: 'read', conversation_id: strangers }, 'forbidden', strangers);
  await expectError({ type: 'message', conversation_id: id, body: 'no call with the host' }, 'forbidden', id);
  await expectError(JSON.stringify({ type: 'message', conversation_id: id, body: 'y'.repeat(40 * 1024) }), 'payload_too_large');
  a.frame({ type: 'read', conversation_id: id });
  t.same(await a.waitFor((m) => m.type === 'read_receipt' && m.conversation_id === id), { type: 'read_receipt', conversation_id: id, user_id: ann.id }, 'still open and working');
  const stored = await server.ctx.db.selectFrom('chat_messages').select('id').where('sender_id', '=', ann.id).execute();
  t.equal(stored.length, 0, 'nothing refused was stored');
});

t.test('200 concurrent sends, half over REST and half over the socket: each stored once, every socket gets all in id order', async (t) => {
  const fan = await createAccount(server, 'user', 'Fan');
  const id = await conversationId(host, fan);
  const [h1, h2, f1] = [await chatSocket(host), await chatSocket(host), await chatSocket(fan)];
  const rest = Array.from({ length: 100 }, (_, i) => server.api(`/v1/chat/conversations/${id}/messages`, { method: 'POST', token: host.token, body: { body: `rest ${i}` } }));
  for (let i = 0; i < 100; i += 1) (i % 2 === 0 ? h1 : h2).frame({ type: 'message', conversation_id: id, body: `ws ${i}`, client_id: `ws-${i}` });
  const answers = await Promise.all(rest);
  t.ok(answers.every((a) => a.status === 201), 'every REST send answered 201');
  for (const socket of [h1, h2, f1]) {
    const got = await eventually(() => newMessages(socket, id), (m) => m.length >= 200, 30_000);
    t.equal(got.length, 200);
    const ids = got.map((m) => m.message.id);
    t.same(ids, [...ids].sort(), 'delivered in id order');
    t.equal(new Set(ids).size, 200, 'each once');
  }
  const stored = await server.ctx.db.selectFrom('chat_messages').select(['id', 'body']).where('conversation_id', '=', id).orderBy('id').execute();
  t.equal(stored.length, 200, 'stored once each');
  t.same(new Set(stored.map((m) => m.body)), new Set([...Array.from({ length: 100 }, (_, i) => `rest ${i}`), ...Array.from({ length: 100 }, (_, i) => `ws ${i}`)]));
  t.same(newMessages(f1, id).map((m) => m.message.id), stored.map((m) => m.id), 'the socket saw exactly the stored messages, in their order');
  t.equal(newMessages(h1, id).filter((m) => m.client_id !== undefined).length, 100, 'the sender\'s sockets get every client_id');
  t.equal(newMessages(f1, id).filter((m) => m.client_id !== undefined).length, 0);
  t.equal(await unreadOf(fan, id), 200);
});
