import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Config } from '../config/schema.ts';
import { apiKeyPath } from '../identity/keys.ts';
import { workerBinFor } from '../media/worker-pool.ts';
import { createStorage } from '../storage/index.ts';
import { Spool } from '../recording/spool.ts';
import { loadUws } from '../http/uws.ts';
import { restCredential } from '../turn/credentials.ts';
import { probeAllocation, stunBinding } from '../turn/probe.ts';

const run = promisify(execFile);

export interface DoctorLine {
  check: string;
  ok: boolean;
  detail: string;
}

function tcpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

function udpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, host, () => socket.close(() => resolve(true)));
  });
}

async function canConnect(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    const result = await client.query<{ server_version: string }>('show server_version');
    return result.rows[0]?.server_version ?? 'unknown';
  } catch {
    return null;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The webhook endpoints with their backlog, read from a reachable database (docs/webhooks.md, "Operations"). */
async function webhookLines(url: string): Promise<DoctorLine[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    const exists = await client.query<{ found: string | null }>(`select to_regclass('webhook_endpoints') as found`);
    if (!exists.rows[0]?.found) return [{ check: 'webhooks', ok: true, detail: 'database not migrated yet (serve or migrate creates the tables)' }];
    const rows = await client.query<{ url: string; source: string; enabled: boolean; pending: string; oldest: Date | null }>(
      `select w.url, w.source, w.enabled, count(d.id) as pending, min(d.created_at) as oldest
         from webhook_endpoints w left join webhook_deliveries d on d.endpoint_id = w.id and d.status = 'pending'
        group by w.id order by w.created_at, w.id`,
    );
    if (rows.rows.length === 0) return [{ check: 'webhooks', ok: true, detail: 'no endpoints (webhooks.endpoints or POST /v1/webhook-endpoints)' }];
    return rows.rows.map((row) => {
      const age = row.oldest ? `, oldest ${Math.round((Date.now() - new Date(row.oldest).getTime()) / 1000)} s` : '';
      return { check: 'webhook endpoint', ok: true, detail: `${row.url} (${row.source}, ${row.enabled ? 'enabled' : 'disabled'}): ${row.pending} pending${age}` };
    });
  } catch (error) {
    return [{ check: 'webhooks', ok: true, detail: `not read: ${(error as Error).message}` }];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * TURN reachability with a real allocation (docs/turn.md, "callplane doctor"): a running engine (or
 * the first external UDP URL) must grant one to a credential signed with the secret; a free port
 * is fine before `serve` starts the engine.
 */
export async function turnCheck(config: Readonly<Config>): Promise<[string, boolean, string]> {
  const turn = config.turn;
  if (turn.external.length === 0 && turn.engine === 'off') return ['turn', true, 'off (turn.engine: off): clients get no TURN server'];
  let host: string;
  let port: number;
  if (turn.external.length > 0) {
    const udp = turn.external.map((url) => /^turn:\[?([^\]?]+?)\]?(?::(\d+))?(\?transport=udp)?$/.exec(url)).find((m) => m !== null);
    if (!udp) return ['turn', true, `external ${turn.external.join(', ')} (no plain UDP turn: URL to probe)`];
    host = udp[1]!;
    port = Number(udp[2] ?? 3478);
  } else {
    host = turn.listen_ip === '0.0.0.0' ? '127.0.0.1' : turn.listen_ip;
    port = turn.port;
  }
  const where = `${turn.external.length > 0 ? 'external' : turn.engine} ${host}:${port}/udp`;
  if (!(await stunBinding(host, port, 1500))) {
    if (turn.external.length === 0 && (await udpFree(turn.listen_ip, port))) return ['turn', true, `${where} free (the engine starts with serve)`];
    return ['turn', false, `${where}: no STUN answer${turn.external.length === 0 ? ' and the port is in use by another program' : ''}`];
  }
  const secretFile = join(config.data_dir, 'keys', 'turn-secret');
  const secret = turn.secret ?? (existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() : null);
  if (!secret) return ['turn', false, `${where} answers, but there is no secret to sign a credential (turn.secret, or ${secretFile})`];
  const username = `${Math.floor(Date.now() / 1000) + 300}:doctor`;
  const result = await probeAllocation(host, port, username, restCredential(secret, username));
  return result.ok ? ['turn', true, `${where}: allocation granted (relayed ${result.relayed}), released`] : ['turn', false, `${where}: ${result.reason}`];
}

/** One line per check; read-only: it starts nothing and changes nothing. */
export async function runDoctor(config: Readonly<Config>): Promise<DoctorLine[]> {
  const lines: DoctorLine[] = [];
  const add = (check: string, ok: boolean, detail: string) => lines.push({ check, ok, detail });

  add('config', true, `valid (data dir ${config.data_dir})`);

  try {
    loadUws();
    add('uwebsockets', true, 'native binary loads');
  } catch (error) {
    add('uwebsockets', false, (error as Error).message);
  }

  const bin = workerBinFor(config.media);
  try {
    accessSync(bin, constants.X_OK);
    add('media worker binary', true, bin);
  } catch {
    add('media worker binary', false, `${bin} is missing or not executable (run: npm run setup)`);
  }

  try {
    const { stdout } = await run(config.recording.ffmpeg_path ?? 'ffmpeg', ['-hide_banner', '-version'], { timeout: 5000 });
    add('ffmpeg', true, stdout.split('\n')[0] ?? 'found');
  } catch {
    add('ffmpeg', false, 'not found on PATH (apt-get install ffmpeg)');
  }

  const httpFree = await tcpFree(config.http.host, config.http.port);
  add('http port', httpFree, `${config.http.host}:${config.http.port}/tcp ${httpFree ? 'free' : 'in use (a running callplane, or another program)'}`);
  const busy: string[] = [];
  for (let i = 0; i < config.media.workers; i += 1) {
    const port = config.media.port_base + i;
    if (!(await udpFree(config.media.listen_ip, port))) busy.push(`${port}/udp`);
    if (!(await tcpFree(config.media.listen_ip, port))) busy.push(`${port}/tcp`);
  }
  const last = config.media.port_base + config.media.workers - 1;
  add('media ports', busy.length === 0, busy.length === 0 ? `${config.media.port_base}-${last} udp+tcp free (${config.media.workers} workers)` : `in use: ${busy.join(', ')}`);

  let reachableDatabase: string | null = null;
  if (config.database.url) {
    const version = await canConnect(config.database.url);
    add('database', version !== null, version ? `DATABASE_URL reachable (PostgreSQL ${version})` : 'DATABASE_URL not reachable');
    if (version) reachableDatabase = config.database.url;
  } else {
    const url = `postgres://postgres:postgres@127.0.0.1:${config.database.embedded_port}/postgres`;
    const version = await canConnect(url);
    const initialised = existsSync(join(config.data_dir, 'postgres', 'PG_VERSION'));
    const detail = version
      ? `embedded PostgreSQL ${version} running on 127.0.0.1:${config.database.embedded_port}`
      : `embedded PostgreSQL not running (${initialised ? 'initialised' : 'will be initialised'} under ${join(config.data_dir, 'postgres')}; started by serve)`;
    add('database', version !== null || (await tcpFree('127.0.0.1', config.database.embedded_port)), detail);
    if (version) reachableDatabase = url;
  }
  if (reachableDatabase) lines.push(...(await webhookLines(reachableDatabase)));
  else add('webhooks', true, 'endpoints not read (the database is not running)');

  try {
    const storage = createStorage(config.storage, { signingSecret: 'doctor-check-only-signing-secret', publicBaseUrl: () => `http://127.0.0.1:${config.http.port}` });
    const result = await storage.check();
    storage.close();
    add('storage', result.ok, `${config.storage.driver}: ${result.detail}`);
  } catch (error) {
    add('storage', false, `${config.storage.driver}: ${(error as Error).message}`);
  }

  // The recording spool (docs/recording.md, "Spool"): files waiting for storage, against recording.spool_max_bytes.
  try {
    const spool = new Spool(config.recording.spool_dir!, config.recording.spool_max_bytes);
    const usage = await spool.usage();
    const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
    add('recording spool', usage.bytes < spool.maxBytes, `${spool.dir}: ${mib(usage.bytes)} of ${mib(spool.maxBytes)}, ${usage.recordings} recording(s) waiting for storage${usage.bytes >= spool.maxBytes ? ' (full: new recordings are refused)' : ''}`);
  } catch (error) {
    add('recording spool', false, `${config.recording.spool_dir}: ${(error as Error).message}`);
  }

  add(...(await turnCheck(config)));

  // Informational, never a failure: off is the safe state, and on is what the operator chose or a loopback-only default.
  add('demo sign-in', true, `${config.demo.enabled ? 'on' : 'off'}: ${config.demo.reason}`);
  add('api key', true, config.auth.api_key ? 'set by CALLPLANE_API_KEY / auth.api_key' : `${apiKeyPath(config.data_dir)}${existsSync(apiKeyPath(config.data_dir)) ? '' : ' (generated on first start)'}`);
  return lines;
}
