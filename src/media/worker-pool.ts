import { SafeEmitter } from '../shared/events.ts';
import { existsSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import type { MediaConfig } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { mediaCodecs } from './codecs.ts';
import type { MediaMetrics, MediaMetricsSource } from './metrics.ts';
import { PooledRouter } from './pooled-router.ts';
import { announcedAddressFor, rtcPortRange, setSpawnBin, workerBinFor } from './worker-settings.ts';

export { PooledRouter, type PooledRouterEvents, type RouterCloseReason } from './pooled-router.ts';
export { announcedAddressFor, rtcPortRange, workerBinFor } from './worker-settings.ts';

export interface WorkerDiedEvent {
  index: number;
  pid: number;
  error: Error;
}

export interface WorkerReplacedEvent {
  index: number;
  pid: number;
}

export interface WorkerLostEvent {
  index: number;
  error: Error;
}

export interface WorkerPoolEvents {
  workerdied: [WorkerDiedEvent];
  workerreplaced: [WorkerReplacedEvent];
  /** Replacement gave up after its retries; the slot stays down (readyz reports it). */
  workerlost: [WorkerLostEvent];
}

export interface WorkerSnapshot {
  index: number;
  pid: number | null;
  ready: boolean;
  routers: number;
  transports: number;
  producers: number;
  consumers: number;
  webRtcServerPort: number;
  deaths: number;
}

export interface WorkerHealth {
  index: number;
  pid: number | null;
  ready: boolean;
  error?: string;
}

export interface WorkerPoolDeps {
  logger: Logger;
  metrics?: MediaMetrics;
}

export interface CreateRouterOptions {
  appData?: types.AppData;
  /** Worker(s) not to use, e.g. the one a call is piping away from. */
  excludeWorkerIndex?: number | readonly number[];
}

interface Slot {
  readonly index: number;
  readonly port: number;
  worker: types.Worker | null;
  webRtcServer: types.WebRtcServer | null;
  ready: boolean;
  deaths: number;
  /** Routers being created, so a burst of createRouter() calls spreads out before any is counted. */
  pendingRouters: number;
  readonly routers: Set<string>;
  readonly transports: Set<string>;
  readonly producers: Set<string>;
  readonly consumers: Set<string>;
}

const HEALTH_TIMEOUT_MS = 2000;
const STARTUP_ATTEMPTS = 3;
const REPLACE_ATTEMPTS = 8;
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 2000;


function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** Rejects with a timeout error if `promise` has not settled in `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One mediasoup worker per slot, each with a WebRtcServer on UDP+TCP port_base + index
 * (docs/architecture.md, "Media plane"). A worker that dies is replaced on the same port; routers are placed on the
 * least-loaded live worker.
 */
export class WorkerPool extends SafeEmitter<WorkerPoolEvents> implements MediaMetricsSource {
  readonly #config: MediaConfig;
  readonly #bin: string;
  readonly #logger: Logger;
  readonly #metrics: MediaMetrics | undefined;
  readonly #slots: Slot[];
  readonly #abort = new AbortController();
  readonly #replacing = new Set<Promise<void>>();
  #closing: Promise<void> | null = null;
  #rtpCapabilities: types.RtpCapabilities | null = null;

  private constructor(config: MediaConfig, deps: WorkerPoolDeps, bin: string) {
    // A listener that throws must not stop a replacement.
    super((err, event) => deps.logger.error({ err, event, component: 'media' }, 'media pool event listener threw'));
    this.#config = config;
    this.#bin = bin;
    this.#logger = deps.logger.child({ component: 'media' });
    this.#metrics = deps.metrics;
    this.#slots = Array.from({ length: Math.max(1, config.workers) }, (_, index) => ({
      index,
      port: config.port_base + index,
      worker: null,
      webRtcServer: null,
      ready: false,
      deaths: 0,
      pendingRouters: 0,
      routers: new Set<string>(),
      transports: new Set<string>(),
      producers: new Set<string>(),
      consumers: new Set<string>(),
    }));
  }

  /** Starts every worker and its WebRtcServer; rejects (and stops what started) if any cannot. */
  static async create(config: MediaConfig, deps: WorkerPoolDeps): Promise<WorkerPool> {
    const bin = workerBinFor(config);
    if (!existsSync(bin)) {
      throw new Error(`mediasoup-worker binary not found at ${bin} (set media.worker_bin or run the setup script)`);
    }
    const pool = new WorkerPool(config, deps, bin);
    try {
      await Promise.all(pool.#slots.map((slot) => pool.#start(slot, STARTUP_ATTEMPTS)));
    } catch (error) {
      await pool.close();
      throw error;
    }
    try {
      // Every router gets the same codecs, so one probe router tells every router's capabilities.
      const probe = await pool.#slots[0]!.worker!.createRouter({ mediaCodecs });
      pool.#rtpCapabilities = probe.rtpCapabilities;
      probe.close();
    } catch (error) {
      await pool.close();
      throw error;
    }
    deps.metrics?.attach(pool);
    pool.#logger.info({ workers: pool.#slots.length, portBase: config.port_base, listenIp: config.listen_ip }, 'media workers started');
    return pool;
  }

  /** The RTP capabilities of every call router (they share one codec list): GET /v1/media/rtp-capabilities. */
  get routerRtpCapabilities(): types.RtpCapabilities {
    if (!this.#rtpCapabilities) throw new Error('the media pool has not started');
    return this.#rtpCapabilities;
  }

  get size(): number {
    return this.#slots.length;
  }

  get closed(): boolean {
    return this.#closing !== null;
  }

  /** Places a router on the least-loaded live worker. Throws media_unavailable if there is none. */
  async createRouter(opts: CreateRouterOptions = {}): Promise<PooledRouter> {
    if (this.closed) throw new AppError('media_unavailable', 'The media plane is shutting down');
    const index = this.leastLoadedWorker(opts.excludeWorkerIndex);
    const slot = index === null ? undefined : this.#slots[index];
    const worker = slot?.worker;
    const webRtcServer = slot?.webRtcServer;
    if (!slot || !worker || !webRtcServer) throw new AppError('media_unavailable', 'No media worker is available');
    slot.pendingRouters++;
    let router: types.Router;
    try {
      router = await worker.createRouter({ mediaCodecs, appData: opts.appData ?? {} });
    } catch (error) {
      this.#logger.error({ err: error, worker: slot.index }, 'media worker could not create a router');
      throw new AppError('media_unavailable', 'The media worker could not create a router');
    } finally {
      slot.pendingRouters--;
    }
    // The worker may have died while the request was in flight; its routers are already closed.
    if (router.closed) throw new AppError('media_unavailable', 'The media worker went away');
    return new PooledRouter(router, slot.index, worker, webRtcServer);
  }

  /** Consumers on worker `workerIndex` (0 for an unknown index). */
  consumerCount(workerIndex: number): number {
    return this.#slots[workerIndex]?.consumers.size ?? 0;
  }

  /** media.key_frame_request_delay_ms, for video producers (mediasoup's keyFrameRequestDelay). */
  get keyFrameRequestDelayMs(): number {
    return this.#config.key_frame_request_delay_ms;
  }

  /** Whether worker `workerIndex` is live and below media.max_consumers_per_worker. */
  hasCapacity(workerIndex: number): boolean {
    const slot = this.#slots[workerIndex];
    return Boolean(slot?.ready) && this.consumerCount(workerIndex) < this.#config.max_consumers_per_worker;
  }

  /** Live worker with the fewest producers + consumers, then fewest routers, then lowest index; null if none. */
  leastLoadedWorker(excluding?: number | readonly number[]): number | null {
    const excluded = new Set(excluding === undefined ? [] : typeof excluding === 'number' ? [excluding] : excluding);
    let best: Slot | null = null;
    for (const slot of this.#slots) {
      if (!slot.ready || excluded.has(slot.index)) continue;
      if (!best) {
        best = slot;
        continue;
      }
      const load = slot.producers.size + slot.consumers.size;
      const bestLoad = best.producers.size + best.consumers.size;
      const routers = slot.routers.size + slot.pendingRouters;
      const bestRouters = best.routers.size + best.pendingRouters;
      if (load < bestLoad || (load === bestLoad && routers < bestRouters)) best = slot;
    }
    return best ? best.index : null;
  }

  snapshot(): WorkerSnapshot[] {
    return this.#slots.map((slot) => ({
      index: slot.index,
      pid: slot.worker?.pid ?? null,
      ready: slot.ready,
      routers: slot.routers.size,
      transports: slot.transports.size,
      producers: slot.producers.size,
      consumers: slot.consumers.size,
      webRtcServerPort: slot.port,
      deaths: slot.deaths,
    }));
  }

  /** A worker is ready only if it is live and answers getResourceUsage() within 2 s. */
  async health(): Promise<WorkerHealth[]> {
    return Promise.all(
      this.#slots.map(async (slot): Promise<WorkerHealth> => {
        const worker = slot.worker;
        const pid = worker?.pid ?? null;
        if (!slot.ready || !worker || worker.closed) return { index: slot.index, pid, ready: false, error: 'worker is down' };
        try {
          await withTimeout(worker.getResourceUsage(), HEALTH_TIMEOUT_MS, `media worker ${slot.index}`);
          return { index: slot.index, pid, ready: true };
        } catch (error) {
          return { index: slot.index, pid, ready: false, error: toError(error).message };
        }
      }),
    );
  }

  async resourceUsage(timeoutMs: number): Promise<Array<{ index: number; usage: types.WorkerResourceUsage | null }>> {
    return Promise.all(
      this.#slots.map(async (slot) => {
        const worker = slot.worker;
        if (!worker || worker.closed) return { index: slot.index, usage: null };
        const usage = await withTimeout(worker.getResourceUsage(), timeoutMs, 'getResourceUsage').catch(() => null);
        return { index: slot.index, usage };
      }),
    );
  }

  /**
   * Closes every worker (their routers emit 'close' with reason 'shutdown') and stops any
   * replacement in progress. Idempotent: later calls return the same promise.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#abort.abort();
    for (const slot of this.#slots) {
      const worker = slot.worker;
      this.#vacate(slot);
      worker?.close();
    }
    this.#metrics?.detach(this);
    this.#closing = Promise.allSettled([...this.#replacing]).then(() => {
      this.#logger.info('media workers closed');
    });
    return this.#closing;
  }

  /** Spawns a worker and its WebRtcServer for `slot`, retrying with backoff while the port is busy. */
  async #start(slot: Slot, attempts: number): Promise<void> {
    const listenInfos: types.WebRtcServerListenInfo[] = (['udp', 'tcp'] as const).map((protocol) => ({
      protocol,
      ip: this.#config.listen_ip,
      announcedIp: announcedAddressFor(this.#config),
      port: slot.port,
    }));
    let worker: types.Worker | null = null;
    let lastError: Error = new Error('not started');
    for (let attempt = 1; attempt <= attempts && !this.closed; attempt++) {
      try {
        if (!worker || worker.closed) {
          // Set per spawn: another pool in the process (tests) may have set a different binary.
          setSpawnBin(this.#bin);
          worker = await mediasoup.createWorker({
            logLevel: this.#config.worker_log_level,
            ...rtcPortRange(this.#config.port_base, this.#slots.length),
            appData: { index: slot.index },
          });
        }
        if (this.closed) break;
        const webRtcServer = await worker.createWebRtcServer({ listenInfos, appData: { index: slot.index } });
        if (this.closed) break;
        this.#install(slot, worker, webRtcServer);
        return;
      } catch (error) {
        lastError = toError(error);
        this.#logger.warn({ err: lastError, worker: slot.index, port: slot.port, attempt }, 'media worker start failed');
        if (attempt < attempts) {
          const ms = Math.min(BACKOFF_FIRST_MS * 2 ** (attempt - 1), BACKOFF_MAX_MS);
          await delay(ms, undefined, { signal: this.#abort.signal }).catch(() => undefined);
        }
      }
    }
    worker?.close();
    if (this.closed) return;
    throw new Error(
      `media worker ${slot.index} could not start on UDP/TCP ${this.#config.listen_ip}:${slot.port}: ${lastError.message}`,
      { cause: lastError },
    );
  }

  #install(slot: Slot, worker: types.Worker, webRtcServer: types.WebRtcServer): void {
    this.#vacate(slot);
    slot.worker = worker;
    slot.webRtcServer = webRtcServer;
    slot.ready = true;
    worker.observer.on('newrouter', (router) => this.#trackRouter(slot, router));
    worker.once('died', (error) => this.#onDied(slot, worker, error));
  }

  #vacate(slot: Slot): void {
    slot.ready = false;
    slot.worker = null;
    slot.webRtcServer = null;
    slot.routers.clear();
    slot.transports.clear();
    slot.producers.clear();
    slot.consumers.clear();
  }

  // Counts follow mediasoup's observer events, so objects closed by any path (owner, cascade,
  // producer close) are uncounted; ids are UUIDs, so a late event from a dead worker is harmless.
  #trackRouter(slot: Slot, router: types.Router): void {
    slot.routers.add(router.id);
    router.observer.once('close', () => slot.routers.delete(router.id));
    router.observer.on('newtransport', (transport) => {
      slot.transports.add(transport.id);
      transport.observer.once('close', () => slot.transports.delete(transport.id));
      transport.observer.on('newproducer', (producer) => {
        slot.producers.add(producer.id);
        producer.observer.once('close', () => slot.producers.delete(producer.id));
      });
      // Recording taps (sfu/recording-tap.ts) consume every producer, but serve no subscriber: not counted.
      if ((transport.appData as { recording?: unknown }).recording === true) return;
      transport.observer.on('newconsumer', (consumer) => {
        slot.consumers.add(consumer.id);
        consumer.observer.once('close', () => slot.consumers.delete(consumer.id));
      });
    });
  }

  #onDied(slot: Slot, worker: types.Worker, error: Error): void {
    if (slot.worker !== worker || this.closed) return;
    // mediasoup has already closed this worker's routers (their PooledRouters emitted 'close').
    this.#vacate(slot);
    slot.deaths++;
    this.#logger.error({ err: error, worker: slot.index, pid: worker.pid }, 'media worker died; replacing it');
    this.#metrics?.workerDied(slot.index);
    this.emitSafe('workerdied', { index: slot.index, pid: worker.pid, error });
    const replacing: Promise<void> = this.#replace(slot).finally(() => this.#replacing.delete(replacing));
    this.#replacing.add(replacing);
  }

  async #replace(slot: Slot): Promise<void> {
    try {
      await this.#start(slot, REPLACE_ATTEMPTS);
    } catch (error) {
      const err = toError(error);
      this.#logger.fatal({ err, worker: slot.index }, 'media worker could not be replaced; its slot stays down');
      this.emitSafe('workerlost', { index: slot.index, error: err });
      return;
    }
    const worker = slot.worker;
    if (!worker) return; // shut down while replacing
    this.#logger.info({ worker: slot.index, pid: worker.pid, port: slot.port }, 'media worker replaced');
    this.emitSafe('workerreplaced', { index: slot.index, pid: worker.pid });
  }

}
