/* eslint-disable @typescript-eslint/no-explicit-any -- messages read off the wire are JSON of many shapes */
import t from 'tap';
import { recorder } from '../helpers/ws.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const server = await startTestServer(t, { calls: { empty_timeout_seconds: 1, reconnect_grace_seconds: 1, signaling_token_ttl_seconds: 300, signaling_messages_per_second: 50 } });

async function demoUser(name: string): Promise<{ id: string; token: string }> {
  const login = await server.api('/v1/demo/login', { method: 'POST', body: { display_name: name } });
  return { id: login.body.user.id, token: login.body.access_token };
}

const userSocket = (s: TestServer, token: string) => recorder(`${s.baseUrl.replace('http', 'ws')}/v1/ws?token=${token}`);
const signal = (answer: { signaling_url: string; signaling_token: string }) => recorder(`${answer.signaling_url}?token=${answer.signaling_token}`);

const ann = await demoUser('Ann');
const bob = await demoUser('Bob');
const cat = await demoUser('Cat');
const eve = await demoUser('Eve');
const room = (await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'Design', members: [{ user_id: bob.id }, { user_id: cat.id, power: 50 }] } })).body.room;

t.test('initiate rings the other members, join hands out a signaling token, the SFU welcomes', async (t) => {
  const bobEvents = userSocket(server, bob.token);
  t.teardown(() => bobEvents.ws.close());
  await bobEvents.waitFor((m) => m.event?.name === 'presence');

  const started = await server.api('/v1/calls/initiate', { method: 'POST', token: ann.token, body: { room_id: room.id, type: 'video' } });
  t.equal(started.status, 201);
  const call = started.body.call;
  t.match(call, { room_id: room.id, type: 'video', status: 'active', initiator_id: ann.id, recordings: [] });
  t.match(started.body.signaling_url, /^ws:\/\/127\.0\.0\.1:\d+\/v1\/signal$/);
  t.match(started.body.signaling_token, /^st_/);
  t.match(started.body.turn_credentials, { urls: [], username: new RegExp(`^\\d+:${call.participants.find((p: any) => p.user_id === ann.id).participant_id}$`) });

  const invite = await bobEvents.waitFor((m) => m.event?.name === 'call.invite');
  t.equal(invite.data.call.id, call.id);
  t.match(invite.data.from, { id: ann.id, display_name: 'Ann' });
  t.match(invite.event, { id: String, date: String });

  const again = await server.api('/v1/calls/initiate', { method: 'POST', token: bob.token, body: { room_id: room.id, type: 'audio' } });
  t.equal(again.status, 409, 'one live call per room');
  t.equal(again.body.error.details.call_id, call.id);

  const outsider = await server.api(`/v1/calls/${call.id}/join`, { method: 'POST', token: eve.token });
  t.equal(outsider.status, 403, 'a non-member cannot join');
  t.equal((await server.api(`/v1/calls/${call.id}`, { token: eve.token })).status, 403, 'nor read');
  t.equal((await server.api(`/v1/calls/${call.id}/end`, { method: 'POST', token: eve.token, body: {} })).status, 403, 'nor end');

  const annSignal = signal(started.body);
  const welcome = await annSignal.waitFor((m) => m.type === 'welcome');
  t.match(welcome.payload, { callId: call.id, participantId: String, role: 'initiator', permissions: { canPublish: true, canEndCall: true }, peers: [] });
  t.ok(welcome.payload.routerRtpCapabilities.codecs.length > 0);

  const joined = await server.api(`/v1/calls/${call.id}/join`, { method: 'POST', token: bob.token });
  t.equal(joined.status, 200);
  const bobSignal = signal(joined.body);
  const bobWelcome = await bobSignal.waitFor((m) => m.type === 'welcome');
  t.same(bobWelcome.payload.peers.map((p: any) => p.displayName), ['Ann'], 'Bob sees Ann');
  const peerJoined = await annSignal.waitFor((m) => m.type === 'peer_joined');
  t.match(peerJoined.payload, { displayName: 'Bob', userId: bob.id });

  const state = await server.api(`/v1/calls/${call.id}`, { token: bob.token });
  t.equal(state.status, 200);
  const byUser = Object.fromEntries(state.body.call.participants.map((p: any) => [p.user_id, p]));
  t.match(byUser[ann.id], { state: 'joined', video_on: false, audio_on: false });
  t.match(byUser[bob.id], { state: 'joined' });
  t.match(byUser[cat.id], { state: 'invited', joined_at: null });

  const reused = signal(joined.body);
  t.equal((await reused.closed).code, 4001, 'a signaling token works once');

  const byMember = await server.api(`/v1/calls/${call.id}/end`, { method: 'POST', token: bob.token, body: {} });
  t.equal(byMember.status, 403, 'a plain member cannot end the call');
  t.equal(byMember.body.error.code, 'forbidden');

  const catReject = await server.api(`/v1/calls/${call.id}/reject`, { method: 'POST', token: cat.token });
  t.equal(catReject.status, 200);
  t.equal(catReject.body.call.participants.find((p: any) => p.user_id === cat.id).state, 'rejected');
  t.equal((await server.api(`/v1/calls/${call.id}/reject`, { method: 'POST', token: bob.token })).status, 409, 'only ringing invitations can be rejected');

  const ended = await server.api(`/v1/calls/${call.id}/end`, { method: 'POST', token: ann.token, body: { reason: 'done' } });
  t.equal(ended.status, 200);
  t.match(ended.body.call, { status: 'ended', end_reason: 'done', ended_at: String });
  for (const socket of [annSignal, bobSignal]) {
    const status = await socket.waitFor((m) => m.type === 'call_status');
    t.match(status.payload, { callId: call.id, status: 'ended' });
    t.equal((await socket.closed).code, 4010, 'signaling closes with 4010 call ended');
  }
  const endedEvent = await bobEvents.waitFor((m) => m.event?.name === 'call.ended');
  t.equal(endedEvent.data.call.status, 'ended');

  t.equal((await server.api(`/v1/calls/${call.id}/end`, { method: 'POST', token: ann.token, body: {} })).body.error.code, 'call_ended');
  t.equal((await server.api(`/v1/calls/${call.id}/join`, { method: 'POST', token: bob.token })).body.error.code, 'call_ended');
  const roomAfter = await server.api(`/v1/rooms/${room.id}`, { token: ann.token });
  t.equal(roomAfter.body.room.active_call_id, null);
});

t.test('a call nobody is connected to ends by itself after the empty timeout', async (t) => {
  const annEvents = userSocket(server, ann.token);
  t.teardown(() => annEvents.ws.close());
  await annEvents.waitFor((m) => m.event?.name === 'presence');
  const started = await server.api('/v1/calls/initiate', { method: 'POST', token: ann.token, body: { room_id: room.id, type: 'audio' } });
  t.equal(started.status, 201);
  const ended = await annEvents.waitFor((m) => m.event?.name === 'call.ended' && m.data.call.id === started.body.call.id);
  t.equal(ended.data.call.end_reason, 'empty');
});
