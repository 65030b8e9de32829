/**
 * A callplane server in a process of its own (`bin/callplane.js serve`), for tests that SIGKILL it and
 * start it again on the same database and data dir: the chaos test, the crash-cut request tests. Its
 * HTTP helpers survive restarts (`persist` repeats a request, same idempotency key, until it is answered).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import WebSocket from 'ws';
import { createDatabase, type Database } from '../../src/db/database.ts';
import { ScaledClock } from '../../src/shared/clock.ts';
import { startStripeServer, type StripeServer } from '../stripe-server/server.ts';
import { createTestDatabase } from './db.ts';
import { freePortBase } from './ports.ts';

export const SERVER_API_KEY = 'process-api-key-0123456789';

export interface ApiInit {
  method?: string;
  body?: unknown;
  token?: string;
  apiKey?: boolean;
  /** X-Idempotency-Key */
  key?: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are read field by field */
export interface ApiAnswer {
  status: number;
  body: any;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class ServerProcess {
  readonly baseUrl: string;
  #child: ChildProcess | null = null;
  #stderr = '';

  private constructor(
    private readonly env: NodeJS.ProcessEnv,
    httpPort: number,
  ) {
    this.baseUrl = `http://127.0.0.1:${httpPort}`;
  }

  /**
   * A server on `databaseUrl` with a data dir of its own; `settings` are extra CALLPLANE_* variables.
   * It is killed however the test ends (teardown, a time-out, a signal).
   */
  static async create(t: Test, databaseUrl: string, settings: Record<string, string>): Promise<ServerProcess> {
    const dataDir = mkdtempSync(join(tmpdir(), 'callplane-process-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    const httpPort = await freePortBase(1);
    const mediaPort = await freePortBase(1);
    // A clean environment: the test runner's NODE_OPTIONS (loaders, coverage hooks) must not reach the server.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      DATABASE_URL: databaseUrl,
      CALLPLANE_DATA_DIR: dataDir,
      CALLPLANE_HTTP_HOST: '127.0.0.1',
      CALLPLANE_HTTP_PORT: String(httpPort),
      CALLPLANE_API_KEY: SERVER_API_KEY,
      CALLPLANE_MEDIA_WORKERS: '1',
      CALLPLANE_MEDIA_LISTEN_IP: '127.0.0.1',
      CALLPLANE_MEDIA_PORT_BASE: String(mediaPort),
      CALLPLANE_TURN_ENGINE: 'off',
      CALLPLANE_RATE_LIMITS_ENABLED: 'false',
      CALLPLANE_DEMO_ENABLED: 'false',
      CALLPLANE_LOG_LEVEL: process.env.CALLPLANE_TEST_LOG_LEVEL ?? 'warn',
      CALLPLANE_LOG_PRETTY: 'false',
      ...settings,
    };
    const server = new ServerProcess(env, httpPort);
    const killOnExit = (): void => {
      if (server.#child && server.#child.exitCode === null) server.#child.kill('SIGKILL');
    };
    process.once('exit', killOnExit);
    for (const signal of ['SIGALRM', 'SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      process.once(signal, () => {
        killOnExit();
        process.exit(1);
      });
    }
    t.teardown(() => server.stop());
    return server;
  }

  get running(): boolean {
    return this.#child !== null && this.#child.exitCode === null;
  }

  /** Starts the process and resolves once /readyz (or `readyPath`: /healthz while a dependency is down) answers 200. */
  async start(readyPath = '/readyz'): Promise<void> {
    const child = spawn(process.execPath, ['bin/callplane.js', 'serve'], { env: this.env, stdio: ['ignore', 'ignore', 'pipe'] });
    this.#stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (this.#stderr = (this.#stderr + String(chunk)).slice(-4000)));
    this.#child = child;
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited at start (${child.exitCode}): ${this.#stderr}`);
      try {
        const ready = await fetch(`${this.baseUrl}${readyPath}`);
        if (ready.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`server not ready in 60 s: ${this.#stderr}`);
      await sleep(100);
    }
  }

  /** SIGKILL; resolves once the process and its media workers are gone (their ports free for the next start). */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const workers = childPids(child.pid!);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    while (workers.some(alive)) await sleep(20);
    this.#child = null;
  }

  /** Graceful stop (SIGTERM), if running. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    this.#child = null;
  }

  async api(path: string, init: ApiInit = {}): Promise<ApiAnswer> {
    const headers: Record<string, string> = {};
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    if (init.apiKey) headers['x-api-key'] = SERVER_API_KEY;
    if (init.key) headers['x-idempotency-key'] = init.key;
    const response = await fetch(`${this.baseUrl}${path}`, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }

  /**
   * Repeats a request (same idempotency key) through crashes and restarts until it gets a final answer.
   * `onAnswer` sees every answer that arrived (e.g. to count request_in_progress refusals).
   */
  async persist(path: string, init: ApiInit, options: { retryOn?: (status: number, body: any) => boolean; onAnswer?: (answer: ApiAnswer) => void; timeoutMs?: number } = {}): Promise<ApiAnswer> {
    const deadline = Date.now() + (options.timeoutMs ?? 90_000);
    for (;;) {
      try {
        const answer = await this.api(path, init);
        options.onAnswer?.(answer);
        const transient = answer.status >= 500 || answer.body?.error?.code === 'request_in_progress' || (options.retryOn?.(answer.status, answer.body) ?? false);
        if (!transient || Date.now() > deadline) return answer;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
      await sleep(150);
    }
  }
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/**
 * A paid-calls server process on a scaled clock, paying through the official Stripe SDK against the
 * Stripe test server of this test process, on a database of its own (`db` reads it directly).
 */
export async function startPaidServerProcess(t: Test, options: { scale: number; settings: Record<string, string> }): Promise<{ server: ServerProcess; stripe: StripeServer; db: Database; clock: ScaledClock }> {
  const anchor = new Date();
  const clock = new ScaledClock(options.scale, anchor.getTime());
  const stripe = await startStripeServer({ secretKey: 'sk_test_process_0123456789', webhookSecret: 'whsec_process_0123456789' });
  t.teardown(() => stripe.close());
  const databaseUrl = await createTestDatabase(t);
  const db = createDatabase(databaseUrl, 2);
  t.teardown(() => db.destroy());
  const server = await ServerProcess.create(t, databaseUrl, {
    CALLPLANE_PAYMENTS: 'stripe',
    STRIPE_SECRET_KEY: stripe.secretKey,
    CALLPLANE_PAYMENTS_STRIPE_API_BASE: stripe.url,
    CALLPLANE_CLOCK_SCALE: String(options.scale),
    CALLPLANE_CLOCK_ANCHOR: anchor.toISOString(),
    CALLPLANE_JOBS_POLL_INTERVAL_MS: '100',
    ...options.settings,
  });
  return { server, stripe, db, clock };
}

/** A host with a user socket that is reopened whenever the server comes back: it stays available. */
export function keepHostAvailable(t: Test, server: ServerProcess, hostToken: string): void {
  let running = true;
  let socket: WebSocket | null = null;
  const loop = (async () => {
    while (running) {
      const ws = new WebSocket(`${server.baseUrl.replace('http', 'ws')}/v1/ws?token=${hostToken}`);
      socket = ws;
      ws.on('error', () => undefined);
      await new Promise((resolve) => ws.once('close', resolve).once('unexpected-response', resolve));
      if (running) await sleep(100);
    }
  })();
  t.teardown(async () => {
    running = false;
    (socket as WebSocket | null)?.terminate();
    await loop.catch(() => undefined);
  });
}
