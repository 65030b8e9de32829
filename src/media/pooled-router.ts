import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';

/** Why a PooledRouter closed: its owner closed it, its worker died (participants must reconnect), or the pool shut down. */
export type RouterCloseReason = 'closed' | 'workerdied' | 'shutdown';

export interface PooledRouterEvents {
  close: [reason: RouterCloseReason];
}

/** A router placed by the pool, with the WebRtcServer its WebRtcTransports must use. */
export class PooledRouter extends EventEmitter<PooledRouterEvents> {
  readonly router: types.Router;
  readonly workerIndex: number;
  readonly workerPid: number;
  readonly webRtcServer: types.WebRtcServer;
  #closed = false;

  constructor(router: types.Router, workerIndex: number, worker: types.Worker, webRtcServer: types.WebRtcServer) {
    super();
    this.router = router;
    this.workerIndex = workerIndex;
    this.workerPid = worker.pid;
    this.webRtcServer = webRtcServer;
    let workerClosed = false;
    // mediasoup emits 'workerclose' just before the observer's 'close' when the worker goes away.
    router.once('workerclose', () => {
      workerClosed = true;
    });
    router.observer.once('close', () => {
      this.#closed = true;
      const reason: RouterCloseReason = !workerClosed ? 'closed' : worker.died ? 'workerdied' : 'shutdown';
      try {
        this.emit('close', reason);
      } catch {
        // A throwing listener must not break mediasoup's close cascade.
      }
    });
  }

  get id(): string {
    return this.router.id;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get rtpCapabilities(): types.RtpCapabilities {
    return this.router.rtpCapabilities;
  }

  /** Idempotent; closes the router's transports, producers and consumers with it. */
  close(): void {
    this.router.close();
  }
}
