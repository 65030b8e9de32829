import { createRequire } from 'node:module';
import type { MediaConfig } from '../config/schema.ts';

// mediasoup takes MEDIASOUP_WORKER_BIN only at load time, but reads its CJS module's `workerBin`
// export at each spawn; setting that export lets media.worker_bin win without touching the env.
const workerModule = createRequire(import.meta.url)('mediasoup/node/lib/Worker.js') as { workerBin: string };
const defaultWorkerBin = workerModule.workerBin;

/** The mediasoup-worker binary this config runs: media.worker_bin, else MEDIASOUP_WORKER_BIN, else the package's build. */
export function workerBinFor(config: Pick<MediaConfig, 'worker_bin'>): string {
  return config.worker_bin ?? defaultWorkerBin;
}

/** Makes mediasoup's next createWorker() spawn `bin` (read synchronously by the Worker constructor). */
export function setSpawnBin(bin: string): void {
  workerModule.workerBin = bin;
}

/** The address put in ICE candidates. */
export function announcedAddressFor(config: Pick<MediaConfig, 'announced_address' | 'listen_ip'>): string {
  if (config.announced_address) return config.announced_address;
  return config.listen_ip === '0.0.0.0' ? '127.0.0.1' : config.listen_ip;
}

/**
 * mediasoup's default RTC range (10000–59999, used by Plain/Pipe transports) overlaps the
 * WebRtcServer ports; keep it on the larger side of them so another worker cannot take a dead
 * worker's port before its replacement rebinds it.
 */
export function rtcPortRange(portBase: number, workers: number): { rtcMinPort: number; rtcMaxPort: number } {
  const [min, max] = [10000, 59999];
  const last = portBase + workers - 1;
  if (last < min || portBase > max) return { rtcMinPort: min, rtcMaxPort: max };
  return portBase - min >= max - last ? { rtcMinPort: min, rtcMaxPort: portBase - 1 } : { rtcMinPort: last + 1, rtcMaxPort: max };
}
