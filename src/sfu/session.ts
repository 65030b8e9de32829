import { SafeEmitter } from '../shared/events.ts';
import type { types } from 'mediasoup';
import type { CallsConfig } from '../config/schema.ts';
import type { PooledRouter, RouterCloseReason, WorkerPool } from '../media/worker-pool.ts';
import { SignalCloseCode, type MediaSource, type Permissions, type NotificationPayloads, type NotificationType } from '../protocol/signaling.ts';
import { AppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { closeSink, Peer, type Direction } from './peer.ts';
import type { IceServersFor, ParticipantIdentity, ParticipantMedia, PeerSink, TrackEvent } from './types.ts';

export interface CallSessionOptions {
  callId: string;
  pool: WorkerPool;
  logger: Logger;
  calls: CallsConfig;
  iceServers: IceServersFor;
}

export interface CallSessionEvents {
  empty: [];
  transportconnected: [{ participantId: string; direction: Direction; transportId: string }];
  /** A transport that had been DTLS-connected closed or failed (billing: media may be gone). */
  transportdisconnected: [{ participantId: string; direction: Direction; transportId: string }];
  peerjoined: [participantId: string];
  peerleft: [participantId: string, reason: string];
  producerschanged: [participantId: string];
  trackpublished: [TrackEvent];
  trackunpublished: [TrackEvent];
  mediainterrupted: [reason: string];
  /** A moderator changed a participant's roles (the call layer keeps them for its reconnects). */
  permissionschanged: [participantId: string, permissions: Permissions];
  close: [reason: string];
}

/** Audio levels are sampled this often; active_speaker is sent when the loudest participant changes. */
const SPEAKER_INTERVAL_MS = 800;
const SPEAKER_THRESHOLD_DBOV = -70;

/**
 * The live media of one call on this node: its routers (the main one first, more when the call
 * outgrows a worker), its peers, and the pipes between routers. Closing it closes everything.
 */
export class CallSession extends SafeEmitter<CallSessionEvents> {
  readonly callId: string;
  readonly routers = new Map<number, PooledRouter>();
  readonly peers = new Map<string, Peer>();
  readonly logger: Logger;
  readonly #pool: WorkerPool;
  readonly #calls: CallsConfig;
  readonly #iceServers: IceServersFor;
  #main: PooledRouter | null = null;
  #mainPending: Promise<PooledRouter> | null = null;
  #extraPending: Promise<PooledRouter> | null = null;
  /** `${producerId}@${routerId}` → the pipe of that producer into that router. */
  readonly #pipes = new Map<string, Promise<void>>();
  #audioObserver: types.AudioLevelObserver | null = null;
  #speaker: string | null = null;
  #emptyTimer: NodeJS.Timeout | null = null;
  #closed = false;
  /** Producer id of the call's one screen share, reserved before produce() so two peers cannot race. */
  screenProducer: { participantId: string; producerId: string | null } | null = null;

  constructor(options: CallSessionOptions) {
    // A listener that throws must not break the close cascade or a request.
    super((err, event) => options.logger.error({ err, event, callId: options.callId }, 'call session event listener threw'));
    this.callId = options.callId;
    this.#pool = options.pool;
    this.#calls = options.calls;
    this.#iceServers = options.iceServers;
    this.logger = options.logger.child({ callId: options.callId });
    this.#armEmptyTimer();
  }

  get closed(): boolean {
    return this.#closed;
  }

  get main(): PooledRouter | null {
    return this.#main && !this.#main.closed ? this.#main : null;
  }

  /** Least spacing of key-frame requests to this call's video publishers (see requests.ts `produce`). */
  get keyFrameRequestDelayMs(): number {
    return this.#pool.keyFrameRequestDelayMs;
  }

  get connectedCount(): number {
    let n = 0;
    for (const peer of this.peers.values()) if (peer.connected) n++;
    return n;
  }

  /** The main router, created on the least-loaded worker on first use (and again after its worker died). */
  ensureMainRouter(): Promise<PooledRouter> {
    if (this.#closed) return Promise.reject(new AppError('call_ended', 'The call has ended'));
    const main = this.main;
    if (main) return Promise.resolve(main);
    this.#mainPending ??= this.#createMain().finally(() => {
      this.#mainPending = null;
    });
    return this.#mainPending;
  }

  async #createMain(): Promise<PooledRouter> {
    const pooled = await this.#pool.createRouter({ appData: { callId: this.callId } });
    if (this.#closed) {
      pooled.close();
      throw new AppError('call_ended', 'The call has ended');
    }
    this.#adopt(pooled);
    this.#main = pooled;
    this.logger.info({ worker: pooled.workerIndex, routerId: pooled.id }, 'call router created');
    try {
      const observer = await pooled.router.createAudioLevelObserver({ maxEntries: 1, threshold: SPEAKER_THRESHOLD_DBOV, interval: SPEAKER_INTERVAL_MS });
      observer.on('volumes', (volumes) => this.#onVolumes(volumes));
      observer.on('silence', () => this.#setSpeaker(null));
      this.#audioObserver = observer;
    } catch (error) {
      this.logger.warn({ err: error }, 'no audio level observer: active_speaker disabled for this call');
    }
    return pooled;
  }

  #adopt(pooled: PooledRouter): void {
    this.routers.set(pooled.workerIndex, pooled);
    pooled.once('close', (reason) => this.#onRouterClose(pooled, reason));
  }

  /**
   * Where a new receiver's transport goes: the main router while its worker has capacity, else a
   * router of this call on another worker with capacity (created on demand, producers piped in).
   */
  async routerForReceiver(): Promise<PooledRouter> {
    const main = await this.ensureMainRouter();
    if (this.#pool.hasCapacity(main.workerIndex)) return main;
    for (const router of this.routers.values()) if (router !== main && !router.closed && this.#pool.hasCapacity(router.workerIndex)) return router;
    const candidate = this.#pool.leastLoadedWorker([...this.routers.keys()]);
    if (candidate !== null && this.#pool.hasCapacity(candidate)) {
      try {
        return await this.#createExtraRouter(main);
      } catch (error) {
        this.logger.warn({ err: error }, 'could not add a router on another worker; overloading the call\'s routers');
      }
    }
    // Every worker is full: overloading the least-consumed router beats refusing the receiver.
    let best = main;
    for (const router of this.routers.values()) {
      if (!router.closed && this.#pool.consumerCount(router.workerIndex) < this.#pool.consumerCount(best.workerIndex)) best = router;
    }
    return best;
  }

  #createExtraRouter(main: PooledRouter): Promise<PooledRouter> {
    this.#extraPending ??= (async () => {
      const pooled = await this.#pool.createRouter({ appData: { callId: this.callId, piped: true }, excludeWorkerIndex: [...this.routers.keys()] });
      if (this.#closed || this.main !== main) {
        pooled.close();
        throw new AppError('media_unavailable', 'The call\'s media moved while a router was being added');
      }
      this.#adopt(pooled);
      this.logger.info({ worker: pooled.workerIndex, mainWorker: main.workerIndex }, 'call outgrew its worker: piping to another router');
      for (const peer of this.peers.values()) {
        for (const producerId of peer.producers.keys()) this.pipe(producerId, pooled).catch(() => undefined);
      }
      return pooled;
    })().finally(() => {
      this.#extraPending = null;
    });
    return this.#extraPending;
  }

  /** Pipes a producer of the main router into `target` once (pipeToRouter keeps its id there). */
  pipe(producerId: string, target: PooledRouter): Promise<void> {
    const main = this.main;
    if (!main || target === main) return Promise.resolve();
    const key = `${producerId}@${target.id}`;
    let piping = this.#pipes.get(key);
    if (!piping) {
      piping = main.router.pipeToRouter({ producerId, router: target.router, enableSctp: false }).then(() => undefined);
      this.#pipes.set(key, piping);
      piping.catch((error: unknown) => {
        this.#pipes.delete(key);
        this.logger.warn({ err: error, producerId, worker: target.workerIndex }, 'pipeToRouter failed');
      });
    }
    return piping;
  }

  /** Finds a live producer of any participant of this call. */
  findProducer(producerId: string): { peer: Peer; producer: types.Producer; source: MediaSource } | undefined {
    for (const peer of this.peers.values()) {
      const entry = peer.producers.get(producerId);
      if (entry) return { peer, ...entry };
    }
    return undefined;
  }

  broadcast<T extends NotificationType>(type: T, payload: NotificationPayloads[T], except?: string): void {
    for (const peer of this.peers.values()) if (peer.participantId !== except) peer.notify(type, payload);
  }

  /** Attaches a (re)connecting participant's sink; returns its peer and whether it is new to the call. */
  attach(identity: ParticipantIdentity, sink: PeerSink): { peer: Peer; isNew: boolean } {
    if (this.#closed) throw new AppError('call_ended', 'The call has ended');
    const main = this.main;
    if (!main) throw new AppError('media_unavailable', 'The call has no media router (its worker just went away): reconnect');
    let peer = this.peers.get(identity.participantId);
    const isNew = !peer;
    if (peer) {
      // A reconnect: the old socket is replaced, its media closed (others see producer_closed).
      const old = peer.detachSink();
      peer.clearGrace();
      peer.closeMedia();
      closeSink(old, SignalCloseCode.replaced, 'replaced by a newer connection', this.logger);
      peer.identity = identity;
    } else {
      peer = new Peer(identity, this.logger);
      this.peers.set(identity.participantId, peer);
    }
    peer.sink = sink;
    this.#disarmEmptyTimer();
    peer.notify('welcome', {
      participantId: identity.participantId,
      callId: this.callId,
      role: identity.role,
      permissions: identity.permissions,
      routerRtpCapabilities: main.rtpCapabilities,
      iceServers: this.#iceServers(identity),
      peers: [...this.peers.values()].filter((p) => p !== peer).map((p) => p.info()),
    });
    if (isNew) {
      this.broadcast('peer_joined', { participantId: identity.participantId, userId: identity.userId, displayName: identity.displayName }, identity.participantId);
      this.emitSafe('peerjoined', identity.participantId);
    }
    return { peer, isNew };
  }

  /** The participant's socket went away: media closes now, identity stays for the grace period. */
  detach(peer: Peer): void {
    if (this.#closed || this.peers.get(peer.participantId) !== peer) return;
    peer.detachSink();
    peer.closeMedia();
    this.#startGrace(peer);
    if (this.connectedCount === 0) this.#armEmptyTimer();
  }

  /** Removes a participant now (leave, kick, grace over): others get peer_left. */
  remove(peer: Peer, closeCode: number | null, reason: string): void {
    if (this.peers.get(peer.participantId) !== peer) return;
    this.peers.delete(peer.participantId);
    peer.clearGrace();
    const sink = peer.detachSink();
    peer.closeMedia();
    if (closeCode !== null) closeSink(sink, closeCode, reason, this.logger);
    this.broadcast('peer_left', { participantId: peer.participantId });
    this.emitSafe('peerleft', peer.participantId, reason);
    if (this.connectedCount === 0) this.#armEmptyTimer();
  }

  participantMedia(): Map<string, ParticipantMedia> {
    const media = new Map<string, ParticipantMedia>();
    for (const peer of this.peers.values()) {
      const live = [...peer.producers.values()].filter(({ producer }) => !producer.closed && !producer.paused);
      media.set(peer.participantId, {
        audio_on: live.some((p) => p.source === 'microphone'),
        video_on: live.some((p) => p.source === 'camera'),
      });
    }
    return media;
  }

  /** Adds an audio producer to active speaker detection (main router only: all producers live there). */
  observeAudio(producer: types.Producer): void {
    const observer = this.#audioObserver;
    if (!observer || observer.closed) return;
    observer.addProducer({ producerId: producer.id }).catch((error: unknown) => this.logger.debug({ err: error }, 'audio level observer refused a producer'));
  }

  /** Bookkeeping after a producer of `peer` closed (its pipes close with it in mediasoup). */
  producerClosed(peer: Peer, producerId: string): void {
    for (const key of this.#pipes.keys()) if (key.startsWith(`${producerId}@`)) this.#pipes.delete(key);
    if (this.#speaker === peer.participantId && ![...peer.producers.values()].some((p) => p.producer.kind === 'audio')) this.#setSpeaker(null);
  }

  #onVolumes(volumes: types.AudioLevelObserverVolume[]): void {
    const loudest = volumes[0];
    const owner = loudest ? this.findProducer(loudest.producer.id)?.peer.participantId ?? null : null;
    this.#setSpeaker(owner, loudest?.volume);
  }

  #setSpeaker(participantId: string | null, volume?: number): void {
    if (participantId === this.#speaker) return;
    this.#speaker = participantId;
    this.broadcast('active_speaker', volume === undefined ? { participantId } : { participantId, volume });
  }

  /** Ends the call for everyone: call_status ended, then close with callEnded. */
  end(reason: string): void {
    if (this.#closed) return;
    const sinks = [...this.peers.values()].map((peer) => peer.detachSink());
    for (const sink of sinks) {
      if (!sink) continue;
      try {
        sink.notify('call_status', { callId: this.callId, status: 'ended', reason });
      } catch (error) {
        this.logger.warn({ err: error }, 'peer sink threw on notify');
      }
      closeSink(sink, SignalCloseCode.callEnded, `call ended: ${reason}`.slice(0, 100), this.logger);
    }
    this.close(reason);
  }

  /** Idempotent: closes every router (and with them every transport), forgets every peer. */
  close(reason = 'closed', closeCode: number = SignalCloseCode.goingAway): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#disarmEmptyTimer();
    for (const peer of this.peers.values()) {
      peer.clearGrace();
      closeSink(peer.detachSink(), closeCode, reason.slice(0, 100), this.logger);
    }
    this.peers.clear();
    for (const router of [...this.routers.values()]) router.close();
    this.routers.clear();
    this.#pipes.clear();
    this.#main = null;
    this.logger.info({ reason }, 'call session closed');
    this.emitSafe('close', reason);
  }

  #onRouterClose(pooled: PooledRouter, reason: RouterCloseReason): void {
    if (this.routers.get(pooled.workerIndex) === pooled) this.routers.delete(pooled.workerIndex);
    for (const key of this.#pipes.keys()) if (key.endsWith(`@${pooled.id}`)) this.#pipes.delete(key);
    if (this.#closed || reason === 'closed') return;
    if (reason === 'shutdown') {
      this.close('server shutting down', SignalCloseCode.goingAway);
      return;
    }
    // A worker died: every peer's media is gone or cut off from the main router. Tell everyone to
    // reconnect (identities kept); the next join rebuilds the main router on a live worker.
    this.logger.error({ worker: pooled.workerIndex, main: pooled === this.#main }, 'a media worker of the call died; participants must reconnect');
    this.#main = null;
    this.#audioObserver = null;
    this.#speaker = null;
    for (const router of [...this.routers.values()]) router.close();
    this.routers.clear();
    this.#pipes.clear();
    for (const peer of this.peers.values()) {
      const sink = peer.detachSink();
      peer.closeMedia();
      if (sink) {
        try {
          sink.notify('reconnect', { reason: 'media_worker_died' });
        } catch (error) {
          this.logger.warn({ err: error }, 'peer sink threw on notify');
        }
        closeSink(sink, SignalCloseCode.reconnect, 'media worker died: get a new token and reconnect', this.logger);
        this.#startGrace(peer);
      }
    }
    this.#armEmptyTimer();
    this.emitSafe('mediainterrupted', 'media_worker_died');
  }

  #startGrace(peer: Peer): void {
    peer.clearGrace();
    peer.graceTimer = setTimeout(() => {
      peer.graceTimer = null;
      if (!peer.connected) this.remove(peer, null, 'reconnect grace period over');
    }, this.#calls.reconnect_grace_seconds * 1000);
    peer.graceTimer.unref();
  }

  #armEmptyTimer(): void {
    if (this.#closed || this.#emptyTimer) return;
    this.#emptyTimer = setTimeout(() => {
      this.#emptyTimer = null;
      if (!this.#closed && this.connectedCount === 0) this.emitSafe('empty');
    }, this.#calls.empty_timeout_seconds * 1000);
    this.#emptyTimer.unref();
  }

  #disarmEmptyTimer(): void {
    if (this.#emptyTimer) clearTimeout(this.#emptyTimer);
    this.#emptyTimer = null;
  }

}
