import t from 'tap';
import { freePortBase } from '../helpers/ports.ts';
import { startTestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { publisher, roomCall } from '../helpers/recording.ts';

const portBase = await freePortBase(20);
// A recorder binary that exits at once: capture cannot start.
const server = await startTestServer(t, { recording: { port_range: { min: portBase, max: portBase + 19 }, ffmpeg_path: '/bin/false', restart_delay_ms: 50 } });

t.test('no recorder can start: the recording fails with capture_failed (recording.failed), the process goes on', async (t) => {
  const call = await roomCall(server, ['Ann']);
  await publisher(t, await call.join(0), { audio: true }, false);
  const started = await server.api(`/v1/calls/${call.callId}/recording/start`, { method: 'POST', token: call.accounts[0]!.token, body: {} });
  t.equal(started.status, 201);
  const list = await eventually(() => server.api(`/v1/calls/${call.callId}/recordings`, { token: call.accounts[0]!.token }), (r) => r.body.data?.[0]?.status !== 'recording', 30_000);
  t.match(list.body.data[0], { status: 'failed', failure_reason: 'capture_failed', media: null, tracks: [] });
  const events = await server.ctx.db.selectFrom('webhook_events').select(['type', 'body']).where('call_id', '=', call.callId).where('type', 'like', 'recording.%').orderBy('seq').execute();
  t.same(events.map((e) => e.type), ['recording.started', 'recording.failed']);
  t.equal(JSON.parse(events[1]!.body).data.reason, 'capture_failed');
  const again = await server.api(`/v1/calls/${call.callId}/recording/start`, { method: 'POST', token: call.accounts[0]!.token, body: {} });
  t.equal(again.status, 201, 'a failed recording does not block the next one');
});
