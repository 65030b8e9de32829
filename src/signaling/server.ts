import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import type { Registry } from 'prom-client';
import type { PeerConnection, ParticipantIdentity, PeerSink } from '../sfu/types.ts';
import type { CallsConfig } from '../config/schema.ts';
import type { Uws } from '../http/uws.ts';
import {
  ClientFrame,
  MAX_SIGNAL_MESSAGE_BYTES,
  RequestSchemas,
  SignalCloseCode,
  type NotificationPayloads,
  type NotificationType,
  type RequestType,
} from '../protocol/signaling.ts';
import { AppError, toAppError, type ErrorCode } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { createSignalingMetrics, noSignalingMetrics, type SignalingMetrics } from './metrics.ts';
import { TokenBucket } from './token-bucket.ts';

/** Close codes of this transport beyond the protocol's SignalCloseCode (standard WebSocket codes). */
export const TransportCloseCode = {
  /** A frame above uWS's hard limit (SIGNAL_FRAME_HARD_LIMIT): uWS closes the connection itself. */
  messageTooBig: 1009,
  internalError: 1011,
  /** The client does not read what the server sends (send buffer above MAX_BUFFERED_BYTES): reconnect. */
  slowConsumer: 1013,
} as const;

/** The socket paths (SPEC §7: /v1/signal, and /ws for seed 000's clients). */
export const SIGNALING_PATHS = ['/v1/signal', '/ws'] as const;
/**
 * uWS closes a connection (1009) on a frame above maxPayloadLength without telling the app, so its
 * limit is set well above the protocol's 64 KiB: frames in between get a payload_too_large error
 * and the socket stays usable, as SPEC §7 asks.
 */
export const SIGNAL_FRAME_HARD_LIMIT = 1024 * 1024;
/** A client whose unread server messages exceed this is closed rather than buffered without bound. */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** mediasoup-client's payloads nest about 6 levels deep; far deeper is junk (and costly to walk). */
const MAX_PAYLOAD_DEPTH = 32;
const IDLE_TIMEOUT_SECONDS = 60;

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

interface SocketState {
  identity: ParticipantIdentity | null;
  /** Set when the token was refused: the socket is opened only to be closed with this code. */
  refusal: { code: number; reason: string } | null;
  ip: string;
  ws: Uws.WebSocket<SocketState> | null;
  open: boolean;
  conn: PeerConnection | null;
  bucket: TokenBucket;
}

type RequestId = string | number;

const frameCheck = TypeCompiler.Compile(ClientFrame);
const payloadChecks = Object.fromEntries(
  Object.entries(RequestSchemas).map(([type, schema]) => [type, TypeCompiler.Compile(schema as TSchema)]),
) as Record<RequestType, TypeCheck<TSchema>>;

function firstError(check: TypeCheck<TSchema>, value: unknown, what: string): string {
  const error = check.Errors(value).First();
  return error ? `${what}${error.path || ''}: ${error.message}` : `${what} is invalid`;
}

/** Depth of nested objects/arrays, walked iteratively so junk cannot blow the stack. */
function tooDeep(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > max) return true;
    if (node !== null && typeof node === 'object') for (const child of Object.values(node)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

function idOf(frame: unknown): RequestId | undefined {
  if (frame === null || typeof frame !== 'object' || !('id' in frame)) return undefined;
  const id = (frame as { id: unknown }).id;
  if (typeof id === 'string' && id.length >= 1 && id.length <= 64) return id;
  if (typeof id === 'number' && Number.isInteger(id)) return id;
  return undefined;
}

/** Refusals at upgrade time map to the protocol's close codes, so a browser (which cannot read an HTTP 401) learns why. */
function refusalFor(error: unknown): { code: number; reason: string } {
  const appError = toAppError(error);
  if (appError.code === 'forbidden') return { code: SignalCloseCode.forbidden, reason: 'not a participant of this call' };
  if (appError.code === 'call_ended') return { code: SignalCloseCode.callEnded, reason: 'the call has ended' };
  if (appError.code === 'unauthorized' || appError.code === 'not_found') return { code: SignalCloseCode.unauthorized, reason: 'invalid, expired or used token' };
  return { code: TransportCloseCode.internalError, reason: 'could not check the token' };
}

/**
 * Serves the SFU signaling WebSocket (SPEC §7) on `app`. Invalid tokens complete the upgrade and
 * are closed at once with 4001 and a reason: browsers cannot read the status of a refused upgrade.
 */
export function attachSignaling(app: Uws.TemplatedApp, deps: SignalingDeps): void {
  const logger = deps.logger.child({ component: 'signaling' });
  const metrics: SignalingMetrics = deps.registry ? createSignalingMetrics(deps.registry) : noSignalingMetrics;
  const rate = deps.calls.signaling_messages_per_second;

  const close = (state: SocketState, code: number, reason: string): void => {
    if (!state.open || !state.ws) return;
    state.open = false; // no more sends: uWS invalidates the socket inside end()
    try {
      state.ws.end(code, reason.slice(0, 120));
    } catch (error) {
      logger.debug({ err: error }, 'closing a signaling socket failed');
    }
  };

  const send = (state: SocketState, frame: object): void => {
    const ws = state.ws;
    if (!state.open || !ws) return;
    let status = 0;
    // Sends after an await are outside uWS's own cork: corking keeps it one syscall per frame batch.
    ws.cork(() => {
      status = ws.send(JSON.stringify(frame), false);
    });
    if (status === 2 || ws.getBufferedAmount() > MAX_BUFFERED_BYTES) {
      logger.warn({ participantId: state.identity?.participantId, ip: state.ip }, 'signaling client does not read its messages; closing it');
      close(state, TransportCloseCode.slowConsumer, 'slow consumer: too many unread messages');
    }
  };

  const sendError = (state: SocketState, id: RequestId | undefined, code: ErrorCode, message: string): void => {
    metrics.error(code);
    send(state, id === undefined ? { type: 'error', payload: { code, message } } : { type: 'error', id, payload: { code, message } });
  };

  const sinkFor = (state: SocketState): PeerSink => ({
    notify<T extends NotificationType>(type: T, payload: NotificationPayloads[T]): void {
      send(state, { type, payload });
    },
    close(code: number, reason: string): void {
      close(state, code, reason);
    },
  });

  const onText = (state: SocketState, text: string): void => {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      metrics.message('');
      sendError(state, undefined, 'validation_failed', 'Malformed JSON');
      return;
    }
    const claimed = (frame as { type?: unknown } | null)?.type;
    metrics.message(typeof claimed === 'string' ? claimed : '');
    const id = idOf(frame);
    if (!frameCheck.Check(frame)) {
      sendError(state, id, 'validation_failed', firstError(frameCheck, frame, 'frame'));
      return;
    }
    const { type } = frame;
    if (!Object.hasOwn(RequestSchemas, type)) {
      sendError(state, id, 'validation_failed', `Unknown request type ${JSON.stringify(type)}; known: ${Object.keys(RequestSchemas).join(', ')}`);
      return;
    }
    const requestType = type as RequestType;
    const payload = frame.payload ?? {};
    if (tooDeep(payload, MAX_PAYLOAD_DEPTH)) {
      sendError(state, id, 'validation_failed', `payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels`);
      return;
    }
    if (!payloadChecks[requestType].Check(payload)) {
      sendError(state, id, 'validation_failed', firstError(payloadChecks[requestType], payload, `${type} payload`));
      return;
    }
    const conn = state.conn;
    if (!conn) {
      sendError(state, id, 'invalid_state', `${type} received before welcome: wait for the welcome message`);
      return;
    }
    conn.request(requestType, payload as never).then(
      (result) => send(state, { type: 'response', id: frame.id, payload: result }),
      (error: unknown) => {
        const appError = toAppError(error);
        logger.debug({ code: appError.code, type, participantId: conn.participantId }, 'signaling request refused');
        sendError(state, frame.id, appError.code, appError.message);
      },
    );
  };

  const behavior: Uws.WebSocketBehavior<SocketState> = {
    maxPayloadLength: SIGNAL_FRAME_HARD_LIMIT,
    maxBackpressure: MAX_BUFFERED_BYTES * 2,
    idleTimeout: IDLE_TIMEOUT_SECONDS,
    sendPingsAutomatically: true,

    upgrade: (res, req, context) => {
      let aborted = false;
      try {
        // Everything from req is read now: uWS invalidates it when this callback returns.
        const key = req.getHeader('sec-websocket-key');
        const protocol = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        const token = new URLSearchParams(req.getQuery() ?? '').get('token') ?? '';
        const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
        res.onAborted(() => {
          aborted = true;
        });
        Promise.resolve()
          .then(() => (token ? deps.resolveToken(token) : Promise.reject(new AppError('unauthorized', 'missing token'))))
          .then(
            (identity) => (identity ? { identity, refusal: null } : { identity: null, refusal: refusalFor(new AppError('unauthorized', 'bad token')) }),
            (error: unknown) => {
              if (toAppError(error).code === 'internal_error') logger.error({ err: error }, 'resolving a signaling token failed');
              return { identity: null, refusal: refusalFor(error) };
            },
          )
          .then(({ identity, refusal }) => {
            if (aborted) return;
            const state: SocketState = { identity, refusal, ip, ws: null, open: false, conn: null, bucket: new TokenBucket(rate, rate * 2) };
            res.cork(() => res.upgrade(state, key, protocol, extensions, context));
          })
          .catch((error: unknown) => logger.warn({ err: error }, 'signaling upgrade failed'));
      } catch (error) {
        logger.warn({ err: error }, 'signaling upgrade handler threw');
        if (!aborted) res.close();
      }
    },

    open: (ws) => {
      const state = ws.getUserData();
      state.ws = ws;
      state.open = true;
      metrics.socketOpened();
      if (state.refusal || !state.identity) {
        const refusal = state.refusal ?? refusalFor(null);
        metrics.error('unauthorized');
        close(state, refusal.code, refusal.reason);
        return;
      }
      const identity = state.identity;
      let joined: Promise<PeerConnection>;
      try {
        joined = deps.sfu.join(identity, sinkFor(state));
      } catch (error) {
        joined = Promise.reject(error);
      }
      joined.then(
        (conn) => {
          if (state.open) state.conn = conn;
          else conn.close(); // the socket went away while joining
        },
        (error: unknown) => {
          const appError = toAppError(error);
          if (appError.code === 'internal_error') logger.error({ err: error, callId: identity.callId }, 'joining the SFU failed');
          sendError(state, undefined, appError.code, appError.message);
          const code = appError.code === 'call_ended' ? SignalCloseCode.callEnded : appError.code === 'media_unavailable' ? SignalCloseCode.reconnect : TransportCloseCode.internalError;
          close(state, code, appError.message);
        },
      );
    },

    message: (ws, message, isBinary) => {
      const state = ws.getUserData();
      try {
        if (!state.open) return;
        if (!state.bucket.take()) {
          metrics.error('rate_limited');
          logger.info({ participantId: state.identity?.participantId, ip: state.ip }, 'signaling client flooded; closing it');
          close(state, SignalCloseCode.flooding, `more than ${rate} messages per second`);
          return;
        }
        if (isBinary) {
          metrics.message('');
          sendError(state, undefined, 'validation_failed', 'Binary frames are not accepted: send JSON text');
          return;
        }
        if (message.byteLength > MAX_SIGNAL_MESSAGE_BYTES) {
          metrics.message('');
          sendError(state, undefined, 'payload_too_large', `Messages are limited to ${MAX_SIGNAL_MESSAGE_BYTES} bytes (got ${message.byteLength})`);
          return;
        }
        onText(state, Buffer.from(message).toString('utf8')); // copies: uWS reuses the buffer after return
      } catch (error) {
        logger.warn({ err: error, participantId: state.identity?.participantId }, 'signaling message handling threw');
        sendError(state, undefined, 'internal_error', 'Internal server error');
      }
    },

    close: (ws) => {
      const state = ws.getUserData();
      state.open = false;
      state.ws = null;
      metrics.socketClosed();
      try {
        state.conn?.close();
      } catch (error) {
        logger.warn({ err: error }, 'detaching a closed signaling socket failed');
      }
      state.conn = null;
    },
  };

  for (const path of SIGNALING_PATHS) {
    app.ws<SocketState>(path, behavior);
    // uWS passes plain GETs on (the ws route yields them): say what the path is rather than a bare 404.
    app.get(path, (res) => {
      res.cork(() => {
        res.writeStatus('426 Upgrade Required').writeHeader('Upgrade', 'websocket').writeHeader('Content-Type', 'application/json; charset=utf-8');
        res.end(JSON.stringify({ error: { code: 'invalid_state', message: `${path} is a WebSocket: connect with ws(s)://…${path}?token=<signaling_token>` } }));
      });
    });
  }
}
