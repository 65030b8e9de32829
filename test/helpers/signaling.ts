/**
 * A signaling test harness: a real uWS app, real media workers and the real SfuRegistry, with
 * signaling tokens from a Map the test fills (the REST layer's job in production).
 */
import type { Test } from 'tap';
import { Registry } from 'prom-client';
import WebSocket from 'ws';
import { SfuRegistry, type ParticipantIdentity } from '../../src/sfu/index.ts';
import type { CallsConfig, MediaConfig } from '../../src/config/schema.ts';
import { HttpServer } from '../../src/http/server.ts';
import { WorkerPool } from '../../src/media/worker-pool.ts';
import { attachSignaling } from '../../src/signaling/index.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { freePortBase } from './ports.ts';

export type Frame = { type: string; id?: string | number; payload: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

export class Client {
  readonly ws: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #inbox: Frame[] = [];
  readonly #waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  #nextId = 1;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame;
      const waiter = this.#waiters.findIndex((w) => w.match(frame));
      if (waiter >= 0) this.#waiters.splice(waiter, 1)[0]!.resolve(frame);
      else this.#inbox.push(frame);
    });
    this.ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  }

  /** The next frame matching `match` (already received or future). */
  next(match: string | ((f: Frame) => boolean), ms = 10_000): Promise<Frame> {
    const pred = typeof match === 'string' ? (f: Frame) => f.type === match : match;
    const index = this.#inbox.findIndex(pred);
    if (index >= 0) return Promise.resolve(this.#inbox.splice(index, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${typeof match === 'string' ? match : 'matching'} frame within ${ms} ms`)), ms);
      this.#waiters.push({ match: pred, resolve: (f) => (clearTimeout(timer), resolve(f)) });
    });
  }

  /** Sends a raw frame (text unless `binary`). */
  raw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** The next error frame without an id (the answer to a frame the server could not read an id from). */
  nextAnonymousError(): Promise<Frame> {
    return this.next((f) => f.type === 'error' && f.id === undefined);
  }

  has(type: string): boolean {
    return this.#inbox.some((f) => f.type === type);
  }

  /** Sends a request; resolves with its response or error frame. */
  async ask(type: string, payload: unknown = {}): Promise<Frame> {
    const id = this.#nextId++;
    this.ws.send(JSON.stringify({ type, id, payload }));
    return this.next((f) => f.id === id && (f.type === 'response' || f.type === 'error'));
  }

  /** Sends a request that must succeed; returns the response payload. */
  async ok(type: string, payload: unknown = {}): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const answer = await this.ask(type, payload);
    if (answer.type !== 'response') throw new Error(`${type} failed: ${JSON.stringify(answer.payload)}`);
    return answer.payload;
  }
}

export async function startSignaling(t: Test, opts: { workers?: number; media?: Partial<MediaConfig>; calls?: Partial<CallsConfig>; gate?: Promise<void>; emptyCalls?: 'end' | 'report' } = {}) {
  const logger = silentLogger();
  const workers = opts.workers ?? 1;
  const pool = await WorkerPool.create(
    { workers, port_base: await freePortBase(workers), listen_ip: '127.0.0.1', announced_address: null, max_consumers_per_worker: 500, key_frame_request_delay_ms: 310, worker_log_level: 'error', worker_bin: null, ...opts.media },
    { logger },
  );
  const calls: CallsConfig = { empty_timeout_seconds: 30, reconnect_grace_seconds: 30, signaling_token_ttl_seconds: 300, signaling_messages_per_second: 1000, ...opts.calls };
  const sfu = new SfuRegistry({ pool, logger, calls, iceServers: () => [{ urls: ['turn:127.0.0.1:3478'], username: 'u', credential: 'c' }], ...(opts.emptyCalls ? { emptyCalls: opts.emptyCalls } : {}) });
  const http = new HttpServer({ logger, maxBodyBytes: 1 << 20, trustProxy: false, publicUrl: null, authenticate: async () => null });
  const tokens = new Map<string, { identity: ParticipantIdentity; expiresAt: number }>();
  const registry = new Registry();
  attachSignaling(http.app, {
    // A gate lets a test hold joins back, to send requests before the welcome.
    sfu: { join: async (identity, sink) => (await opts.gate, sfu.join(identity, sink)) },
    calls,
    logger,
    registry,
    resolveToken: async (token) => {
      const entry = tokens.get(token);
      tokens.delete(token); // single use
      return entry && entry.expiresAt > Date.now() ? entry.identity : null;
    },
  });
  const port = await http.listen('127.0.0.1', 0);
  const clients: Client[] = [];
  t.teardown(async () => {
    for (const c of clients) c.ws.terminate();
    await sfu.close();
    await http.close(100);
    await pool.close();
  });
  let counter = 0;
  const identity = (callId: string, participantId: string, extra: Partial<ParticipantIdentity> = {}): ParticipantIdentity => ({
    callId, participantId, userId: `user-${participantId}`, displayName: `Name ${participantId}`, role: 'member',
    permissions: { canPublish: true, canSubscribe: true, canEndCall: false }, ...extra,
  });
  const mint = (id: ParticipantIdentity, ttlMs = 60_000): string => {
    const token = `st_test_${++counter}_${Math.random().toString(36).slice(2)}`;
    tokens.set(token, { identity: id, expiresAt: Date.now() + ttlMs });
    return token;
  };
  const open = (token: string, path = '/v1/signal'): Client => {
    const client = new Client(`ws://127.0.0.1:${port}${path}?token=${encodeURIComponent(token)}`);
    clients.push(client);
    return client;
  };
  /** Connects `participantId` to `callId` and waits for its welcome. */
  const join = async (callId: string, participantId: string, extra: Partial<ParticipantIdentity> = {}) => {
    const client = open(mint(identity(callId, participantId, extra)));
    const welcome = await client.next('welcome');
    return { client, welcome: welcome.payload };
  };
  return { pool, sfu, http, port, registry, identity, mint, open, join };
}

export const audio = (ssrc: number, mid = '0') => ({
  mid,
  codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: { useinbandfec: 1 }, rtcpFeedback: [{ type: 'transport-cc' }] }],
  headerExtensions: [{ uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', id: 1 }, { uri: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level', id: 10 }],
  encodings: [{ ssrc }],
  rtcp: { cname: `c${ssrc}`, reducedSize: true },
});
export const video = (ssrc: number, mid = '1') => ({
  mid,
  codecs: [
    { mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }] },
    { mimeType: 'video/rtx', payloadType: 97, clockRate: 90000, parameters: { apt: 96 } },
  ],
  headerExtensions: [{ uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', id: 1 }],
  encodings: [{ ssrc, rtx: { ssrc: ssrc + 1 } }],
  rtcp: { cname: `c${ssrc}`, reducedSize: true },
});
