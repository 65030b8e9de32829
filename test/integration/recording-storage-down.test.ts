import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase } from '../../src/db/database.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { NodePeer } from '../helpers/node-peer.ts';
import { freePortBase } from '../helpers/ports.ts';
import { ServerProcess } from '../helpers/server-process.ts';
import { TestS3 } from '../helpers/s3.ts';
import { eventually } from '../helpers/wait.ts';
import { capturedSeconds, download, ffprobe } from '../helpers/recording.ts';

const s3 = await TestS3.start(t);
const databaseUrl = await createTestDatabase(t);
const db = createDatabase(databaseUrl, 2);
t.teardown(() => db.destroy());
const portBase = await freePortBase(20);
const server = await ServerProcess.create(t, databaseUrl, {
  ...s3.env(),
  CALLPLANE_RECORDING_PORT_RANGE_MIN: String(portBase),
  CALLPLANE_RECORDING_PORT_RANGE_MAX: String(portBase + 19),
  CALLPLANE_RECORDING_UPLOAD_RETRY_INITIAL_MS: '300',
  CALLPLANE_RECORDING_UPLOAD_RETRY_MAX_MS: '1000',
  CALLPLANE_RECORDING_COMPOSE_PRESET: 'ultrafast',
});
await server.start();

async function account(name: string): Promise<{ id: string; token: string }> {
  const user = await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: name, role: 'user' } });
  const token = await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: user.body.user.id, ttl_seconds: 86400 } });
  return { id: user.body.user.id, token: token.body.access_token };
}

t.test('storage down at stop: the files wait in the spool, across a SIGKILL and restart, and upload once storage is back', async (t) => {
  const ann = await account('Ann');
  const room = await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'Outage' } });
  const call = await server.api('/v1/calls/initiate', { method: 'POST', token: ann.token, body: { room_id: room.body.room.id, type: 'video' } });
  const peer = await NodePeer.connect({ signalingUrl: call.body.signaling_url, token: call.body.signaling_token, produce: { audio: true, video: true }, consume: false });
  t.teardown(() => peer.close({ leave: false }).then(() => undefined));
  const started = await server.api(`/v1/calls/${call.body.call.id}/recording/start`, { method: 'POST', token: ann.token, body: {} });
  t.equal(started.status, 201);
  const id = started.body.recording.id as string;
  const video = await eventually(() => db.selectFrom('recording_tracks').selectAll().where('recording_id', '=', id).where('kind', '=', 'video').executeTakeFirst(), Boolean, 20_000);
  const dataDir = server['env'].CALLPLANE_DATA_DIR!;
  await eventually(() => capturedSeconds(join(dataDir, 'spool', id, video!.file)), (n) => n >= 3, 30_000);

  await s3.stop();
  const stopped = await server.api(`/v1/calls/${call.body.call.id}/recording/stop`, { method: 'POST', token: ann.token });
  t.equal(stopped.status, 200);
  const failing = await eventually(() => db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirstOrThrow(), (r) => r.upload_attempts >= 1, 60_000);
  t.equal(failing.status, 'processing', 'not ready while storage is down');
  t.ok(failing.composed_at, 'composed before the upload was tried');

  await server.kill();
  await peer.close({ leave: false });
  await server.start('/healthz'); // storage is still down: /readyz says so
  const before = failing.upload_attempts;
  await eventually(() => db.selectFrom('recordings').select('upload_attempts').where('id', '=', id).executeTakeFirstOrThrow(), (r) => r.upload_attempts > before, 30_000);
  t.equal((await fetch(`${server.baseUrl}/readyz`)).status, 503, 'readiness reports storage down');

  await s3.up();
  const list = await eventually(() => server.api(`/v1/calls/${call.body.call.id}/recordings`, { token: ann.token }), (r) => r.body.data?.[0]?.status === 'ready', 60_000);
  const rec = list.body.data[0];
  const file = join(mkdtempSync(join(tmpdir(), 'callplane-rec-')), 'r.mp4');
  await download(rec.media.url, file); // presigned: no Authorization header
  const probed = await ffprobe(file);
  t.same(probed.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
  const span = (Date.parse(rec.ended_at) - Date.parse(rec.started_at)) / 1000;
  t.ok(Math.abs(probed.duration - span) < 1, `duration ${probed.duration}s vs span ${span}s`);
  t.ok(rec.tracks.length >= 2, 'raw tracks listed');
  const events = await db.selectFrom('webhook_events').select('type').where('call_id', '=', call.body.call.id).where('type', 'like', 'recording.%').orderBy('seq').execute();
  t.same(events.map((e) => e.type), ['recording.started', 'recording.finished'], 'finished once, after the upload');
});
