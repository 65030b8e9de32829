import t from 'tap';
import { join } from 'node:path';
import { startTestServer } from '../helpers/server.ts';
import { freePortBase } from '../helpers/ports.ts';
import { eventually } from '../helpers/wait.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { capturedSeconds, download, ffprobe, publisher, regionLuma, roomCall } from '../helpers/recording.ts';

const portBase = await freePortBase(40);
const server = await startTestServer(t, { recording: { port_range: { min: portBase, max: portBase + 39 }, restart_delay_ms: 200 } });

const tracksOf = (recordingId: string) =>
  server.ctx.db.selectFrom('recording_tracks').selectAll().where('recording_id', '=', recordingId).orderBy('created_at').orderBy('id').execute();

t.test('capture: every producer to its own Matroska file, mid-call producers added, ffmpeg restarted as a new segment', async (t) => {
  const call = await roomCall(server, ['Ann', 'Bob']);
  const ann = await publisher(t, await call.join(0), { audio: true, video: true });
  const started = await server.api(`/v1/calls/${call.callId}/recording/start`, { method: 'POST', token: call.accounts[0]!.token, body: {} });
  t.equal(started.status, 201);
  const recordingId = started.body.recording.id as string;

  const first = await eventually(() => tracksOf(recordingId), (rows) => rows.length === 2, 20_000);
  t.same(first.map((r) => r.kind).sort(), ['audio', 'video'], "Ann's two producers are captured");
  t.ok(first.every((r) => r.participant_id === ann.participantId && r.segment === 1));
  t.same(first.map((r) => r.codec).sort(), ['audio/opus', 'video/VP8']);

  // Recording consumers do not count against subscriber capacity: only the peers' own consumers do.
  const bob = await publisher(t, await call.join(1), { audio: true });
  const all = await eventually(() => tracksOf(recordingId), (rows) => rows.length === 3, 20_000);
  const bobTrack = all.find((r) => r.participant_id === bob.participantId)!;
  t.equal(bobTrack.kind, 'audio', "Bob's producer, published mid-recording, is added");
  t.ok(bobTrack.offset_ms > first[0]!.offset_ms, 'with a later offset');
  await eventually(() => bob.consumers.size + ann.consumers.size, (n) => n === 3);
  t.equal(server.ctx.media.consumerCount(0), 3, 'the worker counts the 3 subscriber consumers, not the 3 taps');

  // ffmpeg of Ann's video dies: the track goes on as segment 2.
  const videoRow = first.find((r) => r.kind === 'video')!;
  const pidsBefore = server.ctx.recordingCapture.pids(recordingId);
  t.equal(pidsBefore.length, 3, 'one ffmpeg per track');
  // Killed once segment 1 holds 1.5 s of video (a file with only its header would show nothing before the kill).
  await eventually(() => capturedSeconds(join(server.ctx.spool.pathFor(recordingId), videoRow.file)), (seconds) => seconds >= 1.5, 20_000);
  const videoPid = await videoPidOf(recordingId, videoRow.file);
  process.kill(videoPid, 'SIGKILL');
  const restarted = await eventually(() => tracksOf(recordingId), (rows) => rows.some((r) => r.producer_id === videoRow.producer_id && r.segment === 2), 20_000);
  const seg2 = restarted.find((r) => r.producer_id === videoRow.producer_id && r.segment === 2)!;
  t.ok(seg2.offset_ms > videoRow.offset_ms, 'segment 2 starts later');
  const seg1 = restarted.find((r) => r.id === videoRow.id)!;
  t.ok(seg1.end_offset_ms !== null && seg1.end_offset_ms <= seg2.offset_ms, 'segment 1 ended before segment 2 began');
  // Segment 2 gets media (a key frame was asked for once ffmpeg listened).
  await eventually(() => ffprobe(join(server.ctx.spool.pathFor(recordingId), seg2.file)).catch(() => null), (p) => p?.streams[0]?.codec_name === 'vp8', 20_000);

  // Bob unpublishes: his track ends while the recording goes on.
  await bob.close({ leave: true });
  await eventually(() => tracksOf(recordingId), (rows) => rows.find((r) => r.id === bobTrack.id)?.end_offset_ms !== null, 20_000);

  const stopped = await server.api(`/v1/calls/${call.callId}/recording/stop`, { method: 'POST', token: call.accounts[0]!.token });
  t.equal(stopped.status, 200);
  t.same(server.ctx.recordingCapture.pids(recordingId), [], 'every ffmpeg has exited once stop answered');
  const final = await tracksOf(recordingId);
  // What segment 1's file holds, read now: the spool lets the files go once storage has them.
  const heldSeconds = await capturedSeconds(join(server.ctx.spool.pathFor(recordingId), seg1.file));
  t.ok(heldSeconds >= 1.5, `segment 1 holds ${heldSeconds.toFixed(2)} s of video`);
  for (const row of final) {
    const probed = await ffprobe(join(server.ctx.spool.pathFor(recordingId), row.file));
    t.equal(probed.streams.length, 1, `${row.file}: one stream`);
    t.equal(probed.streams[0]!.codec_name, row.kind === 'video' ? 'vp8' : 'opus', `${row.file}: copied, not re-encoded`);
    // A file whose ffmpeg was killed has no duration in its header, but every packet it got.
    t.ok(Number(probed.streams[0]!.nb_read_packets) > 10, `${row.file}: has media (${probed.streams[0]!.nb_read_packets} packets)`);
    t.ok(row.end_offset_ms !== null && Number(row.size_bytes) > 0, `${row.file}: closed with its size`);
  }
  const api = await server.api(`/v1/calls/${call.callId}/recordings`, { token: call.accounts[1]!.token });
  t.equal(api.body.data[0].tracks.length, final.length, 'the API lists every segment');
  t.ok(api.body.data[0].tracks.every((tr: { key: string }) => tr.key.startsWith(`recordings/${call.callId}/`)));

  // The recording still completes, and covers the time outside the gap: Ann's video (the only video:
  // one tile, the whole canvas) shows in segment 1 and in segment 2, black only in between.
  const ready = await eventually(() => server.api(`/v1/calls/${call.callId}/recordings`, { token: call.accounts[0]!.token }), (r) => ['ready', 'failed'].includes(r.body.data?.[0]?.status), 120_000);
  const rec = ready.body.data[0];
  t.equal(rec.status, 'ready', String(rec.failure_reason));
  const mp4 = join(mkdtempSync(join(tmpdir(), 'callplane-rec-')), 'r.mp4');
  await download(rec.media.url, mp4);
  const whole = { x: 0, y: 0, w: 1280, h: 720 };
  // Half a second before the last frame segment 1's file holds (its ffmpeg was killed with 1.5 s or
  // more in it). Not counted back from end_offset_ms: that is when the server saw ffmpeg die, which on a
  // loaded machine comes well after the last frame ffmpeg wrote.
  const inSeg1 = seg1.offset_ms / 1000 + heldSeconds - 0.5;
  const inSeg2 = (seg2.offset_ms + 1500) / 1000;
  t.ok((await regionLuma(mp4, inSeg1, whole)) > 60, `video before the kill is in the MP4 (t=${inSeg1.toFixed(2)}s)`);
  t.ok((await regionLuma(mp4, inSeg2, whole)) > 60, `video after the restart is in the MP4 (t=${inSeg2}s)`);
  t.same((await ffprobe(mp4)).streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
});

/** The pid of the ffmpeg writing `file` (its command line names the file). */
async function videoPidOf(recordingId: string, file: string): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  for (const pid of server.ctx.recordingCapture.pids(recordingId)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(file.replace(/^tracks\//, ''))) return pid;
  }
  throw new Error(`no ffmpeg writes ${file}`);
}
