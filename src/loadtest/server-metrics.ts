/**
 * The target's own figures, from its Prometheus /metrics (README, "Operations"): the server
 * process's CPU and memory (prom-client's default metrics, prefixed callplane_) and each media
 * worker's CPU, consumers and producers. Two scrapes make a CPU share over the span between them.
 */

export interface MetricsSample {
  atMs: number;
  processCpuSeconds: number | null;
  rssBytes: number | null;
  workers: Map<string, { cpuSeconds: number | null; consumers: number | null; producers: number | null }>;
}

export interface ServerFigures {
  /** Server process plus every media worker, percent of one core, over the measured span. */
  cpu_pct: number | null;
  /** The server's Node process alone. */
  process_cpu_pct: number | null;
  rss_mb: number | null;
  workers: Array<{ worker: string; cpu_pct: number | null; consumers: number | null; producers: number | null }>;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/;

/** Parses the samples of the text exposition format (comments skipped), e.g. `name{worker="0"} 12`. */
export function parsePrometheusText(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

export function sampleMetrics(text: string | null, atMs: number): MetricsSample {
  const sample: MetricsSample = { atMs, processCpuSeconds: null, rssBytes: null, workers: new Map() };
  if (!text) return sample;
  const worker = (id: string) => {
    let entry = sample.workers.get(id);
    if (!entry) sample.workers.set(id, (entry = { cpuSeconds: null, consumers: null, producers: null }));
    return entry;
  };
  for (const { name, labels, value } of parsePrometheusText(text)) {
    if (name === 'callplane_process_cpu_seconds_total') sample.processCpuSeconds = value;
    else if (name === 'callplane_process_resident_memory_bytes') sample.rssBytes = value;
    else if (name === 'callplane_media_worker_cpu_seconds_total' && labels.worker !== undefined) worker(labels.worker).cpuSeconds = value;
    else if (name === 'callplane_media_worker_consumers' && labels.worker !== undefined) worker(labels.worker).consumers = value;
    else if (name === 'callplane_media_worker_producers' && labels.worker !== undefined) worker(labels.worker).producers = value;
  }
  return sample;
}

const pct = (from: number | null | undefined, to: number | null | undefined, seconds: number): number | null =>
  from == null || to == null || seconds <= 0 || to < from ? null : round(((to - from) / seconds) * 100);

export function serverFigures(start: MetricsSample, end: MetricsSample): ServerFigures {
  const seconds = (end.atMs - start.atMs) / 1000;
  const workers = [...end.workers].map(([id, w]) => ({
    worker: id,
    cpu_pct: pct(start.workers.get(id)?.cpuSeconds, w.cpuSeconds, seconds),
    consumers: w.consumers,
    producers: w.producers,
  }));
  const processCpu = pct(start.processCpuSeconds, end.processCpuSeconds, seconds);
  const parts = [processCpu, ...workers.map((w) => w.cpu_pct)];
  return {
    cpu_pct: parts.every((p) => p !== null) ? round(parts.reduce((sum: number, p) => sum + p!, 0)) : null,
    process_cpu_pct: processCpu,
    rss_mb: end.rssBytes === null ? null : round(end.rssBytes / 2 ** 20),
    workers,
  };
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
