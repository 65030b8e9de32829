/* eslint-disable @typescript-eslint/no-explicit-any -- messages read off the wire are JSON of many shapes */
import t from 'tap';
import { recorder } from '../helpers/ws.ts';
import { startTestServer } from '../helpers/server.ts';

const server = await startTestServer(t, { calls: { empty_timeout_seconds: 1, reconnect_grace_seconds: 1, signaling_token_ttl_seconds: 300, signaling_messages_per_second: 50 } });

async function demoUser(name: string): Promise<{ id: string; token: string }> {
  const login = await server.api('/v1/demo/login', { method: 'POST', body: { display_name: name } });
  return { id: login.body.user.id, token: login.body.access_token };
}

const signal = (answer: { signaling_url: string; signaling_token: string }) => recorder(`${answer.signaling_url}?token=${answer.signaling_token}`);

const ann = await demoUser('Ann');
const bob = await demoUser('Bob');
const eve = await demoUser('Eve');
const room = (await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'Reconnects', members: [{ user_id: bob.id }] } })).body.room;

t.test('leave, and reconnecting with a fresh token keeps the participant', async (t) => {
  const started = await server.api('/v1/calls/initiate', { method: 'POST', token: ann.token, body: { room_id: room.id, type: 'video' } });
  const callId = started.body.call.id;
  const first = signal(started.body);
  const welcome = await first.waitFor((m) => m.type === 'welcome');
  const fresh = await server.api(`/v1/calls/${callId}/token`, { method: 'POST', token: ann.token });
  t.equal(fresh.status, 200);
  t.notOk('call' in fresh.body);
  const second = signal(fresh.body);
  const again = await second.waitFor((m) => m.type === 'welcome');
  t.equal(again.payload.participantId, welcome.payload.participantId, 'same identity after reconnect');
  t.equal((await first.closed).code, 4009, 'the old socket is replaced');
  t.equal((await server.api(`/v1/calls/${callId}/token`, { method: 'POST', token: bob.token })).status, 403, 'an invited member who never joined cannot ask for a reconnect token');

  const left = await server.api(`/v1/calls/${callId}/leave`, { method: 'POST', token: ann.token });
  t.equal(left.status, 200);
  t.equal(left.body.call.participants.find((p: any) => p.user_id === ann.id).state, 'left');
  // The wire value, not SignalCloseCode.left: clients (src/web/signaling.ts has its own copy) act on the number.
  t.equal((await second.closed).code, 4012, 'leaving closes the signaling socket with 4012 (left)');
  t.equal((await server.api(`/v1/calls/${callId}/leave`, { method: 'POST', token: eve.token })).status, 403);
  await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: ann.token, body: {} });
});
