import type { TSchema } from '@sinclair/typebox';
import type { Registry } from 'prom-client';
import type { PeerConnection, ParticipantIdentity, PeerSink } from '../sfu/types.ts';
import type { CallsConfig } from '../config/schema.ts';
import type { Uws } from '../http/uws.ts';
import { Type } from '@sinclair/typebox';
import { SdpPeer } from '../calls/sdp-peer/index.ts';
import {
  ClientFrame,
  MAX_SIGNAL_MESSAGE_BYTES,
  RequestId as RequestIdSchema,
  RequestSchemas,
  SdpMessageSchemas,
  SignalCloseCode,
  type NotificationPayloads,
  type NotificationType,
  type RequestType,
  type SdpMessagePayload,
} from '../protocol/signaling.ts';
import { AppError, toAppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { SocketEndpoint, TransportCloseCode, type FrameProtocol, type Refusal, type RequestId, type Socket } from '../ws/index.ts';

/** The socket paths (README "Room calls": /v1/signal, and /ws for older clients). */
export const SIGNALING_PATHS = ['/v1/signal', '/ws'] as const;

/** What the transport needs from the SFU (SfuRegistry implements it). */
export interface SignalingSfu {
  join(identity: ParticipantIdentity, sink: PeerSink): Promise<PeerConnection>;
}

export interface SignalingDeps {
  sfu: SignalingSfu;
  /**
   * Resolves (and consumes: tokens are single use) a signaling token. null for an unknown,
   * expired or used token. May throw AppError('forbidden' | 'call_ended') for a specific close code.
   */
  resolveToken: (token: string) => Promise<ParticipantIdentity | null>;
  calls: Pick<CallsConfig, 'signaling_messages_per_second'>;
  logger: Logger;
  registry?: Registry;
}

interface SignalingSession {
  identity: ParticipantIdentity;
  /** The SFU connection, once joined (requests before it get invalid_state). */
  conn: PeerConnection | null;
  /** Which protocol the socket speaks, from its first media message (docs/sdp.md): mixing is an error. */
  dialect: 'sdk' | 'sdp' | null;
  /** Seed 000's SDP peer over this socket's SFU connection; it hears every notification from the welcome on. */
  sdp: SdpPeer | null;
}

/** SDK requests that decide the dialect (leave and moderation do not: both dialects may send them). */
const SDK_MEDIA: ReadonlySet<RequestType> = new Set<RequestType>(['createTransport', 'connectTransport', 'produce', 'consume', 'resumeConsumer', 'pauseConsumer', 'pauseProducer', 'resumeProducer', 'closeProducer', 'setPreferredLayers', 'restartIce']);

function speak(session: SignalingSession, dialect: 'sdk' | 'sdp'): void {
  if (session.dialect === null) session.dialect = dialect;
  else if (session.dialect !== dialect) {
    const other = session.dialect === 'sdp' ? 'the SDP messages (offer / answer / ice_candidate)' : 'the SDK protocol (createTransport, produce, consume…)';
    throw new AppError('invalid_state', `This socket speaks ${other}: one socket cannot mix the two`);
  }
}

/** What a plain-WebRTC (SDP) message handler returns: its answer, if any, was already sent as a frame of its own. */
const NO_REPLY = Symbol('no reply');

/** The frames of src/protocol/signaling.ts: {type, id, payload} in; response / error out. */
const signalingFrames: FrameProtocol = {
  envelope: ClientFrame,
  requestName(frame) {
    const type = (frame as { type?: unknown } | null)?.type;
    return typeof type === 'string' ? type : undefined;
  },
  requestId(frame) {
    if (frame === null || typeof frame !== 'object' || !('id' in frame)) return undefined;
    const id = (frame as { id: unknown }).id;
    if (typeof id === 'string' && id.length >= 1 && id.length <= 64) return id;
    if (typeof id === 'number' && Number.isInteger(id)) return id;
    return undefined;
  },
  // Requests are checked with their id (SDK requests need one; the SDP messages have none).
  payload: (frame) => ({ id: (frame as { id?: unknown }).id, payload: (frame as { payload?: unknown }).payload ?? {} }),
  reply: (id, result) => (result === NO_REPLY ? null : { type: 'response', id, payload: result }),
  error(id: RequestId | undefined, error: AppError) {
    const payload = { code: error.code, message: error.message };
    return id === undefined ? { type: 'error', payload } : { type: 'error', id, payload };
  },
  unknownRequest: (name, known) => new AppError('validation_failed', `Unknown request type ${JSON.stringify(name)}; known: ${known.join(', ')}`),
};

/** Refused tokens map to the protocol's close codes, so a browser (which cannot read an HTTP 401) learns why. */
function refusalFor(error: unknown): Refusal {
  const appError = toAppError(error);
  if (appError.code === 'forbidden') return { code: SignalCloseCode.forbidden, reason: 'not a participant of this call' };
  if (appError.code === 'call_ended') return { code: SignalCloseCode.callEnded, reason: 'the call has ended' };
  if (appError.code === 'unauthorized' || appError.code === 'not_found') return { code: SignalCloseCode.unauthorized, reason: 'invalid, expired or used token' };
  return { code: TransportCloseCode.internalError, reason: 'could not check the token' };
}

function sinkFor(socket: Socket<SignalingSession>): PeerSink {
  return {
    notify<T extends NotificationType>(type: T, payload: NotificationPayloads[T]): void {
      const { session } = socket;
      session.sdp?.observe(type, payload, session.dialect === 'sdp');
      if (session.dialect !== 'sdp') socket.send({ type, payload });
    },
    close(code: number, reason: string): void {
      socket.close(code, reason);
    },
  };
}

/** Joins the SFU once the token is checked; the SFU sends `welcome` through the sink. */
function join(deps: SignalingDeps, logger: Logger, socket: Socket<SignalingSession>): void {
  const { identity } = socket.session;
  let joined: Promise<PeerConnection>;
  try {
    joined = deps.sfu.join(identity, sinkFor(socket));
  } catch (error) {
    joined = Promise.reject(error);
  }
  joined.then(
    (conn) => {
      if (socket.isOpen) {
        socket.session.conn = conn;
        socket.session.sdp?.attach(conn);
      } else conn.close(); // the socket went away while joining
    },
    (error: unknown) => {
      const appError = toAppError(error);
      if (appError.code === 'internal_error') logger.error({ err: error, callId: identity.callId }, 'joining the SFU failed');
      socket.sendError(appError);
      const code = appError.code === 'call_ended' ? SignalCloseCode.callEnded : appError.code === 'media_unavailable' ? SignalCloseCode.reconnect : TransportCloseCode.internalError;
      socket.close(code, appError.message);
    },
  );
}

/**
 * Serves the SFU signaling WebSocket (README "Room calls"; the contract is src/protocol/signaling.ts)
 * on `app`. Invalid tokens complete the upgrade and are closed at once with 4001 and a reason.
 */
export function attachSignaling(app: Uws.TemplatedApp, deps: SignalingDeps): SocketEndpoint<SignalingSession> {
  const logger = deps.logger.child({ component: 'signaling' });
  const rate = deps.calls.signaling_messages_per_second;
  const endpoint = new SocketEndpoint<SignalingSession>(
    app,
    {
      name: 'signaling',
      paths: SIGNALING_PATHS,
      tokenName: 'signaling_token',
      legacyMetricsPrefix: 'callplane_signaling',
      limits: { maxMessageBytes: MAX_SIGNAL_MESSAGE_BYTES, messagesPerSecond: rate, floodCloseCode: SignalCloseCode.flooding },
      protocol: signalingFrames,
      async authenticate(token) {
        if (!token) throw new AppError('unauthorized', 'missing token');
        const identity = await deps.resolveToken(token);
        if (!identity) throw new AppError('unauthorized', 'invalid, expired or used token');
        return { identity, conn: null, dialect: null, sdp: null };
      },
      refusal: refusalFor,
      opened(socket) {
        socket.session.sdp = new SdpPeer(
          {
            send: (type, payload) => socket.send({ type, payload }),
            forward: (type, payload) => socket.send({ type, payload }),
          },
          logger.child({ participantId: socket.session.identity.participantId }),
        );
        join(deps, logger, socket);
      },
      closed(socket) {
        socket.session.sdp?.close();
        socket.session.conn?.close();
        socket.session.conn = null;
      },
    },
    { logger: deps.logger, ...(deps.registry ? { registry: deps.registry } : {}) },
  );
  for (const [type, schema] of Object.entries(RequestSchemas) as Array<[RequestType, TSchema]>) {
    endpoint.request(type, Type.Object({ id: RequestIdSchema, payload: schema }), (socket, frame) => {
      const conn = socket.session.conn;
      if (!conn) throw new AppError('invalid_state', `${type} received before welcome: wait for the welcome message`);
      if (SDK_MEDIA.has(type)) speak(socket.session, 'sdk');
      return conn.request(type, (frame as { payload: unknown }).payload as never);
    });
  }
  // Seed 000's dialect: answered by frames of their own (an answer, an offer), never by a response.
  for (const type of Object.keys(SdpMessageSchemas) as Array<keyof typeof SdpMessageSchemas>) {
    endpoint.request(type, Type.Object({ id: Type.Optional(Type.Unknown()), payload: SdpMessageSchemas[type] }), async (socket, frame) => {
      const { session } = socket;
      speak(session, 'sdp');
      const payload = (frame as { payload: SdpMessagePayload<typeof type> }).payload;
      if (type === 'offer') await session.sdp!.offer((payload as SdpMessagePayload<'offer'>).sdp);
      else if (type === 'answer') await session.sdp!.answer((payload as SdpMessagePayload<'answer'>).sdp);
      // ice_candidate: the server is ICE-lite and learns the client's address from its checks.
      return NO_REPLY;
    });
  }
  return endpoint;
}
