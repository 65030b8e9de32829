import { Counter, Gauge, type Registry } from 'prom-client';
import type { types } from 'mediasoup';

/** What the metrics read from the worker pool at scrape time (WorkerPool implements it). */
export interface MediaMetricsSource {
  snapshot(): ReadonlyArray<{ index: number; ready: boolean; routers: number; producers: number; consumers: number }>;
  /** Resource usage of every live worker; null for a worker that is down or did not answer in time. */
  resourceUsage(timeoutMs: number): Promise<Array<{ index: number; usage: types.WorkerResourceUsage | null }>>;
}

export interface MediaMetrics {
  /** Counts one death of worker `index`. */
  workerDied(index: number): void;
  /** Reads gauges from `source` from now on (a later pool replaces an earlier one, e.g. in tests). */
  attach(source: MediaMetricsSource): void;
  /** Stops reading from `source` if it is the attached one (the pool calls this on close). */
  detach(source: MediaMetricsSource): void;
}

/** A scrape must not hang on a stuck worker: past this, its CPU sample is left out. */
const RESOURCE_USAGE_TIMEOUT_MS = 1000;

/**
 * Registers the media plane's metrics (README, "Operations": workers' CPU and consumers) on `registry`.
 * Gauges are filled at scrape time from the attached pool, so they are never stale.
 */
export function createMediaMetrics(registry: Registry): MediaMetrics {
  let source: MediaMetricsSource | null = null;
  const registers = [registry];

  new Gauge({
    name: 'callplane_media_workers',
    help: 'Media workers that are alive and accepting routers',
    registers,
    collect() {
      this.set(source ? source.snapshot().filter((w) => w.ready).length : 0);
    },
  });

  const deaths = new Counter({
    name: 'callplane_media_worker_deaths_total',
    help: 'Media worker processes that died unexpectedly, by worker slot',
    labelNames: ['worker'] as const,
    registers,
  });

  const perWorker = (name: string, help: string, pick: (w: ReturnType<MediaMetricsSource['snapshot']>[number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['worker'] as const,
      registers,
      collect() {
        this.reset();
        for (const w of source?.snapshot() ?? []) this.set({ worker: String(w.index) }, pick(w));
      },
    });
  perWorker('callplane_media_worker_consumers', 'Consumers on the media worker', (w) => w.consumers);
  perWorker('callplane_media_worker_producers', 'Producers on the media worker', (w) => w.producers);
  perWorker('callplane_media_worker_routers', 'Routers on the media worker', (w) => w.routers);

  // A counter rebuilt from the worker's own rusage at each scrape: it is monotonic for one
  // process and restarts from 0 when a worker is replaced, which Prometheus' rate() handles.
  new Counter({
    name: 'callplane_media_worker_cpu_seconds_total',
    help: 'User plus system CPU time of the media worker process, in seconds',
    labelNames: ['worker'] as const,
    registers,
    async collect() {
      this.reset();
      if (!source) return;
      for (const { index, usage } of await source.resourceUsage(RESOURCE_USAGE_TIMEOUT_MS)) {
        if (usage) this.inc({ worker: String(index) }, (usage.ru_utime + usage.ru_stime) / 1000);
      }
    },
  });

  return {
    workerDied(index) {
      deaths.inc({ worker: String(index) });
    },
    attach(next) {
      source = next;
      // Make every slot's death count visible at 0 before the first death.
      for (const w of next.snapshot()) deaths.inc({ worker: String(w.index) }, 0);
    },
    detach(old) {
      if (source === old) source = null;
    },
  };
}
