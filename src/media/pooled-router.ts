import { SafeEmitter } from '../shared/events.ts';
import type { types } from 'mediasoup';

/** Why a PooledRouter closed: its owner closed it, its worker died (participants must reconnect), or the pool shut down. */
export type RouterCloseReason = 'closed' | 'workerdied' | 'shutdown';

export interface PooledRouterEvents {
  close: [reason: RouterCloseReason];
}

/** A router placed by the pool, with the WebRtcServer its WebRtcTransports must use. */
export class PooledRouter extends SafeEmitter<PooledRouterEvents> {
  readonly router: types.Router;
  readonly workerIndex: number;
  readonly workerPid: number;
  readonly webRtcServer: types.WebRtcServer;
  #closed = false;

  constructor(router: types.Router, workerIndex: number, worker: types.Worker, webRtcServer: types.WebRtcServer) {
    // The pool's owner logs router closes; a listener's own failure is its business.
    super(() => undefined);
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
      // A throwing listener must not break mediasoup's close cascade.
      this.emitSafe('close', reason);
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
