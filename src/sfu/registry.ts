import { SafeEmitter } from '../shared/events.ts';
import type { CallsConfig } from '../config/schema.ts';
import type { WorkerPool } from '../media/worker-pool.ts';
import { SignalCloseCode, type NotificationPayloads, type NotificationType, type RequestType, type ResponsePayloads } from '../protocol/signaling.ts';
import { AppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';

import type { Peer } from './peer.ts';
import { openRecordingTap, recordableTracks, type RecordableTrack, type RecordingTap, type RecordingTapPorts } from './recording-tap.ts';
import { handlers, type RequestContext } from './requests.ts';
import { CallSession } from './session.ts';
import type { DtlsState, IceServersFor, ParticipantIdentity, ParticipantMedia, PeerConnection, PeerSink, SfuRegistryEvents, SfuRequestPayload } from './types.ts';

export interface SfuRegistryOptions {
  pool: WorkerPool;
  logger: Logger;
  calls: CallsConfig;
  iceServers: IceServersFor;
  /**
   * A call with nobody connected for `calls.empty_timeout_seconds`: `end` closes its session here;
   * `report` emits `empty` and leaves the decision to the listener (the call service ends the call,
   * which records why). Default `end`, so a registry used on its own never leaks an empty call.
   */
  emptyCalls?: 'end' | 'report';
}

/**
 * The live SFU state of every call on this node. Transports (signaling) attach participants with
 * join(); the REST layer ends calls and reads participants' media; both listen to its events.
 */
export class SfuRegistry extends SafeEmitter<SfuRegistryEvents> {
  readonly #options: SfuRegistryOptions;
  readonly #logger: Logger;
  readonly #sessions = new Map<string, CallSession>();
  #closed = false;

  constructor(options: SfuRegistryOptions) {
    super((err, event) => options.logger.error({ err, event, component: 'sfu' }, 'SFU event listener threw'));
    this.#options = options;
    this.#logger = options.logger.child({ component: 'sfu' });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Call ids with a live session on this node. */
  callIds(): string[] {
    return [...this.#sessions.keys()];
  }

  get(callId: string): CallSession | undefined {
    return this.#sessions.get(callId);
  }

  /**
   * Creates the call's session and its main router on the least-loaded worker (starting its empty
   * timer). Concurrent callers share one router creation. Throws media_unavailable when no worker can.
   */
  async prepare(callId: string): Promise<void> {
    await this.session(callId);
  }

  /** prepare(), returning the session. */
  async session(callId: string): Promise<CallSession> {
    if (this.#closed) throw new AppError('media_unavailable', 'The SFU is shutting down');
    let session = this.#sessions.get(callId);
    if (!session) {
      session = this.#createSession(callId);
      this.#sessions.set(callId, session);
    }
    await session.ensureMainRouter();
    return session;
  }

  /**
   * Attaches a participant's connection and sends it `welcome`. A participant already in the call
   * (a reconnect) keeps its identity; its previous connection is closed with `replaced`.
   */
  async join(identity: ParticipantIdentity, sink: PeerSink): Promise<PeerConnection> {
    const session = await this.session(identity.callId);
    // The router may have died between prepare() and now; one more try covers that race.
    if (!session.main && !session.closed) await session.ensureMainRouter();
    const { peer } = session.attach(identity, sink);
    this.#logger.info({ callId: identity.callId, participantId: identity.participantId, worker: session.main?.workerIndex }, 'participant connected');
    return this.#connection(session, peer);
  }

  /** The participant's socket closed: its media closes now; it is removed after the grace period. */
  disconnect(callId: string, participantId: string): void {
    const session = this.#sessions.get(callId);
    const peer = session?.peers.get(participantId);
    if (session && peer) session.detach(peer);
  }

  /** Removes a participant now (leave, kick): its socket is closed with `closeCode`, others get peer_left. */
  removeParticipant(callId: string, participantId: string, reason = 'removed', closeCode: number = SignalCloseCode.left): boolean {
    const session = this.#sessions.get(callId);
    const peer = session?.peers.get(participantId);
    if (!session || !peer) return false;
    session.remove(peer, closeCode, reason);
    return true;
  }

  /** Every participant gets call_status ended and is closed with callEnded; the session closes. */
  endCall(callId: string, reason: string): boolean {
    const session = this.#sessions.get(callId);
    if (!session) return false;
    session.end(reason);
    return true;
  }

  /**
   * Each attached participant's best DTLS state as the SFU sees it ('connected' when any of its
   * transports is): what billing trusts to start and stop the meter, never a client's claim.
   */
  dtlsStates(callId: string): Map<string, DtlsState> {
    const states = new Map<string, DtlsState>();
    const session = this.#sessions.get(callId);
    if (!session) return states;
    for (const peer of session.peers.values()) {
      const all = [...peer.transports.values()].map(({ transport }) => transport.dtlsState);
      states.set(peer.participantId, all.includes('connected') ? 'connected' : all.includes('connecting') ? 'connecting' : (all[0] ?? 'new'));
    }
    return states;
  }

  /** Sends one notification to every connected participant of the call (e.g. billing's call_status). */
  notifyCall<T extends NotificationType>(callId: string, type: T, payload: NotificationPayloads[T]): void {
    this.#sessions.get(callId)?.broadcast(type, payload);
  }

  /** audio_on / video_on per participant, from live producers (paused counts as off). */
  participantMedia(callId: string): Map<string, ParticipantMedia> {
    return this.#sessions.get(callId)?.participantMedia() ?? new Map();
  }

  /** The call's live producers, for a recorder (docs/recording.md). */
  recordableTracks(callId: string): RecordableTrack[] {
    const session = this.#sessions.get(callId);
    return session && !session.closed ? recordableTracks(session) : [];
  }

  /** Consumes one producer into a PlainTransport on 127.0.0.1 towards a local recorder (paused until resume()). */
  async openRecordingTap(callId: string, producerId: string, ports: RecordingTapPorts): Promise<RecordingTap> {
    const session = this.#sessions.get(callId);
    if (!session || session.closed) throw new AppError('call_ended', 'The call has no live media');
    return openRecordingTap(session, producerId, ports);
  }

  /** Idempotent: every socket is closed with goingAway, every session and router closed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const session of [...this.#sessions.values()]) session.close('server shutting down', SignalCloseCode.goingAway);
    this.#sessions.clear();
  }

  #createSession(callId: string): CallSession {
    const { pool, calls, iceServers } = this.#options;
    const session = new CallSession({ callId, pool, calls, iceServers, logger: this.#logger });
    const emit = <K extends keyof SfuRegistryEvents & string>(event: K, ...args: SfuRegistryEvents[K]): void => this.emitSafe(event, ...args);
    session.on('empty', () => {
      this.#logger.info({ callId }, 'call has been empty for the empty timeout');
      if ((this.#options.emptyCalls ?? 'end') === 'end') session.end('empty');
      else emit('empty', { callId });
    });
    session.on('transportconnected', (e) => emit('transportconnected', { callId, ...e }));
    session.on('transportdisconnected', (e) => emit('transportdisconnected', { callId, ...e }));
    session.on('peerjoined', (participantId) => emit('peerjoined', { callId, participantId }));
    session.on('peerleft', (participantId, reason) => emit('peerleft', { callId, participantId, reason }));
    session.on('trackpublished', (track) => emit('trackpublished', { callId, ...track }));
    session.on('trackunpublished', (track) => emit('trackunpublished', { callId, ...track }));
    session.on('producerschanged', (participantId) => emit('producerschanged', { callId, participantId }));
    session.on('mediainterrupted', (reason) => emit('mediainterrupted', { callId, reason }));
    session.on('permissionschanged', (participantId, permissions) => emit('permissionschanged', { callId, participantId, permissions }));
    session.once('close', (reason) => {
      if (this.#sessions.get(callId) === session) this.#sessions.delete(callId);
      emit('callclosed', { callId, reason });
    });
    return session;
  }

  #connection(session: CallSession, peer: Peer): PeerConnection {
    const generation = peer.generation;
    const live = (): boolean => !session.closed && session.peers.get(peer.participantId) === peer && peer.generation === generation;
    const ctx: RequestContext = { session, peer, live };
    const logger = this.#logger;
    return {
      callId: session.callId,
      participantId: peer.participantId,
      get stale() {
        return !live();
      },
      request<T extends RequestType>(type: T, payload: SfuRequestPayload<T>): Promise<ResponsePayloads[T]> {
        if (!Object.hasOwn(handlers, type)) return Promise.reject(new AppError('validation_failed', `Unknown request type ${String(type)}`));
        return peer.enqueue(async () => {
          if (!live()) throw new AppError('invalid_state', 'This connection was replaced or closed');
          const handler = handlers[type] as unknown as (ctx: RequestContext, payload: SfuRequestPayload<T>) => Promise<ResponsePayloads[T]>;
          const result = await handler(ctx, payload);
          if (type === 'leave') {
            // After the answer has been written (the caller writes it in this same microtask chain).
            setImmediate(() => {
              if (live()) session.remove(peer, SignalCloseCode.left, 'left');
            });
          }
          return result;
        }).catch((error: unknown) => {
          if (!(error instanceof AppError)) logger.error({ err: error, type, callId: session.callId }, 'SFU request failed unexpectedly');
          throw error instanceof AppError ? error : new AppError('internal_error', 'Internal server error');
        });
      },
      close(): void {
        if (live()) session.detach(peer);
      },
    };
  }
}
