import t, { type Test } from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortBase } from '../helpers/ports.ts';
import { startTestServer } from '../helpers/server.ts';
import { TranscriptionServer } from '../helpers/transcription-server.ts';
import { eventually } from '../helpers/wait.ts';
import { capturedSeconds, ffprobe, publisher, roomCall } from '../helpers/recording.ts';

const engine = await TranscriptionServer.start();
t.teardown(() => engine.close());
const portBase = await freePortBase(20);
const server = await startTestServer(t, {
  recording: { port_range: { min: portBase, max: portBase + 19 }, upload_retry_initial_ms: 200, transcription: { url: engine.url, api_key: 'sk-test-123', model: 'whisper-large-test', timeout_ms: 30000 } },
});

async function recordBriefly(t: Test, transcript: boolean): Promise<{ callId: string; token: string }> {
  const call = await roomCall(server, ['Ann']);
  const owner = call.accounts[0]!;
  await publisher(t, await call.join(0), { audio: true }, false);
  const started = await server.api(`/v1/calls/${call.callId}/recording/start`, { method: 'POST', token: owner.token, body: { audio: true, video: false, transcript } });
  const id = started.body.recording.id as string;
  const rows = await eventually(() => server.ctx.db.selectFrom('recording_tracks').selectAll().where('recording_id', '=', id).execute(), (r) => r.length === 1, 20_000);
  await eventually(() => capturedSeconds(join(server.ctx.spool.pathFor(id), rows[0]!.file)), (n) => n >= 2, 30_000);
  await server.api(`/v1/calls/${call.callId}/recording/stop`, { method: 'POST', token: owner.token });
  return { callId: call.callId, token: owner.token };
}

t.test('transcript: the mixed audio goes to the engine as multipart with the model; the text lands on the recording and in recording.finished', async (t) => {
  engine.respond = () => ({ status: 200, body: { text: 'A tone at four hundred and forty hertz.' } });
  const { callId, token } = await recordBriefly(t, true);
  const list = await eventually(() => server.api(`/v1/calls/${callId}/recordings`, { token }), (r) => ['ready', 'failed'].includes(r.body.data?.[0]?.status), 120_000);
  const rec = list.body.data[0];
  t.equal(rec.status, 'ready');
  t.same(rec.transcript, { status: 'ready', text: 'A tone at four hundred and forty hertz.' });

  const request = engine.requests.at(-1)!;
  t.equal(request.authorization, 'Bearer sk-test-123');
  t.match(request.contentType, /^multipart\/form-data; boundary=/);
  t.equal(request.model, 'whisper-large-test', 'the configured model');
  t.equal(request.responseFormat, 'json');
  t.equal(request.fileType, 'audio/mp4');
  const audio = join(mkdtempSync(join(tmpdir(), 'callplane-tr-')), request.fileName ?? 'a.m4a');
  writeFileSync(audio, request.file!);
  const probed = await ffprobe(audio);
  t.same(probed.streams.map((s) => s.codec_name), ['aac'], 'the file is the recording\'s audio');
  t.ok(Math.abs(probed.duration - rec.duration_seconds) < 1, `as long as the recording (${probed.duration}s)`);

  const finished = await server.ctx.db.selectFrom('webhook_events').select('body').where('call_id', '=', callId).where('type', '=', 'recording.finished').executeTakeFirstOrThrow();
  t.same(JSON.parse(finished.body).data.transcript, { status: 'ready', text: 'A tone at four hundred and forty hertz.' });
});

t.test('an engine that refuses: transcript failed, the recording is still ready', async (t) => {
  engine.respond = () => ({ status: 400, body: { error: { message: 'Invalid file format.' } } });
  const { callId, token } = await recordBriefly(t, true);
  const list = await eventually(() => server.api(`/v1/calls/${callId}/recordings`, { token }), (r) => ['ready', 'failed'].includes(r.body.data?.[0]?.status), 120_000);
  t.equal(list.body.data[0].status, 'ready');
  t.same(list.body.data[0].transcript, { status: 'failed' });
});
