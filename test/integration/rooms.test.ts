import t from 'tap';
import WebSocket from 'ws';
import { startTestServer } from '../helpers/server.ts';

const server = await startTestServer(t);

async function demoUser(name: string): Promise<{ id: string; token: string }> {
  const login = await server.api('/v1/demo/login', { method: 'POST', body: { display_name: name } });
  if (login.status !== 201) throw new Error(`demo login failed: ${JSON.stringify(login.body)}`);
  return { id: login.body.user.id, token: login.body.access_token };
}

const ann = await demoUser('Ann');
const bob = await demoUser('Bob');
const cat = await demoUser('Cat');
const dan = await demoUser('Dan');

t.test('demo login creates a real user with a working token', async (t) => {
  const me = await server.api('/v1/users/me', { token: ann.token });
  t.equal(me.status, 200);
  t.equal(me.body.user.display_name, 'Ann');
  const users = await server.api('/v1/demo/users', { token: ann.token });
  t.equal(users.status, 200);
  t.ok(users.body.data.some((u: { id: string }) => u.id === bob.id));
  const bad = await server.api('/v1/demo/login', { method: 'POST', body: { display_name: '' } });
  t.equal(bad.status, 400);
});

t.test('rooms: the creator is admin (100), members get their power, non-members are refused', async (t) => {
  const created = await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'Standup', members: [{ user_id: bob.id, power: 50 }, { user_id: cat.id }] } });
  t.equal(created.status, 201);
  const room = created.body.room;
  t.same(
    room.members.map((m: { display_name: string; power: number }) => [m.display_name, m.power]),
    [['Ann', 100], ['Bob', 50], ['Cat', 0]],
  );
  t.equal(room.active_call_id, null);
  t.equal((await server.api(`/v1/rooms/${room.id}`, { token: cat.token })).status, 200, 'members can read');
  const outsider = await server.api(`/v1/rooms/${room.id}`, { token: dan.token });
  t.equal(outsider.status, 403);
  t.equal(outsider.body.error.code, 'forbidden');
  t.equal((await server.api(`/v1/rooms/${room.id}`, { apiKey: true })).status, 200, 'the API key acts as admin');
  t.equal((await server.api('/v1/rooms/01ARZ3NDEKTSV4RRFFQ69G5FAV', { token: ann.token })).status, 404);

  const mine = await server.api('/v1/rooms', { token: cat.token });
  t.equal(mine.body.pagination.total, 1);
  t.equal(mine.body.data[0].id, room.id);

  // Member management by power.
  const byMember = await server.api(`/v1/rooms/${room.id}/members`, { method: 'POST', token: cat.token, body: { user_id: dan.id } });
  t.equal(byMember.status, 403, 'a plain member cannot add members');
  const overPower = await server.api(`/v1/rooms/${room.id}/members`, { method: 'POST', token: bob.token, body: { user_id: dan.id, power: 100 } });
  t.equal(overPower.status, 403, 'a moderator cannot grant more than its own power');
  const byModerator = await server.api(`/v1/rooms/${room.id}/members`, { method: 'POST', token: bob.token, body: { user_id: dan.id, power: 0 } });
  t.equal(byModerator.status, 200);
  t.ok(byModerator.body.room.members.some((m: { user_id: string }) => m.user_id === dan.id));
  const removeSelf = await server.api(`/v1/rooms/${room.id}/members/${dan.id}`, { method: 'DELETE', token: dan.token });
  t.equal(removeSelf.status, 200, 'anyone may leave');
  t.notOk(removeSelf.body.room.members.some((m: { user_id: string }) => m.user_id === dan.id));
  const removeAdmin = await server.api(`/v1/rooms/${room.id}/members/${ann.id}`, { method: 'DELETE', token: bob.token });
  t.equal(removeAdmin.status, 403, 'a moderator cannot remove someone of higher power');

  const unknownMember = await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'X', members: [{ user_id: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }] } });
  t.equal(unknownMember.status, 400);
  const badPower = await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'X', members: [{ user_id: bob.id, power: 101 }] } });
  t.equal(badPower.status, 400);
});

t.test('rooms: rename and delete need power 100; a room with a live call cannot be deleted', async (t) => {
  const room = (await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'Old', members: [{ user_id: bob.id, power: 50 }] } })).body.room;
  t.equal((await server.api(`/v1/rooms/${room.id}`, { method: 'PATCH', token: bob.token, body: { name: 'Mine' } })).status, 403, 'a moderator cannot rename');
  const renamed = await server.api(`/v1/rooms/${room.id}`, { method: 'PATCH', token: ann.token, body: { name: 'New' } });
  t.equal(renamed.status, 200);
  t.equal(renamed.body.room.name, 'New');
  t.equal((await server.api(`/v1/rooms/${room.id}`, { method: 'PATCH', token: ann.token, body: { name: '' } })).status, 400);

  const call = await server.api('/v1/calls/initiate', { method: 'POST', token: ann.token, body: { room_id: room.id, type: 'audio' } });
  t.equal(call.status, 201);
  const busy = await server.api(`/v1/rooms/${room.id}`, { method: 'DELETE', token: ann.token });
  t.equal(busy.status, 409);
  t.equal(busy.body.error.details.call_id, call.body.call.id);
  await server.api(`/v1/calls/${call.body.call.id}/end`, { method: 'POST', token: ann.token, body: {} });

  t.equal((await server.api(`/v1/rooms/${room.id}`, { method: 'DELETE', token: bob.token })).status, 403, 'a moderator cannot delete');
  t.equal((await server.api(`/v1/rooms/${room.id}`, { method: 'DELETE', token: ann.token })).status, 204);
  t.equal((await server.api(`/v1/rooms/${room.id}`, { token: ann.token })).status, 404, 'gone');
  const history = await server.api(`/v1/calls/${call.body.call.id}`, { apiKey: true });
  t.equal(history.status, 200, 'the ended call stays readable');
  t.equal(history.body.call.room_id, null);
});

t.test('tenant settings: recording on by default, changed by admins only', async (t) => {
  t.same((await server.api('/v1/settings', { apiKey: true })).body, { settings: { recording_enabled: true } });
  t.equal((await server.api('/v1/settings', { method: 'PUT', token: ann.token, body: { recording_enabled: false } })).status, 403);
  const changed = await server.api('/v1/settings', { method: 'PUT', apiKey: true, body: { recording_enabled: false } });
  t.same(changed.body, { settings: { recording_enabled: false } });
  t.equal((await server.api('/v1/settings', { method: 'PUT', apiKey: true, body: { recording_enabled: 'no' } })).status, 400);
});

function openUserSocket(token: string): Promise<{ ws: WebSocket; events: Array<{ event: { name: string }; data: Record<string, unknown> }>; next: (name: string) => Promise<Record<string, unknown>> }> {
  const ws = new WebSocket(`${server.baseUrl.replace('http', 'ws')}/v1/ws?token=${token}`);
  const events: Array<{ event: { name: string }; data: Record<string, unknown> }> = [];
  const waiters: Array<{ name: string; resolve: (data: Record<string, unknown>) => void }> = [];
  ws.on('message', (raw) => {
    const message = JSON.parse(String(raw));
    if (!message.event?.name) return;
    events.push(message);
    for (const waiter of waiters.splice(0)) {
      if (waiter.name === message.event.name) waiter.resolve(message.data);
      else waiters.push(waiter);
    }
  });
  const next = (name: string) => {
    const seen = events.find((e) => e.event.name === name);
    if (seen) {
      events.splice(events.indexOf(seen), 1);
      return Promise.resolve(seen.data);
    }
    return new Promise<Record<string, unknown>>((resolve) => waiters.push({ name, resolve }));
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, events, next }));
    ws.once('error', reject);
  });
}

t.test('user socket: presence on connect, events reach every socket of the user, bad tokens are closed with 4001', async (t) => {
  const first = await openUserSocket(bob.token);
  const second = await openUserSocket(bob.token);
  t.teardown(() => {
    first.ws.close();
    second.ws.close();
  });
  t.match(await first.next('presence'), { user_id: bob.id, online: true });
  await second.next('presence');
  t.ok(server.ctx.userNotifier.isOnline(bob.id));
  t.notOk(server.ctx.userNotifier.isOnline(cat.id));
  server.ctx.userNotifier.notify([bob.id], 'call.updated', { call: { id: 'c1' } });
  t.same(await first.next('call.updated'), { call: { id: 'c1' } });
  t.same(await second.next('call.updated'), { call: { id: 'c1' } });

  first.ws.send(JSON.stringify({ endpoint: 'ping', data: {}, event: { id: 'e-1', date: Date.now() } }));
  first.ws.send('not json');
  const replies: Array<{ event: { id: string | null }; error: { status: boolean; code: number } }> = [];
  await new Promise<void>((resolve) => {
    first.ws.on('message', (raw) => {
      const message = JSON.parse(String(raw));
      if (message.event?.name) return;
      replies.push(message);
      if (replies.length === 2) resolve();
    });
  });
  t.match(replies.find((r) => r.event.id === 'e-1'), { data: { pong: true }, error: { status: false } });
  t.match(replies.find((r) => r.event.id === null), { error: { status: true, code: 400 } });

  for (const bad of ['forged.token.here', '']) {
    const ws = new WebSocket(`${server.baseUrl.replace('http', 'ws')}/v1/ws?token=${bad}`);
    const [code, reason] = await new Promise<[number, string]>((resolve) => ws.once('close', (c, r) => resolve([c, String(r)])));
    t.equal(code, 4001, `token "${bad}" is refused`);
    t.ok(reason.length > 0, 'with a reason');
  }
});
