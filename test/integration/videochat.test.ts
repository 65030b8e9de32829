/**
 * The direct videochat handshake over real user sockets, against a real server (PostgreSQL, media
 * worker): request/accept with two users holding two sockets each, decline from either side, the
 * error codes, a malformed envelope, invite and merge, and the direct call's webhook events.
 */
import t from 'tap';
import { createAccount, startTestServer, type TestAccount } from '../helpers/server.ts';
import { newId } from '../../src/shared/ids.ts';
import { Client } from '../helpers/signaling.ts';
import { UserSocketClient } from '../helpers/user-socket.ts';
import { eventually } from '../helpers/wait.ts';

const server = await startTestServer(t);
const ann = await createAccount(server, 'user', 'Ann');
const bob = await createAccount(server, 'user', 'Bob');
const cat = await createAccount(server, 'user', 'Cat');
const dan = await createAccount(server, 'user', 'Dan');
const eve = await createAccount(server, 'user', 'Eve');
await server.api(`/v1/users/${ann.id}`, { method: 'PATCH', apiKey: true, body: { first_name: 'Ann', last_name: 'Archer', company_name: 'Acme', company_title: 'CTO' } });

const sockets: UserSocketClient[] = [];
async function socket(account: TestAccount): Promise<UserSocketClient> {
  const client = await UserSocketClient.connect(server.baseUrl, account.token);
  sockets.push(client);
  return client;
}
t.teardown(() => sockets.forEach((s) => s.ws.terminate()));

const signal = (ticket: { videochatUrl: string; token: string }) => new Client(`${ticket.videochatUrl}?token=${encodeURIComponent(ticket.token)}`);
const OK = { status: false, code: 0, message: '' };

const [a1, a2, b1, b2] = [await socket(ann), await socket(ann), await socket(bob), await socket(bob)];
let callX = '';

t.test('request, then accept on one socket: every socket hears what it should, both tokens open the same call', async (t) => {
  const asked = await a1.ask('videochat:requestDirectVideochat', { targetUser: bob.id });
  t.same(asked.error, OK);
  const requestId = asked.data.videochatRequestId;
  t.match(requestId, /^[0-9A-HJKMNP-TV-Z]{26}$/);

  for (const b of [b1, b2]) {
    const rung = await b.next('videochat:videochatRequested');
    t.same(rung.data, {
      videochatRequestId: requestId,
      user: { id: ann.id, firstName: 'Ann', lastName: 'Archer', privacyMode: 0, avatar: '', companyName: 'Acme', companyTitle: 'CTO' },
      participants: [],
      counter: 0,
    });
    t.same(rung.error, OK);
    t.match(rung.event, { name: 'videochat:videochatRequested', id: String, date: String });
  }

  const accepted = await b1.ask('videochat:acceptVideochatRequest', { videochatRequestId: requestId });
  t.same(accepted.error, OK);
  const mine = accepted.data;
  t.match(mine, {
    videochatId: /^[0-9A-HJKMNP-TV-Z]{26}$/,
    videochatMode: 'videochat',
    videochatEngine: 'callplane',
    videochatUrl: `${server.baseUrl.replace('http', 'ws')}/v1/signal`,
    identity: String,
    uid: Number,
    token: /^st_/,
    sharedSecret: String,
    user: { id: bob.id, firstName: 'Bob', lastName: '', companyName: '', companyTitle: '', avatar: '', privacyMode: 0 },
    permissions: { isModerator: false, isOwner: false, isPanelist: false, isPresenter: false, isCoPresenter: false, isPromoted: true, isParticipant: true, isListener: false },
  });
  t.equal(mine.room, mine.videochatId);
  t.ok(Number.isInteger(mine.uid) && mine.uid > 0, 'uid is a positive integer');
  t.ok(mine.sharedSecret.length >= 32, 'a random per-call secret');

  const [x1, x2] = [await a1.next('videochat:directVideochatRequestAccepted'), await a2.next('videochat:directVideochatRequestAccepted')];
  t.same(x1.data, x2.data, 'every socket of the initiator gets the same ticket');
  t.match(x1.data, { videochatId: mine.videochatId, user: { id: ann.id }, permissions: { isOwner: true, isModerator: true, isPromoted: true }, sharedSecret: mine.sharedSecret, token: /^st_/ });
  t.not(x1.data.token, mine.token, "the initiator's own token");
  t.not(x1.data.uid, mine.uid);

  t.same((await b2.next('videochat:videochatAccepted')).data, { videochatRequestId: requestId }, "the target's other socket stops ringing");
  t.notOk(b1.has('videochat:videochatAccepted'), 'the accepting socket has its answer instead');

  const annSignal = signal(x1.data);
  const bobSignal = signal(mine);
  t.teardown(() => (annSignal.ws.terminate(), bobSignal.ws.terminate()));
  const [wa, wb] = [(await annSignal.next('welcome')).payload, (await bobSignal.next('welcome')).payload];
  t.equal(wa.callId, mine.videochatId);
  t.equal(wb.callId, mine.videochatId);
  t.equal(wb.participantId, mine.identity);
  t.match(wa.permissions, { isOwner: true, canPublish: true });
  t.match(wb.permissions, { isOwner: false, isPromoted: true, canPublish: true });

  const again = await b2.ask('videochat:acceptVideochatRequest', { videochatRequestId: requestId });
  t.match(again, { data: null, error: { status: true, code: 409 } }, 'an answered request cannot be answered again');

  const events = await server.ctx.db.selectFrom('webhook_events').select(['type', 'body']).where('call_id', '=', mine.videochatId).orderBy('seq').execute();
  t.equal(events[0]?.type, 'call.created');
  t.match(JSON.parse(events[0]!.body).data, { kind: 'direct', initiator_id: ann.id });
  callX = mine.videochatId;
});

t.test('decline from the target and from the initiator reaches every other socket of both sides', async (t) => {
  const c1 = await socket(cat);
  const c2 = await socket(cat);
  const e1 = await socket(eve);

  const first = (await e1.ask('videochat:requestDirectVideochat', { targetUser: cat.id })).data.videochatRequestId;
  await c1.next('videochat:videochatRequested');
  await c2.next('videochat:videochatRequested');
  const declined = await c1.ask('videochat:declineVideochatRequest', { videochatRequestId: first });
  t.same(declined.error, OK);
  t.same((await e1.next('videochat:videochatDeclined')).data, { videochatRequestId: first });
  t.same((await c2.next('videochat:videochatDeclined')).data, { videochatRequestId: first });

  const e2 = await socket(eve);
  const second = (await e1.ask('videochat:requestDirectVideochat', { targetUser: cat.id })).data.videochatRequestId;
  await c1.next('videochat:videochatRequested');
  t.same((await e1.ask('videochat:declineVideochatRequest', { videochatRequestId: second })).error, OK, 'the initiator may cancel');
  for (const s of [c1, c2, e2]) t.same((await s.next('videochat:videochatDeclined')).data, { videochatRequestId: second });

  // Replies come in order on a socket: by the ping's answer every earlier event has arrived.
  await c1.ask('ping');
  await e1.ask('ping');
  t.notOk(c1.has('videochat:videochatDeclined'), 'the declining target socket got its answer, not the event');
  t.notOk(e1.has('videochat:videochatDeclined'), 'the cancelling socket got its answer, not the event');
  const row = await server.ctx.db.selectFrom('videochat_requests').select(['state', 'answered_by']).where('id', '=', second).executeTakeFirstOrThrow();
  t.same(row, { state: 'declined', answered_by: eve.id });
  c1.close();
  c2.close();
  e1.close();
  e2.close();
});

t.test('error codes: 1021, 10011, 403, 404, 409; a malformed envelope is answered and the socket stays open', async (t) => {
  t.match(await a1.ask('videochat:requestDirectVideochat', { targetUser: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }), { data: null, error: { status: true, code: 1021 } });
  t.match(await a1.ask('videochat:requestDirectVideochat', { targetUser: 'nobody' }), { error: { status: true, code: 1021 } });
  t.match(await a1.ask('videochat:requestDirectVideochat', { targetUser: dan.id }), { data: null, error: { status: true, code: 10011 } }, 'no live socket: unavailable');
  t.match(await a1.ask('videochat:requestDirectVideochat', { targetUser: bob.id }), { error: { code: 10011 } }, 'a promoted participant of a live call is busy');

  const d1 = await socket(dan);
  // Dan in a live paid call (a row as the paid call service writes it): busy, whatever his role.
  const paidCall = newId();
  const now = new Date();
  await server.ctx.db.insertInto('calls').values({ id: paidCall, kind: 'paid', room_id: null, media_type: 'video', status: 'active', initiator_id: eve.id, created_at: now, updated_at: now }).execute();
  await server.ctx.db.insertInto('call_participants').values({ id: newId(), call_id: paidCall, user_id: dan.id, role: 'host', state: 'joined', invited_at: now }).execute();
  t.match(await a1.ask('videochat:requestDirectVideochat', { targetUser: dan.id }), { error: { code: 10011 } }, 'a user in a paid call is not available');
  await server.ctx.db.updateTable('calls').set({ status: 'completed', ended_at: new Date() }).where('id', '=', paidCall).execute();
  const toDan = (await a1.ask('videochat:requestDirectVideochat', { targetUser: dan.id })).data.videochatRequestId;
  await d1.next('videochat:videochatRequested');
  t.match(await a2.ask('videochat:acceptVideochatRequest', { videochatRequestId: toDan }), { data: null, error: { status: true, code: 403 } }, 'the initiator cannot accept');
  const e1 = await socket(eve);
  t.match(await e1.ask('videochat:acceptVideochatRequest', { videochatRequestId: toDan }), { error: { code: 403 } }, 'nor can a third user');
  t.match(await e1.ask('videochat:declineVideochatRequest', { videochatRequestId: toDan }), { error: { code: 403 } });
  t.match(await d1.ask('videochat:acceptVideochatRequest', { videochatRequestId: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }), { error: { code: 404 } });
  t.same((await d1.ask('videochat:declineVideochatRequest', { videochatRequestId: toDan })).error, OK);

  t.match(await d1.ask('videochat:requestDirectVideochat', { targetUser: 42 }), { data: null, error: { status: true, code: 400 } }, 'data failing its schema');
  t.match(await d1.ask('videochat:requestDirectVideochat', { targetUser: ann.id, extra: true }), { error: { code: 400 } }, 'unknown fields');
  t.match(await d1.ask('videochat:noSuchThing', {}), { error: { code: 404 } });
  const notJson = await d1.raw('{"endpoint": ');
  t.match(notJson, { data: null, error: { status: true, code: 400 }, event: { id: null } });
  d1.ws.send(JSON.stringify({ data: {}, event: { id: 'x1' } }));
  t.match(await d1.wait((f) => f.event?.id === 'x1'), { data: null, error: { status: true, code: 400 } }, 'no endpoint: answered with its event.id');
  t.same((await d1.ask('ping')).data, { pong: true }, 'the socket is still open');
  e1.close();
  d1.close();
});

t.test('ringing is limited per user: 429 beyond a burst of 10', async (t) => {
  const fay = await createAccount(server, 'user', 'Fay');
  const e1 = await socket(fay);
  const e2 = await socket(fay);
  const codes: number[] = [];
  for (let i = 0; i < 11; i++) codes.push((await (i % 2 ? e2 : e1).ask('videochat:requestDirectVideochat', { targetUser: '01ARZ3NDEKTSV4RRFFQ69G5FAV' })).error.code);
  t.same(codes, [...Array(10).fill(1021), 429], 'across the user\'s sockets');
  t.same((await e1.ask('ping')).data, { pong: true }, 'the socket stays open');
  e1.close();
  e2.close();
});

t.test('a user flooding the socket is closed with 4008', async (t) => {
  const e1 = await socket(eve);
  for (let i = 0; i < 40; i++) e1.ws.send(JSON.stringify({ endpoint: 'ping', data: {}, event: { id: `f${i}` } }));
  t.equal((await e1.closed).code, 4008);
});

t.test('invite: an owner brings a third user in; the list shows who is connected', async (t) => {
  const d1 = await socket(dan);
  const invited = await a1.ask('videochat:invite', { targetUser: dan.id, videochatId: callX });
  t.same(invited.error, OK);
  const rung = await d1.next('videochat:videochatRequested');
  t.equal(rung.data.videochatRequestId, invited.data.videochatRequestId);
  t.equal(rung.data.user.id, ann.id);
  t.same(rung.data.participants.map((p: { id: string }) => p.id).sort(), [ann.id, bob.id].sort(), 'the users connected now, the inviter included');
  t.equal(rung.data.counter, 2);

  t.match(await b1.ask('videochat:invite', { targetUser: cat.id, videochatId: callX }), { error: { code: 403 } }, 'a promoted participant cannot invite');

  const ticket = (await d1.ask('videochat:acceptVideochatRequest', { videochatRequestId: invited.data.videochatRequestId })).data;
  t.match(ticket, { videochatId: callX, user: { id: dan.id }, permissions: { isOwner: false, isPromoted: true } });
  const danSignal = signal(ticket);
  t.teardown(() => danSignal.ws.terminate());
  const welcome = (await danSignal.next('welcome')).payload;
  t.equal(welcome.callId, callX);
  t.equal(welcome.peers.length, 2, 'Ann and Bob are there');
  d1.close();
});

t.test('merge: the owner of call X merges an incoming direct request from Z, and Z lands in X', async (t) => {
  const z1 = await socket(eve);
  const asked = await z1.ask('videochat:requestDirectVideochat', { targetUser: ann.id });
  t.same(asked.error, OK, 'an owner in a live direct call is available: the request rings');
  const requestId = asked.data.videochatRequestId;
  await a1.next('videochat:videochatRequested');
  await a2.next('videochat:videochatRequested');

  t.match(await b1.ask('videochat:mergeToVideochat', { videochatId: callX, videochatRequestId: requestId }), { error: { code: 403 } }, 'only the target, moderating X, may merge');
  const merged = await a1.ask('videochat:mergeToVideochat', { videochatId: callX, videochatRequestId: requestId });
  t.same(merged.error, OK);
  const ticket = (await z1.next('videochat:directVideochatRequestAccepted')).data;
  t.match(ticket, { videochatId: callX, user: { id: eve.id }, permissions: { isPromoted: true, isOwner: false } });
  t.same((await a2.next('videochat:videochatAccepted')).data, { videochatRequestId: requestId });
  const zSignal = signal(ticket);
  t.teardown(() => zSignal.ws.terminate());
  t.equal((await zSignal.next('welcome')).payload.callId, callX, 'Z is in X');
  const row = await server.ctx.db.selectFrom('videochat_requests').select(['state', 'call_id']).where('id', '=', requestId).executeTakeFirstOrThrow();
  t.same(row, { state: 'merged', call_id: callX });
});

t.test('the owner ends the direct call: call.ended is recorded', async (t) => {
  const ended = await server.api(`/v1/calls/${callX}/end`, { method: 'POST', token: ann.token, body: {} });
  t.equal(ended.status, 200, JSON.stringify(ended.body));
  const types = (await server.ctx.db.selectFrom('webhook_events').select('type').where('call_id', '=', callX).orderBy('seq').execute()).map((r) => r.type);
  t.equal(types.at(-1), 'call.ended');
  t.ok(types.includes('participant.left'));
  t.same((await b1.ask('presence:onlineUsers')).error, OK);
});

t.test('room calls map power to roles (100 owner, 50 panelist, 0 promoted); a change over signaling outlives a reconnect', async (t) => {
  const room = (await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'Roles', members: [{ user_id: bob.id, power: 50 }, { user_id: cat.id, power: 0 }] } })).body.room;
  const started = await server.api('/v1/calls/initiate', { method: 'POST', token: ann.token, body: { room_id: room.id, type: 'video' } });
  t.equal(started.status, 201);
  const callId = started.body.call.id;
  const open = (answer: { signaling_url: string; signaling_token: string }) => {
    const c = new Client(`${answer.signaling_url}?token=${encodeURIComponent(answer.signaling_token)}`);
    t.teardown(() => c.ws.terminate());
    return c;
  };
  const annSig = open(started.body);
  const bobSig = open((await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: bob.token, body: {} })).body);
  const catSig = open((await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: cat.token, body: {} })).body);
  t.match((await annSig.next('welcome')).payload.permissions, { isOwner: true, isModerator: true, canPublish: true });
  t.match((await bobSig.next('welcome')).payload.permissions, { isOwner: false, isPanelist: true, isModerator: true, canPublish: true });
  const catWelcome = (await catSig.next('welcome')).payload;
  t.match(catWelcome.permissions, { isOwner: false, isPanelist: false, isParticipant: true, isPromoted: true, canPublish: true });

  await bobSig.ok('setPermissions', { participantId: catWelcome.participantId, permissions: { isListener: true } });
  await catSig.next('permissions_changed');
  const kept = await eventually(
    () => server.ctx.db.selectFrom('call_participants').select('permissions').where('id', '=', catWelcome.participantId).executeTakeFirstOrThrow(),
    (row) => row.permissions?.isListener === true,
  );
  t.equal(kept.permissions?.isListener, true, 'the change is kept in PostgreSQL');
  const fresh = await server.api(`/v1/calls/${callId}/token`, { method: 'POST', token: cat.token, body: {} });
  t.equal(fresh.status, 200, JSON.stringify(fresh.body));
  const again = open(fresh.body);
  t.match((await again.next('welcome')).payload.permissions, { isListener: true, isPromoted: false, canPublish: false }, 'the reconnect keeps the demotion');
});
