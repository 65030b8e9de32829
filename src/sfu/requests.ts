import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { types } from 'mediasoup';
import type { PooledRouter } from '../media/pooled-router.ts';
import type { MediaSource, RequestType, ResponsePayloads } from '../protocol/signaling.ts';
import { AppError } from '../shared/errors.ts';
import { mediaError, type Direction, type Peer } from './peer.ts';
import type { CallSession } from './session.ts';
import type { SfuRequestPayload } from './types.ts';
import { muteParticipant, removeParticipant, setPermissions } from './moderation.ts';

/** What a handler runs against; `live()` is false once the peer reconnected, left or the call ended. */
export interface RequestContext {
  session: CallSession;
  peer: Peer;
  live(): boolean;
}

type Handler<T extends RequestType> = (ctx: RequestContext, payload: SfuRequestPayload<T>) => Promise<ResponsePayloads[T]>;

const INITIAL_OUTGOING_BITRATE = 1_000_000;
const empty = (): Record<string, never> => ({});

// The worker parses dtlsParameters itself; only the shape mediasoup-client sends is let through.
const DtlsParameters = TypeCompiler.Compile(
  Type.Object({
    role: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('client'), Type.Literal('server')])),
    fingerprints: Type.Array(
      Type.Object({
        algorithm: Type.Union(['sha-1', 'sha-224', 'sha-256', 'sha-384', 'sha-512'].map((a) => Type.Literal(a))),
        value: Type.String({ minLength: 1, maxLength: 256, pattern: '^[0-9A-Fa-f:]+$' }),
      }),
      { minItems: 1, maxItems: 8 },
    ),
  }),
);

/** Array sizes beyond anything a WebRTC stack sends; larger ones only cost the worker. */
const MAX_ITEMS: Record<string, number> = { codecs: 128, encodings: 8, headerExtensions: 64, fecMechanisms: 16 };

function checkSizes(value: Record<string, unknown>, what: string): void {
  for (const [key, max] of Object.entries(MAX_ITEMS)) {
    const items = value[key];
    if (Array.isArray(items) && items.length > max) throw new AppError('validation_failed', `${what}.${key} has more than ${max} entries`);
  }
}

/** Which kinds each source may carry (a screen share may come with its audio). */
const SOURCE_KINDS: Record<MediaSource, readonly string[]> = { microphone: ['audio'], camera: ['video'], screen: ['audio', 'video'] };

function notLive(): AppError {
  return new AppError('invalid_state', 'This connection was replaced or closed');
}

async function media<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw mediaError(error, what);
  }
}

function trackTransport(ctx: RequestContext, transport: types.WebRtcTransport, direction: Direction, router: PooledRouter): void {
  const { session, peer } = ctx;
  peer.transports.set(transport.id, { transport, direction, router });
  transport.observer.once('close', () => peer.transports.delete(transport.id));
  const event = { participantId: peer.participantId, direction, transportId: transport.id };
  let wasConnected = false;
  const disconnected = (): void => {
    if (!wasConnected) return;
    wasConnected = false;
    session.emitSafe('transportdisconnected', event);
  };
  transport.observer.once('close', disconnected);
  transport.on('dtlsstatechange', (state) => {
    if (state === 'connected') {
      wasConnected = true;
      session.emitSafe('transportconnected', event);
    } else if (state === 'failed' || state === 'closed') {
      session.logger.info({ participantId: peer.participantId, direction, state }, 'DTLS ended on a transport');
      disconnected();
    }
  });
}

function trackProducer(ctx: RequestContext, producer: types.Producer, source: MediaSource, router: PooledRouter): void {
  const { session, peer } = ctx;
  const participantId = peer.participantId;
  peer.producers.set(producer.id, { producer, source });
  const track = { participantId, producerId: producer.id, kind: producer.kind, source };
  producer.observer.once('close', () => {
    peer.producers.delete(producer.id);
    if (session.screenProducer?.producerId === producer.id) session.screenProducer = null;
    session.producerClosed(peer, producer.id);
    if (!session.closed) session.emitSafe('trackunpublished', track);
    // A router that closed (call ended, worker died) is announced by its own path, not per producer.
    if (router.closed || session.closed) return;
    session.broadcast('producer_closed', { participantId, producerId: producer.id }, participantId);
    session.emitSafe('producerschanged', participantId);
  });
  if (producer.kind === 'audio') session.observeAudio(producer);
  for (const other of session.routers.values()) if (other !== router) session.pipe(producer.id, other).catch(() => undefined);
  session.broadcast('new_producer', { participantId, producerId: producer.id, kind: producer.kind, source }, participantId);
  session.emitSafe('trackpublished', track);
  session.emitSafe('producerschanged', participantId);
}

function trackConsumer(ctx: RequestContext, consumer: types.Consumer, producerId: string): void {
  const { session, peer } = ctx;
  peer.consumers.set(consumer.id, { consumer, producerId });
  consumer.observer.once('close', () => peer.consumers.delete(consumer.id));
  consumer.on('producerclose', () => {
    peer.consumers.delete(consumer.id);
    // mediasoup-client needs to close its side; skipped when the whole call's media went away.
    if (!session.closed && session.main) peer.notify('consumer_closed', { consumerId: consumer.id, producerId });
  });
}

async function setProducerPaused(ctx: RequestContext, producerId: string, paused: boolean): Promise<Record<string, never>> {
  const { producer } = ctx.peer.own(ctx.peer.producers, producerId, 'producer');
  if (producer.paused === paused) return {};
  await media(paused ? 'pauseProducer' : 'resumeProducer', () => (paused ? producer.pause() : producer.resume()));
  const participantId = ctx.peer.participantId;
  ctx.session.broadcast(paused ? 'producer_paused' : 'producer_resumed', { participantId, producerId }, participantId);
  ctx.session.emitSafe('producerschanged', participantId);
  return {};
}

export const handlers: { [T in RequestType]: Handler<T> } = {
  async createTransport(ctx, { direction }) {
    if (direction === 'send' && !ctx.peer.identity.permissions.canPublish) throw new AppError('forbidden', 'This participant may not publish media (listeners and unpromoted participants only receive)');
    if (ctx.peer.transportOf(direction) || (direction === 'both' && ctx.peer.transports.size > 0)) {
      throw new AppError('invalid_state', `A ${direction} transport already exists on this connection (use restartIce to recover it)`);
    }
    // A transport that sends lives on the main router, where every producer of the call is.
    const router = direction === 'recv' ? await ctx.session.routerForReceiver() : await ctx.session.ensureMainRouter();
    const transport = await media('createTransport', () =>
      router.router.createWebRtcTransport({
        webRtcServer: router.webRtcServer,
        enableUdp: true,
        enableTcp: true,
        preferUdp: true,
        initialAvailableOutgoingBitrate: INITIAL_OUTGOING_BITRATE,
        appData: { participantId: ctx.peer.participantId, direction },
      }),
    );
    if (!ctx.live()) {
      transport.close();
      throw notLive();
    }
    trackTransport(ctx, transport, direction, router);
    return {
      id: transport.id,
      iceParameters: transport.iceParameters,
      iceCandidates: transport.iceCandidates,
      dtlsParameters: transport.dtlsParameters,
      ...(transport.sctpParameters ? { sctpParameters: transport.sctpParameters } : {}),
    };
  },

  async connectTransport(ctx, { transportId, dtlsParameters }) {
    const { transport } = ctx.peer.own(ctx.peer.transports, transportId, 'transport');
    if (!DtlsParameters.Check(dtlsParameters)) {
      const first = DtlsParameters.Errors(dtlsParameters).First();
      throw new AppError('validation_failed', `dtlsParameters${first?.path ?? ''}: ${first?.message ?? 'invalid'}`);
    }
    // Rebuilt, so nothing but the checked fields reaches the worker.
    const clean: types.DtlsParameters = {
      ...(dtlsParameters.role ? { role: dtlsParameters.role } : {}),
      fingerprints: dtlsParameters.fingerprints.map(({ algorithm, value }) => ({ algorithm, value })),
    };
    await media('connectTransport', () => transport.connect({ dtlsParameters: clean }));
    return empty();
  },

  async produce(ctx, { transportId, kind, rtpParameters, source }) {
    const { session, peer } = ctx;
    // Read now, not at connect: a demotion while connected takes effect at the next produce.
    if (!peer.identity.permissions.canPublish) throw new AppError('forbidden', 'This participant may not publish media (listeners and unpromoted participants only receive)');
    const entry = peer.own(peer.transports, transportId, 'transport');
    if (entry.direction === 'recv') throw new AppError('invalid_state', 'produce needs a send transport; this one receives');
    if (!SOURCE_KINDS[source].includes(kind)) throw new AppError('validation_failed', `source "${source}" cannot carry ${kind}`);
    for (const other of peer.producers.values()) {
      if (other.source === source && other.producer.kind === kind) throw new AppError('invalid_state', `This participant already publishes ${source} ${kind}`);
    }
    checkSizes(rtpParameters, 'rtpParameters');
    // mediasoup does not check that the codecs match `kind`; an "audio" producer of VP8 would mislead everyone.
    const codecs = Array.isArray(rtpParameters.codecs) ? (rtpParameters.codecs as unknown[]) : [];
    if (codecs.some((c) => typeof (c as { mimeType?: unknown } | null)?.mimeType !== 'string' || !(c as { mimeType: string }).mimeType.toLowerCase().startsWith(`${kind}/`))) {
      throw new AppError('validation_failed', `rtpParameters.codecs must all be ${kind} codecs (mimeType "${kind}/...")`);
    }
    const screenVideo = source === 'screen' && kind === 'video';
    if (screenVideo) {
      if (session.screenProducer) throw new AppError('invalid_state', 'Someone else is already presenting a screen in this call (one presenter at a time)');
      session.screenProducer = { participantId: peer.participantId, producerId: null };
    }
    let producer: types.Producer;
    try {
      producer = await media('produce', () =>
        entry.transport.produce({
          kind,
          rtpParameters: rtpParameters as unknown as types.RtpParameters,
          // Joins close together would each ask this publisher for a key frame; spaced requests are
          // all honoured (docs/architecture.md "Key frames").
          ...(kind === 'video' ? { keyFrameRequestDelay: session.keyFrameRequestDelayMs } : {}),
          appData: { participantId: peer.participantId, source },
        }),
      );
    } catch (error) {
      if (screenVideo) session.screenProducer = null;
      throw error;
    }
    if (!ctx.live() || producer.closed) {
      if (screenVideo) session.screenProducer = null;
      producer.close();
      throw notLive();
    }
    if (screenVideo) session.screenProducer = { participantId: peer.participantId, producerId: producer.id };
    trackProducer(ctx, producer, source, entry.router);
    return { id: producer.id };
  },

  async consume(ctx, { producerId, rtpCapabilities, mid, enableRtx }) {
    const { session, peer } = ctx;
    if (!peer.identity.permissions.canSubscribe) throw new AppError('forbidden', 'This participant may not receive media');
    const recv = peer.transportOf('recv');
    if (!recv) throw new AppError('invalid_state', 'Create a recv transport before consuming');
    if (!session.findProducer(producerId)) throw new AppError('not_found', `No producer ${JSON.stringify(producerId)} in this call`);
    for (const c of peer.consumers.values()) {
      if (c.producerId === producerId) throw new AppError('invalid_state', `Already consuming producer ${producerId} (consumer ${c.consumer.id})`);
    }
    try {
      await session.pipe(producerId, recv.router);
    } catch {
      throw new AppError('media_unavailable', 'The producer could not be piped to this participant\'s media worker');
    }
    checkSizes(rtpCapabilities, 'rtpCapabilities');
    const caps = rtpCapabilities as unknown as types.RtpCapabilities;
    if (!recv.router.router.canConsume({ producerId, rtpCapabilities: caps })) {
      throw new AppError('invalid_state', 'These rtpCapabilities cannot receive this producer (no common codec)');
    }
    const consumer = await media('consume', () =>
      recv.transport.consume({ producerId, rtpCapabilities: caps, paused: true, ...(mid === undefined ? {} : { mid }), ...(enableRtx === undefined ? {} : { enableRtx }), appData: { participantId: peer.participantId } }),
    );
    if (!ctx.live()) {
      consumer.close();
      throw notLive();
    }
    trackConsumer(ctx, consumer, producerId);
    return { id: consumer.id, producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters, type: consumer.type, producerPaused: consumer.producerPaused };
  },

  async resumeConsumer(ctx, { consumerId }) {
    const { consumer } = ctx.peer.own(ctx.peer.consumers, consumerId, 'consumer');
    await media('resumeConsumer', () => consumer.resume());
    // A paused-then-resumed video consumer is useless until the next key frame: ask for one now.
    if (consumer.kind === 'video') consumer.requestKeyFrame().catch(() => undefined);
    return empty();
  },

  async pauseConsumer(ctx, { consumerId }) {
    const { consumer } = ctx.peer.own(ctx.peer.consumers, consumerId, 'consumer');
    await media('pauseConsumer', () => consumer.pause());
    return empty();
  },

  pauseProducer: (ctx, { producerId }) => setProducerPaused(ctx, producerId, true),
  resumeProducer: (ctx, { producerId }) => setProducerPaused(ctx, producerId, false),

  async closeProducer(ctx, { producerId }) {
    const { producer } = ctx.peer.own(ctx.peer.producers, producerId, 'producer');
    producer.close(); // the observer announces producer_closed
    return empty();
  },

  async setPreferredLayers(ctx, { consumerId, spatialLayer, temporalLayer }) {
    const { consumer } = ctx.peer.own(ctx.peer.consumers, consumerId, 'consumer');
    if (consumer.type !== 'simulcast' && consumer.type !== 'svc') {
      throw new AppError('invalid_state', `Consumer ${consumerId} is ${consumer.type}: it has no layers`);
    }
    await media('setPreferredLayers', () => consumer.setPreferredLayers(temporalLayer === undefined ? { spatialLayer } : { spatialLayer, temporalLayer }));
    return empty();
  },

  async restartIce(ctx, { transportId }) {
    const { transport } = ctx.peer.own(ctx.peer.transports, transportId, 'transport');
    const iceParameters = await media('restartIce', () => transport.restartIce());
    return { iceParameters };
  },

  // The registry removes the participant once this answer is on its way (see SfuRegistry).
  leave: async () => empty(),

  setPermissions,
  muteParticipant,
  removeParticipant,
};
