import t from 'tap';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { freePortBase } from '../helpers/ports.ts';
import { eventually } from '../helpers/wait.ts';
import { capturedSeconds, download, ffprobe, publisher, regionLuma, roomCall } from '../helpers/recording.ts';

const portBase = await freePortBase(40);
const server = await startTestServer(t, { recording: { port_range: { min: portBase, max: portBase + 39 }, compose: { width: 640, height: 360, fps: 15, preset: 'ultrafast', crf: 30, audio_bitrate_kbps: 64 } } });
const work = mkdtempSync(join(tmpdir(), 'callplane-rec-'));

const tracksOf = (recordingId: string) => server.ctx.db.selectFrom('recording_tracks').selectAll().where('recording_id', '=', recordingId).orderBy('offset_ms').execute();

async function waitForMedia(s: TestServer, recordingId: string, participantId: string, seconds: number): Promise<void> {
  const rows = await eventually(() => tracksOf(recordingId), (r) => r.some((x) => x.participant_id === participantId && x.kind === 'video'), 20_000);
  const video = rows.find((x) => x.participant_id === participantId && x.kind === 'video')!;
  await eventually(() => capturedSeconds(join(s.ctx.spool.pathFor(recordingId), video.file)), (n) => n >= seconds, 30_000);
}

async function ready(callId: string, token: string) {
  const list = await eventually(() => server.api(`/v1/calls/${callId}/recordings`, { token }), (r) => ['ready', 'failed'].includes(r.body.data?.[0]?.status), 120_000);
  return list.body.data[0];
}

t.test('composition: one MP4 (H.264 + AAC) in storage, the second publisher in its tile from its offset, raw tracks beside it', async (t) => {
  const call = await roomCall(server, ['Ann', 'Bob']);
  const owner = call.accounts[0]!;
  const ann = await publisher(t, await call.join(0), { audio: true, video: true }, false);
  const started = await server.api(`/v1/calls/${call.callId}/recording/start`, { method: 'POST', token: owner.token, body: {} });
  const recordingId = started.body.recording.id as string;
  await waitForMedia(server, recordingId, ann.participantId, 3);
  const bob = await publisher(t, await call.join(1), { audio: true, video: true }, false);
  await waitForMedia(server, recordingId, bob.participantId, 3);
  t.equal((await server.api(`/v1/calls/${call.callId}/recording/stop`, { method: 'POST', token: owner.token })).status, 200);

  const rec = await ready(call.callId, owner.token);
  t.equal(rec.status, 'ready', JSON.stringify(rec.failure_reason));
  t.match(rec.media.key, new RegExp(`^recordings/${call.callId}/\\d{8}T\\d{9}Z\\.mp4$`));
  t.equal(rec.media.content_type, 'video/mp4');
  const mp4 = join(work, 'composed.mp4');
  await download(rec.media.url, mp4);
  const probed = await ffprobe(mp4);
  t.same(probed.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], 'exactly one H.264 and one AAC stream');
  const span = (Date.parse(rec.ended_at) - Date.parse(rec.started_at)) / 1000;
  t.ok(Math.abs(probed.duration - span) < 1, `file ${probed.duration}s vs recorded span ${span}s`);
  t.ok(Math.abs(rec.duration_seconds - span) < 1, `duration_seconds ${rec.duration_seconds}`);
  t.equal(rec.media.size_bytes, (await server.ctx.storage.head(rec.media.key))!.size);

  // Two participants: a 2-column grid of 320x360 tiles on the 640x360 canvas; Bob (second to appear) is on the right.
  const bobVideo = rec.tracks.find((x: { participant_id: string; kind: string }) => x.participant_id === bob.participantId && x.kind === 'video');
  const annVideo = rec.tracks.find((x: { participant_id: string; kind: string }) => x.participant_id === ann.participantId && x.kind === 'video');
  const bobAt = bobVideo.offset_ms / 1000;
  t.ok(bobAt > annVideo.offset_ms / 1000 + 2, 'Bob started later');
  const right = { x: 320, y: 0, w: 320, h: 360 };
  const left = { x: 0, y: 0, w: 320, h: 360 };
  const beforeBob = await regionLuma(mp4, bobAt - 1, right);
  const afterBob = await regionLuma(mp4, bobAt + 1.5, right);
  t.ok(beforeBob < 20, `Bob's tile is black before his offset (Y ${beforeBob})`);
  t.ok(afterBob > 60, `Bob's tile shows his video after it (Y ${afterBob})`);
  t.ok((await regionLuma(mp4, bobAt - 1, left)) > 60, "Ann's tile shows her video meanwhile");

  for (const track of rec.tracks) t.ok(await server.ctx.storage.head(track.key), `raw track ${track.key} in storage`);
  t.ok(rec.tracks.every((x: { key: string }) => x.key.startsWith(rec.media.key.replace(/\.mp4$/, '.tracks/'))), 'raw tracks beside the MP4');
  t.notOk(existsSync(server.ctx.spool.pathFor(recordingId)), 'the spool copy is gone once storage confirmed everything');
  const events = await server.ctx.db.selectFrom('webhook_events').select(['type', 'body']).where('call_id', '=', call.callId).where('type', 'like', 'recording.%').orderBy('seq').execute();
  t.same(events.map((e) => e.type), ['recording.started', 'recording.finished']);
  t.match(JSON.parse(events[1]!.body).data, { recording_id: recordingId, media_key: rec.media.key, content_type: 'video/mp4', transcript: null });
  const call2 = await server.api(`/v1/calls/${call.callId}`, { token: owner.token });
  t.equal(call2.body.call.recordings[0].media.key, rec.media.key, 'GET call carries the same recording');
});

t.test('an audio-only recording is an audio-only MP4 (audio/mp4)', async (t) => {
  const call = await roomCall(server, ['Cat']);
  const owner = call.accounts[0]!;
  const cat = await publisher(t, await call.join(0), { audio: true, video: true }, false);
  const started = await server.api(`/v1/calls/${call.callId}/recording/start`, { method: 'POST', token: owner.token, body: { audio: true, video: false } });
  const recordingId = started.body.recording.id as string;
  const row = await eventually(() => tracksOf(recordingId), (r) => r.length === 1, 20_000);
  t.equal(row[0]!.kind, 'audio', 'video was not asked for: not captured');
  await eventually(() => capturedSeconds(join(server.ctx.spool.pathFor(recordingId), row[0]!.file)), (n) => n >= 2, 30_000);
  void cat;
  await server.api(`/v1/calls/${call.callId}/recording/stop`, { method: 'POST', token: owner.token });
  const rec = await ready(call.callId, owner.token);
  t.equal(rec.status, 'ready');
  t.equal(rec.media.content_type, 'audio/mp4');
  const file = join(work, 'audio.mp4');
  await download(rec.media.url, file);
  const probed = await ffprobe(file);
  t.same(probed.streams.map((s) => s.codec_name), ['aac'], 'one AAC stream, no video');
});
