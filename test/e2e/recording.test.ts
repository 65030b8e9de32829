/**
 * Recording with real Chromium (docs/recording.md): Alice publishes camera and microphone, the
 * recording runs about 10 s, Bob starts publishing halfway; the MP4 lands in S3 (the s3 driver
 * against the test S3 server) with one H.264 and one AAC stream, as long as the recorded span, and
 * Bob's tile shows his raw track from his offset on (frames sampled with ffmpeg).
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortBase } from '../helpers/ports.ts';
import { startTestServer } from '../helpers/server.ts';
import { TestS3 } from '../helpers/s3.ts';
import { capturedSeconds, download, ffprobe, frameAt, psnr, regionLuma, startTime } from '../helpers/recording.ts';
import { browserTest, demoSignIn, dumpPageLogsOnFailure, ensureWebBuilt, launchClient, openDemo, waitFor, waitForPublishing } from './helpers/browser.ts';
import { joinFromRoomList } from './helpers/call.ts';

t.setTimeout(240_000);

browserTest(t, 'Chromium publishing with recording on: MP4 in S3, second publisher from its offset', async (t) => {
  ensureWebBuilt();
  const s3 = await TestS3.start(t);
  const portBase = await freePortBase(40);
  const compose = { width: 640, height: 360, fps: 15, preset: 'veryfast', crf: 23, audio_bitrate_kbps: 96 };
  const [server, alice, bob] = await Promise.all([
    startTestServer(t, { ...s3.settings(), recording: { port_range: { min: portBase, max: portBase + 39 }, compose } }),
    launchClient(t, 'Alice'),
    launchClient(t, 'Bob'),
  ]);
  dumpPageLogsOnFailure(t, [alice, bob]);
  await Promise.all([openDemo(alice, server.baseUrl), openDemo(bob, server.baseUrl)]);
  const [a, b] = await Promise.all([demoSignIn(alice, 'Alice'), demoSignIn(bob, 'Bob')]);
  const room = await server.api('/v1/rooms', { method: 'POST', token: a.token, body: { name: 'Recorded', members: [{ user_id: b.userId }] } });
  const roomId = room.body.room.id as string;
  const alicePid = await joinFromRoomList(alice, roomId, 'start-video');
  await waitForPublishing(alice);
  const callId = (await alice.page.evaluate(() => window.callplane.callId))!;

  const started = await server.api(`/v1/calls/${callId}/recording/start`, { method: 'POST', token: a.token, body: { audio: true, video: true } });
  t.equal(started.status, 201);
  const id = started.body.recording.id as string;
  const timeline: Record<string, number> = { start: Date.now() };
  const spool = server.ctx.spool.pathFor(id);
  const trackFile = async (participantId: string, kind: 'audio' | 'video') =>
    (await server.ctx.db.selectFrom('recording_tracks').select('file').where('recording_id', '=', id).where('participant_id', '=', participantId).where('kind', '=', kind).executeTakeFirst())?.file;
  const aliceVideo = await waitFor("Alice's video track", () => trackFile(alicePid, 'video'), { timeoutMs: 20_000 });
  await waitFor('4 s of Alice', async () => (await capturedSeconds(join(spool, aliceVideo))) >= 4, { timeoutMs: 30_000 });
  timeline.alice4s = Date.now();

  const bobPid = await joinFromRoomList(bob, roomId, 'join-call');
  await waitForPublishing(bob);
  timeline.bobPublishing = Date.now();
  const bobVideo = await waitFor("Bob's video track", () => trackFile(bobPid, 'video'), { timeoutMs: 20_000 });
  await waitFor('4 s of Bob', async () => (await capturedSeconds(join(spool, bobVideo))) >= 4, { timeoutMs: 30_000 });
  timeline.bob4s = Date.now();
  t.equal((await server.api(`/v1/calls/${callId}/recording/stop`, { method: 'POST', token: a.token })).status, 200);
  t.comment(`timeline (ms from start): ${JSON.stringify(Object.fromEntries(Object.entries(timeline).map(([k, v]) => [k, v - timeline.start!])))}`);

  const rec = await waitFor(
    'the recording to be ready',
    async () => {
      const list = await server.api(`/v1/calls/${callId}/recordings`, { token: b.token });
      const first = list.body.data?.[0];
      return first && ['ready', 'failed'].includes(first.status) ? first : null;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  t.equal(rec.status, 'ready', String(rec.failure_reason));
  t.ok(rec.media.url.startsWith(s3.endpoint), 'a presigned S3 URL');
  const work = mkdtempSync(join(tmpdir(), 'callplane-e2e-rec-'));
  const mp4 = join(work, 'call.mp4');
  await download(rec.media.url, mp4);
  const probed = await ffprobe(mp4);
  t.equal(probed.streams.filter((s) => s.codec_name === 'h264').length, 1, 'exactly one H.264 stream');
  t.equal(probed.streams.filter((s) => s.codec_name === 'aac').length, 1, 'exactly one AAC stream');
  t.equal(probed.streams.length, 2, 'and nothing else');
  const span = (Date.parse(rec.ended_at) - Date.parse(rec.started_at)) / 1000;
  t.ok(span >= 10, `at least 10 s recorded (${span}s)`);
  t.ok(Math.abs(probed.duration - span) < 1, `duration ${probed.duration}s within 1 s of the recorded span ${span}s`);

  // Bob's tile (the right half of the 2-column grid) from his offset on: black before, his raw track after.
  const videoOf = (pid: string) => rec.tracks.find((x: { participant_id: string; kind: string }) => x.participant_id === pid && x.kind === 'video');
  const bobTrack = videoOf(bobPid);
  const aliceTrack = videoOf(alicePid);
  const bobAt = bobTrack.offset_ms / 1000;
  const tile = { w: 320, h: 360 };
  t.ok((await regionLuma(mp4, bobAt - 1, { x: 320, y: 0, ...tile })) < 20, "Bob's tile is black a second before his offset");
  const crop = (x: number) => `crop=${tile.w}:${tile.h}:${x}:0`;
  const fit = `scale=${tile.w}:${tile.h}:force_original_aspect_ratio=decrease,pad=${tile.w}:${tile.h}:(ow-iw)/2:(oh-ih)/2`;
  /** The participant's raw track (from storage) at call time `at`, scaled as the grid scales it. */
  const rawFrame = async (track: { key: string; offset_ms: number }, at: number, name: string): Promise<string> => {
    const rawFile = join(work, `${name}.mkv`);
    writeFileSync(rawFile, await server.ctx.storage.get(track.key));
    return frameAt(rawFile, (await startTime(rawFile)) + at - track.offset_ms / 1000, fit, join(work, `${name}-raw.png`));
  };
  const bobRaw = await rawFrame(bobTrack, bobAt + 2.5, 'bob');
  const bobTile = await frameAt(mp4, bobAt + 2.5, crop(320), join(work, 'bob-tile.png'));
  const blackTile = await frameAt(mp4, bobAt - 1, crop(320), join(work, 'black-tile.png'));
  const alike = await psnr(bobTile, bobRaw);
  const unlike = await psnr(blackTile, bobRaw);
  t.ok(alike > unlike + 6, `2.5 s after his offset Bob's tile matches his raw track (PSNR ${alike.toFixed(1)} dB; the tile before his offset: ${unlike.toFixed(1)} dB)`);
  const aliceRaw = await rawFrame(aliceTrack, bobAt - 1, 'alice');
  const aliceTile = await frameAt(mp4, bobAt - 1, crop(0), join(work, 'alice-tile.png'));
  const aliceAlike = await psnr(aliceTile, aliceRaw);
  t.ok(aliceAlike > (await psnr(blackTile, aliceRaw)) + 6, `Alice's tile matches her raw track meanwhile (PSNR ${aliceAlike.toFixed(1)} dB)`);
});
