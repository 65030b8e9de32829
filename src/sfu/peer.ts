import type { types } from 'mediasoup';
import type { PooledRouter } from '../media/pooled-router.ts';
import type { MediaSource, NotificationPayloads, NotificationType, PeerInfo } from '../protocol/signaling.ts';
import { AppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { ParticipantIdentity, PeerSink } from './types.ts';

/** 'both': the one BUNDLE transport of an SDP peer (docs/sdp.md), which sends and receives. */
export type Direction = 'send' | 'recv' | 'both';

export interface TransportEntry {
  transport: types.WebRtcTransport;
  direction: Direction;
  router: PooledRouter;
}

export interface ProducerEntry {
  producer: types.Producer;
  source: MediaSource;
}

export interface ConsumerEntry {
  consumer: types.Consumer;
  /** The original producer's id (a piped producer keeps it). */
  producerId: string;
}

/**
 * A participant of a live call: identity (kept across reconnects), its current sink and its
 * mediasoup objects. The maps only ever hold objects this participant created, which is what
 * makes the ownership checks of every request a map lookup.
 */
export class Peer {
  identity: ParticipantIdentity;
  sink: PeerSink | null = null;
  /** Bumped whenever the sink is replaced or detached, so a stale connection handle can tell. */
  generation = 0;
  readonly transports = new Map<string, TransportEntry>();
  readonly producers = new Map<string, ProducerEntry>();
  readonly consumers = new Map<string, ConsumerEntry>();
  graceTimer: NodeJS.Timeout | null = null;
  readonly #logger: Logger;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(identity: ParticipantIdentity, logger: Logger) {
    this.identity = identity;
    this.#logger = logger;
  }

  get participantId(): string {
    return this.identity.participantId;
  }

  get connected(): boolean {
    return this.sink !== null;
  }

  /** The transport that carries `direction` (an SDP peer's 'both' transport carries either). */
  transportOf(direction: Direction): TransportEntry | undefined {
    for (const entry of this.transports.values()) if (entry.direction === direction || entry.direction === 'both') return entry;
    return undefined;
  }

  /** The entry of one of this peer's objects, or not_found: a peer never reaches another's objects. */
  own<T>(map: Map<string, T>, id: string, what: string): T {
    const entry = map.get(id);
    if (!entry) throw new AppError('not_found', `No ${what} ${JSON.stringify(id)} of this participant`);
    return entry;
  }

  /** Runs `task` after every earlier request of this peer has settled, so requests never interleave. */
  enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(task);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  notify<T extends NotificationType>(type: T, payload: NotificationPayloads[T]): void {
    if (!this.sink) return;
    try {
      this.sink.notify(type, payload);
    } catch (error) {
      this.#logger.warn({ err: error, participantId: this.participantId, type }, 'peer sink threw on notify');
    }
  }

  /** Detaches the current sink (making its connection stale) and returns it, for the caller to close. */
  detachSink(): PeerSink | null {
    const sink = this.sink;
    this.sink = null;
    this.generation++;
    return sink;
  }

  /** Closes every transport (and so every producer and consumer) of this peer. */
  closeMedia(): void {
    for (const { transport } of [...this.transports.values()]) transport.close();
    this.transports.clear();
    this.producers.clear();
    this.consumers.clear();
  }

  clearGrace(): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
  }

  info(): PeerInfo {
    return {
      participantId: this.participantId,
      userId: this.identity.userId,
      displayName: this.identity.displayName,
      producers: [...this.producers.values()].map(({ producer, source }) => ({
        producerId: producer.id,
        kind: producer.kind,
        source,
        paused: producer.paused,
      })),
    };
  }
}

/** Closes a sink without letting a misbehaving transport throw into the SFU. */
export function closeSink(sink: PeerSink | null, code: number, reason: string, logger: Logger): void {
  if (!sink) return;
  try {
    sink.close(code, reason);
  } catch (error) {
    logger.warn({ err: error, code }, 'peer sink threw on close');
  }
}

/**
 * mediasoup's own errors as client-facing AppErrors: TypeError/UnsupportedError mean the client's
 * parameters were bad, InvalidStateError or a worker refusal mean the request does not fit the state.
 */
export function mediaError(error: unknown, what: string): AppError {
  if (error instanceof AppError) return error;
  if (!(error instanceof Error)) return new AppError('internal_error', 'Internal server error');
  const message = `${what}: ${error.message}`.slice(0, 300);
  if (error instanceof TypeError || error.name === 'UnsupportedError') return new AppError('validation_failed', message);
  return new AppError('invalid_state', message);
}
