import t from 'tap';
import { join } from 'node:path';
import { sql } from 'kysely';
import { createDatabase } from '../../src/db/database.ts';
import { freePortBase } from '../helpers/ports.ts';
import { startTestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { capturedSeconds, ffprobe, publisher, roomCall } from '../helpers/recording.ts';

const portBase = await freePortBase(20);
const server = await startTestServer(t, { recording: { port_range: { min: portBase, max: portBase + 19 } } });

t.test('graceful shutdown: recorders finish their files (trailer written) and the recording is left to compose at the next start', async (t) => {
  const db = createDatabase(server.ctx.databaseUrl, 1);
  t.teardown(() => db.destroy());
  const call = await roomCall(server, ['Ann']);
  await publisher(t, await call.join(0), { audio: true, video: true }, false);
  const started = await server.api(`/v1/calls/${call.callId}/recording/start`, { method: 'POST', token: call.accounts[0]!.token, body: {} });
  const id = started.body.recording.id as string;
  const rows = await eventually(() => db.selectFrom('recording_tracks').selectAll().where('recording_id', '=', id).execute(), (r) => r.length === 2, 20_000);
  const spool = server.ctx.spool.pathFor(id);
  await eventually(() => capturedSeconds(join(spool, rows.find((r) => r.kind === 'video')!.file)), (n) => n >= 2, 30_000);

  await server.stop();
  const row = await db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  t.equal(row.status, 'processing');
  t.equal(row.stop_reason, 'shutdown');
  const queued = await sql<{ n: number }>`select count(*)::int as n from graphile_worker._private_jobs j join graphile_worker._private_tasks k on k.id = j.task_id where k.identifier = 'recording_compose' and j.payload->>'recording_id' = ${id}`.execute(db);
  t.equal(queued.rows[0]!.n, 1, 'its composition is queued for the next start');
  for (const track of await db.selectFrom('recording_tracks').selectAll().where('recording_id', '=', id).execute()) {
    const probed = await ffprobe(join(spool, track.file));
    // Matroska has its duration only once ffmpeg wrote the trailer: a file closed cleanly, not cut off.
    t.ok(Number.isFinite(probed.duration) && probed.duration > 1, `${track.file}: finished with its duration (${probed.duration}s)`);
    t.ok(track.end_offset_ms !== null && Number(track.size_bytes) > 0, `${track.file}: its segment closed in the database`);
  }
});
