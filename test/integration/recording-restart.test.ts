import t from 'tap';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase } from '../../src/db/database.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { NodePeer } from '../helpers/node-peer.ts';
import { freePortBase } from '../helpers/ports.ts';
import { ServerProcess } from '../helpers/server-process.ts';
import { eventually } from '../helpers/wait.ts';
import { capturedSeconds, download, ffprobe } from '../helpers/recording.ts';

const databaseUrl = await createTestDatabase(t);
const db = createDatabase(databaseUrl, 2);
t.teardown(() => db.destroy());
const portBase = await freePortBase(20);
const server = await ServerProcess.create(t, databaseUrl, {
  CALLPLANE_RECORDING_PORT_RANGE_MIN: String(portBase),
  CALLPLANE_RECORDING_PORT_RANGE_MAX: String(portBase + 19),
  // A slow preset, so that the composition is still running when the test kills the server.
  CALLPLANE_RECORDING_COMPOSE_PRESET: 'medium',
});
await server.start();

t.test('SIGKILL while recording, then again mid-composition: the next start composes what was captured and the recording is ready', async (t) => {
  const user = await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Ann', role: 'user' } });
  const token = (await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: user.body.user.id, ttl_seconds: 86400 } })).body.access_token;
  const room = await server.api('/v1/rooms', { method: 'POST', token, body: { name: 'Crash' } });
  const call = await server.api('/v1/calls/initiate', { method: 'POST', token, body: { room_id: room.body.room.id, type: 'video' } });
  const callId = call.body.call.id as string;
  const peer = await NodePeer.connect({ signalingUrl: call.body.signaling_url, token: call.body.signaling_token, produce: { audio: true, video: true }, consume: false });
  t.teardown(() => peer.close({ leave: false }).then(() => undefined));
  const id = (await server.api(`/v1/calls/${callId}/recording/start`, { method: 'POST', token, body: {} })).body.recording.id as string;
  const spool = join(server['env'].CALLPLANE_DATA_DIR!, 'spool', id);
  const video = await eventually(() => db.selectFrom('recording_tracks').selectAll().where('recording_id', '=', id).where('kind', '=', 'video').executeTakeFirst(), Boolean, 20_000);
  await eventually(() => capturedSeconds(join(spool, video!.file)), (n) => n >= 4, 30_000);

  await server.kill(); // its ffmpeg processes die with it (they would otherwise hold their ports)
  await peer.close({ leave: false });
  await server.start();
  const stopped = await eventually(() => db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirstOrThrow(), (r) => r.status !== 'recording', 20_000);
  t.equal(stopped.stop_reason, 'server_restarted', 'the restart stopped the recording it found running');

  await eventually(() => existsSync(join(spool, 'composed.mp4.partial')), Boolean, 60_000);
  await server.kill(); // mid-composition
  await server.start();
  const rec = (await eventually(() => server.api(`/v1/calls/${callId}/recordings`, { token }), (r) => ['ready', 'failed'].includes(r.body.data?.[0]?.status), 180_000)).body.data[0];
  t.equal(rec.status, 'ready', String(rec.failure_reason));
  const file = join(mkdtempSync(join(tmpdir(), 'callplane-rec-')), 'r.mp4');
  await download(rec.media.url, file);
  const probed = await ffprobe(file);
  t.same(probed.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], 'a complete MP4 from the files the killed recorders left');
  t.ok(Math.abs(probed.duration - rec.duration_seconds) < 1, `as long as the recording (${probed.duration}s)`);
  t.ok(rec.tracks.length >= 2);
});
