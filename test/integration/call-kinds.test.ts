/**
 * One call model, one handler per kind (src/calls/kinds.ts): the facade that the routes use reads the
 * call row and hands it to its kind. For each kind: join, status (describe), end, and the DTO shown.
 */
import t from 'tap';
import { newId } from '../../src/shared/ids.ts';
import { createAccount, startTestServer } from '../helpers/server.ts';
import { recorder } from '../helpers/ws.ts';
import { eventually } from '../helpers/wait.ts';

const server = await startTestServer(t);
const calls = server.ctx.calls;
const url = `${server.baseUrl.replace('http', 'ws')}/v1/signal`;

t.test('room: join, describe, end through the facade; the room DTO', async (t) => {
  const ann = await createAccount(server, 'user', 'Ann');
  const bob = await createAccount(server, 'user', 'Bob');
  const room = (await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'Kinds', members: [{ user_id: bob.id }] } })).body.room;
  const started = await server.api('/v1/calls/initiate', { method: 'POST', token: ann.token, body: { room_id: room.id, type: 'audio' } });
  const callId = started.body.call.id as string;
  const joined = await calls.join({ userId: bob.id, isAdmin: false }, callId, url);
  t.match(joined, { call: { id: callId, room_id: room.id, type: 'audio', status: 'active' }, signaling_url: url, signaling_token: /^st_/ });
  const described = await calls.describe({ userId: bob.id, isAdmin: false }, callId);
  t.match(described, { id: callId, status: 'active', recordings: [] });
  const participants = 'participants' in described ? described.participants : [];
  t.same(participants.map((p) => [p.user_id, p.state]).sort(), [[ann.id, 'joined'], [bob.id, 'joined']].sort(), 'both members joined');
  t.notOk('rate_per_minute' in described, 'a room call shows no meter');
  await t.rejects(calls.end({ userId: bob.id, isAdmin: false }, callId, {}), { code: 'forbidden' }, 'a member below moderator cannot end it');
  const ended = await calls.end({ userId: ann.id, isAdmin: false }, callId, { reason: 'done_here' });
  t.match(ended, { id: callId, status: 'ended', end_reason: 'done_here' });
  await t.rejects(calls.join({ userId: bob.id, isAdmin: false }, callId, url), { code: 'call_ended' });
});

t.test('paid: join, describe, end through the facade; the paid DTO with its meter', async (t) => {
  const host = await createAccount(server, 'host', 'Hana');
  const hostSocket = recorder(`${server.baseUrl.replace('http', 'ws')}/v1/ws?token=${host.token}`);
  t.teardown(() => hostSocket.ws.close());
  await eventually(() => server.ctx.userNotifier.isOnline(host.id), Boolean);
  const code = (await server.api('/v1/links', { method: 'POST', token: host.token, body: { rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 10 } })).body.link.short_code;
  const guest = (await server.api(`/v1/links/${code}/guest`, { method: 'POST', body: { guest_name: 'Gus' } })).body;
  const initiated = await server.api('/v1/calls/initiate', { method: 'POST', token: guest.access_token, body: { short_code: code, payment_method_id: 'pm_card_visa' } });
  const callId = initiated.body.call.id as string;
  const joined = await calls.join({ userId: host.id, isAdmin: false }, callId, url);
  t.match(joined, { call: { id: callId, kind: 'paid', status: 'waiting', short_code: code, rate_per_minute: '2.00' }, signaling_token: /^st_/ });
  const described = await calls.describe({ userId: guest.user.id, isAdmin: false }, callId);
  t.match(described, { id: callId, kind: 'paid', status: 'waiting', current_window: null, duration_seconds: null });
  await t.rejects(calls.leave({ userId: guest.user.id, isAdmin: false }, callId), { code: 'invalid_state' }, 'a paid call is left by ending it');
  const ended = await calls.end({ userId: guest.user.id, isAdmin: false }, callId, {});
  t.match(ended, { id: callId, kind: 'paid', status: 'cancelled', end_reason: 'user_ended', duration_seconds: 0, total_charged: '0.00' });
});

t.test('direct: through the facade like any kind; its participants only; the initiator is its owner', async (t) => {
  const dee = await createAccount(server, 'user', 'Dee');
  const other = await createAccount(server, 'user', 'Otto');
  const callId = newId();
  await server.ctx.db.insertInto('calls').values({ id: callId, kind: 'direct', room_id: null, media_type: 'video', status: 'active', initiator_id: dee.id, created_at: new Date(), updated_at: new Date() }).execute();
  const participantId = newId();
  await server.ctx.db.insertInto('call_participants').values({ id: participantId, call_id: callId, user_id: dee.id, role: 'initiator', state: 'joined', invited_at: new Date() }).execute();
  t.match(await calls.describe({ userId: dee.id, isAdmin: false }, callId), { id: callId, kind: 'direct', status: 'active' });
  await t.rejects(calls.describe({ userId: other.id, isAdmin: false }, callId), { code: 'forbidden' });
  await t.rejects(calls.join({ userId: other.id, isAdmin: false }, callId, url), { code: 'forbidden' }, 'only the handshake brings users in');
  await t.rejects(calls.reject({ userId: dee.id, isAdmin: false }, callId), { code: 'invalid_state' });
  const { token } = await server.ctx.signalingTokens.issue(callId, participantId);
  t.match(await calls.resolveSignalingToken(token), { callId, participantId, permissions: { isOwner: true, canPublish: true, canEndCall: true } });
});

t.test('an unknown call is not_found for every action', async (t) => {
  const actor = { userId: newId(), isAdmin: false };
  for (const action of [() => calls.describe(actor, newId()), () => calls.join(actor, newId(), url), () => calls.end(actor, newId(), {})] as Array<() => Promise<unknown>>) {
    await t.rejects(action(), { code: 'not_found' });
  }
});

t.test('the database holds calls.status to the typed union', async (t) => {
  const dee = await createAccount(server, 'user', 'Dora');
  await t.rejects(
    server.ctx.db.insertInto('calls').values({ id: newId(), kind: 'room', room_id: null, media_type: 'video', status: 'bogus' as never, initiator_id: dee.id, created_at: new Date(), updated_at: new Date() }).execute(),
    /calls_status_check/,
  );
});
