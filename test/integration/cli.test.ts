import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase } from '../helpers/db.ts';

const BIN = join(import.meta.dirname, '../../bin/callplane.js');

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const dataDir = mkdtempSync(join(tmpdir(), 'callplane-cli-'));

t.test('a bad config value makes the process exit non-zero with a message naming the key', async (t) => {
  for (const command of [['serve'], ['doctor'], ['migrate']]) {
    const result = await cli(command, { CALLPLANE_DATA_DIR: dataDir, CALLPLANE_MEDIA_PORT_BASE: 'high' });
    t.equal(result.code, 2, `${command[0]} exits 2`);
    t.match(result.stderr, /media\.port_base: expected integer \(got "high"\)/);
  }
});

t.test('user create and token create work against a real database and print JSON', async (t) => {
  const env = { CALLPLANE_DATA_DIR: dataDir, DATABASE_URL: await createTestDatabase(t), CALLPLANE_LOG_LEVEL: 'error' };
  const migrate = await cli(['migrate'], env);
  t.equal(migrate.code, 0, migrate.stderr);
  const created = await cli(['user', 'create', '--name', 'Host Hanna', '--role', 'host', '--rate', '2.50', '--currency', 'eur'], env);
  t.equal(created.code, 0, created.stderr);
  const user = JSON.parse(created.stdout).user;
  t.match(user, { display_name: 'Host Hanna', role: 'host', default_rate: '2.50', currency: 'eur' });
  const token = await cli(['token', 'create', '--user', user.id, '--ttl', '120'], env);
  t.equal(token.code, 0, token.stderr);
  const minted = JSON.parse(token.stdout);
  t.match(minted.access_token, /^ey[\w-]+\.[\w-]+\.[\w-]+$/);
  const lifetime = Date.parse(minted.expires_at) - Date.now();
  t.ok(lifetime > 100_000 && lifetime <= 120_000, 'ttl is honoured');

  const badRole = await cli(['user', 'create', '--name', 'X', '--role', 'emperor'], env);
  t.equal(badRole.code, 2, 'argument errors exit 2');
  t.match(badRole.stderr, /emperor/);
  const missingUser = await cli(['token', 'create', '--user', '01ARZ3NDEKTSV4RRFFQ69G5FAV'], env);
  t.not(missingUser.code, 0);
  t.match(missingUser.stderr, /not_found/);
  const badId = await cli(['token', 'create', '--user', 'bob'], env);
  t.equal(badId.code, 2);
  t.match(badId.stderr, /ULID/);

  const link = await cli(['link', 'create', '--host', user.id, '--rate', '2.00', '--currency', 'usd', '--window', '5', '--max-uses', '3'], env);
  t.equal(link.code, 0, link.stderr);
  t.match(JSON.parse(link.stdout).link, { short_code: /^[a-z0-9]{8}$/, host: { id: user.id }, rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 5, max_uses: 3, uses: 0 });
  const badRate = await cli(['link', 'create', '--host', user.id, '--rate', '2.001', '--currency', 'usd'], env);
  t.equal(badRate.code, 2, 'a bad rate is an argument error');
  t.match(badRate.stderr, /rate_per_minute/);
});

t.test('doctor prints one line per check and fails when a port is taken', async (t) => {
  const { freePortBase } = await import('../helpers/ports.ts');
  // A media port found free (a fixed one in the kernel's ephemeral range can be held by any outgoing connection).
  const env = { CALLPLANE_DATA_DIR: dataDir, DATABASE_URL: await createTestDatabase(t), CALLPLANE_HTTP_PORT: '0', CALLPLANE_MEDIA_PORT_BASE: String(await freePortBase(1)), CALLPLANE_MEDIA_WORKERS: '1' };
  const healthy = await cli(['doctor'], env);
  const lines = healthy.stdout.trim().split('\n');
  for (const check of ['config', 'uwebsockets', 'media worker binary', 'ffmpeg', 'http port', 'media ports', 'database', 'storage', 'demo sign-in', 'api key']) {
    t.ok(lines.some((line) => new RegExp(`^ok\\s+${check}\\s`).test(line)), `ok line for ${check}`);
  }
  t.equal(healthy.code, 0, healthy.stdout);
  t.match(healthy.stdout, /demo sign-in\s+on: on by default: http\.host 127\.0\.0\.1 is a loopback address/);

  t.match(healthy.stdout, /\nok\s+webhooks\s+database not migrated yet/);
  t.equal((await cli(['migrate'], env)).code, 0);
  const { createDatabase } = await import('../../src/db/database.ts');
  const db = createDatabase(env.DATABASE_URL, 1);
  await db.insertInto('webhook_endpoints').values({ id: '01JG8W1Q0M7B3S5ZC2Y4D6F8HA', url: 'https://crm.example.com/hooks', secret: 'whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0', source: 'api', updated_at: new Date() }).execute();
  await db.destroy();
  const withEndpoint = await cli(['doctor'], env);
  t.match(withEndpoint.stdout, /\nok\s+webhook endpoint\s+https:\/\/crm\.example\.com\/hooks \(api, enabled\): 0 pending\n/, 'the endpoint and its backlog');
  t.notMatch(withEndpoint.stdout, /whsec_/, 'never the secret');

  const exposed = await cli(['doctor'], { ...env, CALLPLANE_HTTP_HOST: '0.0.0.0' });
  t.match(exposed.stdout, /\nok\s+demo sign-in\s+off: off by default because http\.host 0\.0\.0\.0 is not a loopback address; set demo\.enabled: true/, 'off and why, not a failure');

  const { createServer } = await import('node:net');
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '0.0.0.0', resolve));
  const port = (blocker.address() as { port: number }).port;
  const busy = await cli(['doctor'], { ...env, CALLPLANE_HTTP_PORT: String(port) });
  blocker.close();
  t.equal(busy.code, 1);
  t.match(busy.stdout, new RegExp(`FAIL\\s+http port\\s+127\\.0\\.0\\.1:${port}/tcp in use`));
});

t.test('serve runs until SIGTERM, then shuts down gracefully with exit code 0', async (t) => {
  const { freePortBase } = await import('../helpers/ports.ts');
  const env = {
    CALLPLANE_DATA_DIR: dataDir,
    DATABASE_URL: await createTestDatabase(t),
    CALLPLANE_HTTP_PORT: String(await freePortBase(1)),
    CALLPLANE_HTTP_HOST: '127.0.0.1',
    CALLPLANE_MEDIA_WORKERS: '1',
    CALLPLANE_MEDIA_PORT_BASE: String(await freePortBase(1)),
    CALLPLANE_TURN_LISTEN_IP: '127.0.0.1',
    CALLPLANE_TURN_PORT: String(await freePortBase(1)),
    CALLPLANE_LOG_PRETTY: 'false',
  };
  const child = spawn(process.execPath, [BIN, 'serve'], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const listening = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      log += chunk;
      if (log.includes('callplane is listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`serve exited early with ${code}: ${log}`)));
  });
  await listening;
  const ready = await fetch(`http://127.0.0.1:${env.CALLPLANE_HTTP_PORT}/readyz`);
  t.equal(ready.status, 200);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exit code 0 after SIGTERM');
  t.match(log, /signal received: graceful shutdown/);
  t.match(log, /shutdown complete/);
  const lines = log.trim().split('\n').map((line) => JSON.parse(line) as { level: number; msg: string });
  t.ok(lines.every((line) => typeof line.level === 'number'), 'logs are pino JSON lines when not on a TTY');
});
