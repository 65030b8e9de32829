import t from 'tap';
import { createAccount, startTestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';

const server = await startTestServer(t);
const owner = await createAccount(server, 'user', 'Owner');
const moderator = await createAccount(server, 'user', 'Mod');
const member = await createAccount(server, 'user', 'Member');
const stranger = await createAccount(server, 'user', 'Stranger');

async function liveCall(): Promise<string> {
  const room = await server.api('/v1/rooms', { method: 'POST', token: owner.token, body: { name: 'Rec', members: [{ user_id: moderator.id, power: 50 }, { user_id: member.id }] } });
  const call = await server.api('/v1/calls/initiate', { method: 'POST', token: owner.token, body: { room_id: room.body.room.id, type: 'video' } });
  if (call.status !== 201) throw new Error(`initiate: ${JSON.stringify(call.body)}`);
  return call.body.call.id as string;
}

async function eventTypes(callId: string): Promise<string[]> {
  const rows = await server.ctx.db.selectFrom('webhook_events').select('type').where('call_id', '=', callId).orderBy('seq').execute();
  return rows.map((r) => r.type).filter((type) => type.startsWith('recording.'));
}

t.test('power 100 starts: 201 with the recording shape, in GET call and the list, recording.started recorded', async (t) => {
  const callId = await liveCall();
  const started = await server.api(`/v1/calls/${callId}/recording/start`, { method: 'POST', token: owner.token, body: { audio: true, video: false, transcript: true } });
  t.equal(started.status, 201, JSON.stringify(started.body));
  const rec = started.body.recording;
  t.match(rec, { call_id: callId, status: 'recording', audio: true, video: false, transcript: { status: 'pending' }, ended_at: null, media: null, tracks: [] });
  t.ok(Date.parse(rec.started_at) > 0);

  const call = await server.api(`/v1/calls/${callId}`, { token: member.token });
  t.same(call.body.call.recordings.map((r: { id: string }) => r.id), [rec.id], 'the call lists it');
  const list = await server.api(`/v1/calls/${callId}/recordings`, { token: member.token });
  t.equal(list.status, 200);
  t.same(list.body.pagination, { page: 1, per_page: 20, total: 1, total_pages: 1 });
  t.same(list.body.data[0], call.body.call.recordings[0], 'the same object in both places');
  t.same(await eventTypes(callId), ['recording.started']);

  const again = await server.api(`/v1/calls/${callId}/recording/start`, { method: 'POST', token: owner.token, body: {} });
  t.equal(again.status, 409);
  t.equal(again.body.error.code, 'invalid_state');

  const stopped = await server.api(`/v1/calls/${callId}/recording/stop`, { method: 'POST', token: owner.token });
  t.equal(stopped.status, 200);
  t.equal(stopped.body.recording.status, 'processing');
  t.ok(stopped.body.recording.ended_at);
  t.ok(stopped.body.recording.duration_seconds >= 0);
  const twice = await server.api(`/v1/calls/${callId}/recording/stop`, { method: 'POST', token: owner.token });
  t.equal(twice.status, 409, 'nothing runs any more');
  const job = await server.ctx.db.selectFrom('recordings').select(['stop_reason']).where('id', '=', rec.id).executeTakeFirstOrThrow();
  t.equal(job.stop_reason, 'stopped');
});

t.test('a member or moderator cannot start (403 forbidden); a stranger cannot list (403); the API key can start', async (t) => {
  const callId = await liveCall();
  for (const who of [member, moderator]) {
    const res = await server.api(`/v1/calls/${callId}/recording/start`, { method: 'POST', token: who.token, body: {} });
    t.equal(res.status, 403);
    t.equal(res.body.error.code, 'forbidden');
  }
  const list = await server.api(`/v1/calls/${callId}/recordings`, { token: stranger.token });
  t.equal(list.status, 403);
  t.equal(list.body.error.code, 'forbidden');
  const strangerStart = await server.api(`/v1/calls/${callId}/recording/start`, { method: 'POST', token: stranger.token, body: {} });
  t.equal(strangerStart.status, 403);
  const byKey = await server.api(`/v1/calls/${callId}/recording/start`, { method: 'POST', apiKey: true, body: { audio: true, video: true } });
  t.equal(byKey.status, 201);
  const memberStop = await server.api(`/v1/calls/${callId}/recording/stop`, { method: 'POST', token: member.token });
  t.equal(memberStop.status, 403, 'stopping needs the same right');
  t.equal((await server.api(`/v1/calls/${callId}/recording/stop`, { method: 'POST', apiKey: true })).status, 200);
});

t.test('the tenant switch off: 403 recording_disabled, even for power 100; on again: 201', async (t) => {
  const callId = await liveCall();
  t.equal((await server.api('/v1/settings', { method: 'PUT', apiKey: true, body: { recording_enabled: false } })).status, 200);
  const off = await server.api(`/v1/calls/${callId}/recording/start`, { method: 'POST', token: owner.token, body: {} });
  t.equal(off.status, 403);
  t.equal(off.body.error.code, 'recording_disabled');
  t.equal((await server.api('/v1/settings', { method: 'PUT', apiKey: true, body: { recording_enabled: true } })).status, 200);
  const on = await server.api(`/v1/calls/${callId}/recording/start`, { method: 'POST', token: owner.token, body: {} });
  t.equal(on.status, 201);
  t.equal(on.body.recording.transcript, null, 'no transcript asked: null');
});

t.test('bad bodies are 400 validation_failed; unknown calls 404', async (t) => {
  const callId = await liveCall();
  for (const body of [{ audio: false, video: false }, { audio: 'yes' }, { extra: 1 }]) {
    const res = await server.api(`/v1/calls/${callId}/recording/start`, { method: 'POST', token: owner.token, body });
    t.equal(res.status, 400, JSON.stringify(body));
    t.equal(res.body.error.code, 'validation_failed');
  }
  const missing = await server.api('/v1/calls/01ARZ3NDEKTSV4RRFFQ69G5FAV/recording/start', { method: 'POST', token: owner.token, body: {} });
  t.equal(missing.status, 404);
});

t.test('ending the call stops its recording (call_ended); an ended call cannot be recorded (409)', async (t) => {
  const callId = await liveCall();
  const started = await server.api(`/v1/calls/${callId}/recording/start`, { method: 'POST', token: owner.token, body: {} });
  t.equal(started.status, 201);
  t.equal((await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: owner.token, body: {} })).status, 200);
  const row = await eventually(
    () => server.ctx.db.selectFrom('recordings').select(['status', 'stop_reason', 'failure_reason']).where('id', '=', started.body.recording.id).executeTakeFirstOrThrow(),
    (r) => r.status !== 'recording',
  );
  t.equal(row.stop_reason, 'call_ended');
  // Stopped into processing; nobody published, so the composition job may already have failed it
  // with no_media (only reachable from processing) by the time the poll reads the row.
  t.ok(
    (row.status === 'processing' && row.failure_reason === null) || (row.status === 'failed' && row.failure_reason === 'no_media'),
    `stopped into processing (now ${row.status}, ${row.failure_reason ?? 'no failure'})`,
  );
  const late = await server.api(`/v1/calls/${callId}/recording/start`, { method: 'POST', token: owner.token, body: {} });
  t.equal(late.status, 409);
  t.equal(late.body.error.code, 'invalid_state');
});
