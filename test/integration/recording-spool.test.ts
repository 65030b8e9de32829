import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePortBase } from '../helpers/ports.ts';
import { startTestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';
import { publisher, roomCall } from '../helpers/recording.ts';

const MiB = 1024 * 1024;
const portBase = await freePortBase(20);
const server = await startTestServer(t, { recording: { port_range: { min: portBase, max: portBase + 19 }, spool_max_bytes: 2 * MiB } });
const filler = join(server.ctx.spool.dir, 'filler', 'junk.bin');

function fill(): void {
  mkdirSync(join(server.ctx.spool.dir, 'filler'), { recursive: true });
  writeFileSync(filler, Buffer.alloc(2 * MiB));
}

function doctor(): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, '../../bin/callplane.js'), 'doctor'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', CALLPLANE_DATA_DIR: server.dataDir, CALLPLANE_RECORDING_SPOOL_MAX_BYTES: String(2 * MiB), CALLPLANE_HTTP_PORT: '0' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', () => resolve(out));
  });
}

t.test('a full spool refuses new recordings (503), stops running ones, and doctor reports it', async (t) => {
  const call = await roomCall(server, ['Ann']);
  const owner = call.accounts[0]!;
  await publisher(t, await call.join(0), { audio: true }, false);

  fill();
  const refused = await server.api(`/v1/calls/${call.callId}/recording/start`, { method: 'POST', token: owner.token, body: {} });
  t.equal(refused.status, 503);
  t.equal(refused.body.error.code, 'service_unavailable');
  t.match(await doctor(), /FAIL\s+recording spool\s+.*2\.0 MiB of 2\.0 MiB, 1 recording\(s\) waiting for storage \(full/);

  rmSync(filler);
  t.match(await doctor(), /ok\s+recording spool\s+.* of 2\.0 MiB/);
  const started = await server.api(`/v1/calls/${call.callId}/recording/start`, { method: 'POST', token: owner.token, body: {} });
  t.equal(started.status, 201);
  await eventually(() => server.ctx.db.selectFrom('recording_tracks').select('id').where('recording_id', '=', started.body.recording.id).execute(), (r) => r.length === 1, 20_000);
  fill();
  const row = await eventually(
    () => server.ctx.db.selectFrom('recordings').select(['status', 'stop_reason']).where('id', '=', started.body.recording.id).executeTakeFirstOrThrow(),
    (r) => r.status !== 'recording',
    20_000,
  );
  t.equal(row.stop_reason, 'spool_full', 'the running recording stopped when the spool filled');
  rmSync(filler);
});
