import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { loadConfig } from '../../src/config/load.ts';
import type { ContextOverrides } from '../../src/context.ts';
import { startServer, type RunningServer } from '../../src/main.ts';
import { createTestDatabase } from './db.ts';
import { freePortBase } from './ports.ts';

export interface TestServer extends RunningServer {
  apiKey: string;
  dataDir: string;
  /** fetch() against the server with JSON in and out; the body is `any` so tests can read fields freely. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  api(path: string, init?: { method?: string; body?: unknown; rawBody?: string; headers?: Record<string, string>; token?: string; apiKey?: boolean }): Promise<{ status: number; body: any; headers: Headers }>;
}

/** A real callplane (real PostgreSQL database of its own, real media workers) on a free port. */
export async function startTestServer(t: Test, settings: Record<string, unknown> = {}, overrides: ContextOverrides = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'callplane-test-'));
  const databaseUrl = await createTestDatabase(t);
  const workers = ((settings.media as Record<string, unknown> | undefined)?.workers as number | undefined) ?? 1;
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: dataDir,
      log: { level: process.env.CALLPLANE_TEST_LOG_LEVEL ?? 'silent', pretty: false },
      ...settings,
      http: { host: '127.0.0.1', port: 0, ...(settings.http as object | undefined) },
      database: { url: databaseUrl, pool_size: 5, ...(settings.database as object | undefined) },
      media: { workers, listen_ip: '127.0.0.1', port_base: await freePortBase(workers), ...(settings.media as object | undefined) },
      auth: { api_key: 'test-api-key-0123456789', ...(settings.auth as object | undefined) },
      // TURN is off unless a test asks for it (then on loopback, on a free port): other test files run at the same time
      turn: settings.turn ? { listen_ip: '127.0.0.1', port: await freePortBase(1), ...(settings.turn as object) } : { engine: 'off' },
    },
  });
  const server = await startServer(config, overrides);
  t.teardown(async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const apiKey = config.auth.api_key!;
  return {
    ...server,
    apiKey,
    dataDir,
    async api(path, init = {}) {
      const headers: Record<string, string> = { ...init.headers };
      if (init.body !== undefined || init.rawBody !== undefined) headers['content-type'] ??= 'application/json';
      if (init.apiKey) headers['x-api-key'] = apiKey;
      if (init.token) headers.authorization = `Bearer ${init.token}`;
      const response = await fetch(`${server.baseUrl}${path}`, {
        method: init.method ?? 'GET',
        headers,
        ...(init.rawBody !== undefined ? { body: init.rawBody } : init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      });
      const text = await response.text();
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        /* not JSON: keep the text */
      }
      return { status: response.status, body, headers: response.headers };
    },
  };
}

export interface TestAccount {
  id: string;
  token: string;
}

/** A user of `role` created with the API key, and a day-long access token for it. */
export async function createAccount(server: Pick<TestServer, 'api'>, role: 'user' | 'host' | 'admin', name: string): Promise<TestAccount> {
  const created = await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: name, role } });
  if (created.status !== 201) throw new Error(`user creation failed: ${created.status} ${JSON.stringify(created.body)}`);
  const minted = await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: created.body.user.id, ttl_seconds: 86400 } });
  if (minted.status !== 201) throw new Error(`token failed: ${minted.status} ${JSON.stringify(minted.body)}`);
  return { id: created.body.user.id, token: minted.body.access_token };
}
