import type { Static, TSchema } from '@sinclair/typebox';
import type { Registry } from 'prom-client';
import type { Uws } from '../http/uws.ts';
import { AppError, toAppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { compileFrame, firstError, nestsDeeperThan, type FrameCheck } from './frames.ts';
import { createSocketMetrics, type SocketMetrics } from './metrics.ts';
import { TokenBucket } from './token-bucket.ts';
import { TransportCloseCode, type RequestId, type Socket, type SocketDeclaration } from './types.ts';

const DEFAULT_FRAME_LIMIT = 1024 * 1024;
const DEFAULT_MAX_BUFFERED = 4 * 1024 * 1024;
const DEFAULT_MAX_DEPTH = 32;
const DEFAULT_IDLE_TIMEOUT_SECONDS = 60;
/** Frames sent before the token is checked wait for it; a client sending more than this is flooding. */
const MAX_EARLY_FRAMES = 32;

/** A client frame as received (copied out of uWS's buffer), handled once the socket is authenticated. */
type Inbound = { kind: 'text'; text: string } | { kind: 'binary' } | { kind: 'oversized'; bytes: number };

interface Route<S> {
  check: FrameCheck;
  handler: (socket: Socket<S>, payload: never) => unknown;
}

/** uWS's user data for one connection. */
interface Connection<S> {
  ws: Uws.WebSocket<Connection<S>> | null;
  /** The query string's token, until `open` hands it to authenticate. */
  token: string;
  ip: string;
  phase: 'authenticating' | 'open' | 'closed';
  early: Inbound[];
  bucket: TokenBucket;
  /** Set once authenticated. */
  socket: Socket<S> | null;
}

export interface EndpointDeps {
  logger: Logger;
  registry?: Registry;
}

/**
 * Serves one socket kind (a SocketDeclaration) on a uWS app: the token check (refused: accepted,
 * then closed with the declaration's code), the frame size limit, the token-bucket rate limit,
 * schema validation of every frame, AppError → error frame, backpressure (1013) and metrics.
 * Requests are registered with `request(name, schema, handler)`; schemas are compiled once.
 */
export class SocketEndpoint<S> {
  readonly #declaration: SocketDeclaration<S>;
  readonly #logger: Logger;
  readonly #metrics: SocketMetrics;
  readonly #envelope: FrameCheck;
  readonly #routes = new Map<string, Route<S>>();
  readonly #connections = new Set<Connection<S>>();
  /** Close codes the server itself used: the only non-standard codes metrics label by value. */
  readonly #serverCodes = new Set<number>();
  readonly #maxBuffered: number;
  readonly #maxDepth: number;

  constructor(app: Uws.TemplatedApp, declaration: SocketDeclaration<S>, deps: EndpointDeps) {
    this.#declaration = declaration;
    this.#logger = deps.logger.child({ component: 'ws', socket: declaration.name });
    this.#metrics = createSocketMetrics(deps.registry, declaration.name, (request) => this.#routes.has(request), this.#serverCodes, declaration.legacyMetricsPrefix);
    this.#envelope = compileFrame(declaration.protocol.envelope);
    const { limits } = declaration;
    this.#maxBuffered = limits.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
    this.#maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
    const behavior: Uws.WebSocketBehavior<Connection<S>> = {
      maxPayloadLength: limits.maxFrameBytes ?? DEFAULT_FRAME_LIMIT,
      // Above our own limit, so a send is never dropped silently: send() sees the excess and closes with 1013.
      maxBackpressure: this.#maxBuffered * 2,
      idleTimeout: limits.idleTimeoutSeconds ?? DEFAULT_IDLE_TIMEOUT_SECONDS,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => this.#upgrade(res, req, context),
      open: (ws) => this.#opened(ws),
      message: (ws, message, isBinary) => this.#received(ws, message, isBinary),
      close: (ws, code) => this.#closed(ws, code),
    };
    for (const path of declaration.paths) {
      app.ws<Connection<S>>(path, behavior);
      // uWS passes plain GETs on (the ws route yields them): say what the path is rather than a bare 404.
      app.get(path, (res) => {
        res.cork(() => {
          res.writeStatus('426 Upgrade Required').writeHeader('Upgrade', 'websocket').writeHeader('Content-Type', 'application/json; charset=utf-8');
          res.end(JSON.stringify({ error: { code: 'invalid_state', message: `${path} is a WebSocket: connect with ws(s)://…${path}?token=<${declaration.tokenName}>` } }));
        });
      });
    }
  }

  /** Registers a request: frames naming `name` whose payload passes `schema` reach `handler`; what it returns (or throws) is the answer. */
  request<T extends TSchema>(name: string, schema: T, handler: (socket: Socket<S>, payload: Static<T>) => unknown): this {
    if (this.#routes.has(name)) throw new Error(`${this.#declaration.name} socket: request ${name} registered twice`);
    this.#routes.set(name, { check: compileFrame(schema), handler: handler as Route<S>['handler'] });
    return this;
  }

  /** The authenticated sockets that are open now. */
  get sockets(): Socket<S>[] {
    return [...this.#connections].flatMap((conn) => (conn.phase === 'open' && conn.socket ? [conn.socket] : []));
  }

  /** Closes every socket of this kind (graceful shutdown). */
  closeAll(code: number, reason: string): void {
    for (const conn of [...this.#connections]) this.#close(conn, code, reason);
  }

  /**
   * Upgrades at once, before any await, and checks the token after `open`. An upgrade done later
   * (res.cork(() => res.upgrade(…)) after an await) could be closed by uWS right after `open`
   * (1006): docs/known-issues.md, "A reconnecting socket could be dropped right after its upgrade".
   */
  #upgrade(res: Uws.HttpResponse, req: Uws.HttpRequest, context: Uws.us_socket_context_t): void {
    try {
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const token = new URLSearchParams(req.getQuery() ?? '').get('token') ?? '';
      const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
      const { messagesPerSecond: rate, burst } = this.#declaration.limits;
      const conn: Connection<S> = { ws: null, token, ip, phase: 'authenticating', early: [], bucket: new TokenBucket(rate, burst ?? rate * 2), socket: null };
      res.upgrade(conn, key, protocol, extensions, context);
    } catch (error) {
      this.#logger.warn({ err: error }, 'WebSocket upgrade failed');
      try {
        res.close();
      } catch {
        /* uWS already let go of the response */
      }
    }
  }

  #opened(ws: Uws.WebSocket<Connection<S>>): void {
    const conn = ws.getUserData();
    conn.ws = ws;
    this.#connections.add(conn);
    this.#metrics.opened();
    const token = conn.token;
    conn.token = '';
    let authenticated: Promise<S>;
    try {
      authenticated = Promise.resolve(this.#declaration.authenticate(token, conn.ip));
    } catch (error) {
      authenticated = Promise.reject(error);
    }
    authenticated
      .then(
        (session) => this.#authenticated(conn, session),
        (error: unknown) => this.#refuse(conn, error),
      )
      .catch((error: unknown) => this.#logger.error({ err: error }, 'setting up a socket failed'));
  }

  #authenticated(conn: Connection<S>, session: S): void {
    if (conn.phase !== 'authenticating') return; // the client left while its token was checked
    conn.phase = 'open';
    const socket = this.#socketFor(conn, session);
    conn.socket = socket;
    try {
      this.#declaration.opened?.(socket);
    } catch (error) {
      this.#logger.error({ err: error }, 'opening a socket failed');
      this.#sendError(conn, undefined, error);
      this.#close(conn, TransportCloseCode.internalError, 'internal error');
      return;
    }
    for (const inbound of conn.early.splice(0)) {
      if (conn.phase !== 'open') break;
      this.#dispatch(conn, inbound);
    }
  }

  #refuse(conn: Connection<S>, error: unknown): void {
    if (toAppError(error).code === 'internal_error') this.#logger.error({ err: error }, 'checking a socket token failed');
    if (conn.phase !== 'authenticating') return;
    const refusal = this.#declaration.refusal(error);
    this.#metrics.error('unauthorized');
    this.#close(conn, refusal.code, refusal.reason);
  }

  #received(ws: Uws.WebSocket<Connection<S>>, message: ArrayBuffer, isBinary: boolean): void {
    const conn = ws.getUserData();
    try {
      if (conn.phase === 'closed') return;
      const { limits } = this.#declaration;
      if (!conn.bucket.take()) {
        this.#metrics.error('rate_limited');
        this.#logger.info({ ip: conn.ip }, 'client flooded; closing it');
        this.#close(conn, limits.floodCloseCode, `more than ${limits.messagesPerSecond} messages per second`);
        return;
      }
      const inbound: Inbound = isBinary
        ? { kind: 'binary' }
        : message.byteLength > limits.maxMessageBytes
          ? { kind: 'oversized', bytes: message.byteLength }
          : { kind: 'text', text: Buffer.from(message).toString('utf8') }; // a copy: uWS reuses the buffer after return
      if (conn.phase === 'authenticating') {
        if (conn.early.length >= MAX_EARLY_FRAMES) {
          this.#metrics.error('rate_limited');
          this.#close(conn, limits.floodCloseCode, `more than ${MAX_EARLY_FRAMES} messages before the token was checked`);
          return;
        }
        conn.early.push(inbound);
        return;
      }
      this.#dispatch(conn, inbound);
    } catch (error) {
      this.#logger.warn({ err: error }, 'handling a client frame threw');
      this.#sendError(conn, undefined, error);
    }
  }

  /** One client frame: parse, envelope, request name, depth, payload schema, then the handler. */
  #dispatch(conn: Connection<S>, inbound: Inbound): void {
    const { protocol, limits } = this.#declaration;
    if (inbound.kind !== 'text') {
      this.#metrics.message(undefined);
      const error =
        inbound.kind === 'binary'
          ? new AppError('validation_failed', 'Binary frames are not accepted: send JSON text')
          : new AppError('payload_too_large', `Messages are limited to ${limits.maxMessageBytes} bytes (got ${inbound.bytes})`);
      this.#sendError(conn, undefined, error);
      return;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(inbound.text);
    } catch {
      this.#metrics.message(undefined);
      this.#sendError(conn, undefined, new AppError('validation_failed', 'Malformed JSON'));
      return;
    }
    const name = protocol.requestName(frame);
    this.#metrics.message(name);
    const id = protocol.requestId(frame);
    if (!this.#envelope.Check(frame)) {
      this.#sendError(conn, id, new AppError('validation_failed', firstError(this.#envelope, frame, 'frame')));
      return;
    }
    const route = name === undefined ? undefined : this.#routes.get(name);
    if (!route) {
      this.#sendError(conn, id, protocol.unknownRequest(name, [...this.#routes.keys()]));
      return;
    }
    const payload = protocol.payload(frame);
    if (nestsDeeperThan(payload, this.#maxDepth)) {
      this.#sendError(conn, id, new AppError('validation_failed', `payload nests deeper than ${this.#maxDepth} levels`));
      return;
    }
    if (!route.check.Check(payload)) {
      this.#sendError(conn, id, new AppError('validation_failed', firstError(route.check, payload, `${name} payload`)));
      return;
    }
    let answered: Promise<unknown>;
    try {
      answered = Promise.resolve(route.handler(conn.socket!, payload as never));
    } catch (error) {
      answered = Promise.reject(error);
    }
    answered.then(
      (result) => {
        const answer = protocol.reply(id, result);
        if (answer !== null) this.#sendText(conn, JSON.stringify(answer));
      },
      (error: unknown) => {
        const appError = toAppError(error);
        if (appError.code === 'internal_error') this.#logger.error({ err: error, request: name }, 'socket request failed unexpectedly');
        else this.#logger.debug({ code: appError.code, request: name }, 'socket request refused');
        this.#sendError(conn, id, appError);
      },
    );
  }

  #socketFor(conn: Connection<S>, session: S): Socket<S> {
    return {
      session,
      ip: conn.ip,
      get isOpen() {
        return conn.phase === 'open';
      },
      send: (frame) => this.#sendText(conn, JSON.stringify(frame)),
      sendText: (text) => this.#sendText(conn, text),
      sendError: (error, id) => this.#sendError(conn, id, error),
      close: (code, reason) => this.#close(conn, code, reason),
    };
  }

  #sendError(conn: Connection<S>, id: RequestId | undefined, error: unknown): void {
    const appError = toAppError(error);
    this.#metrics.error(appError.code);
    this.#sendText(conn, JSON.stringify(this.#declaration.protocol.error(id, appError)));
  }

  #sendText(conn: Connection<S>, text: string): void {
    const ws = conn.ws;
    if (!ws || conn.phase === 'closed') return;
    let status = 0;
    // Sends after an await are outside uWS's own cork: corking keeps it one syscall per frame.
    ws.cork(() => {
      status = ws.send(text, false);
    });
    if (status === 2 || ws.getBufferedAmount() > this.#maxBuffered) {
      this.#logger.warn({ ip: conn.ip }, 'client does not read its messages; closing it');
      this.#close(conn, TransportCloseCode.slowConsumer, 'slow consumer: too many unread messages');
    }
  }

  #close(conn: Connection<S>, code: number, reason: string): void {
    const ws = conn.ws;
    if (!ws || conn.phase === 'closed') return;
    conn.phase = 'closed'; // no more sends: uWS invalidates the socket inside end()
    conn.ws = null;
    this.#serverCodes.add(code);
    try {
      ws.end(code, reason.slice(0, 120));
    } catch (error) {
      this.#logger.debug({ err: error }, 'closing a socket failed');
    }
  }

  /** uWS's close event, whoever closed: the socket is gone once this returns. */
  #closed(ws: Uws.WebSocket<Connection<S>>, code: number): void {
    const conn = ws.getUserData();
    conn.phase = 'closed';
    conn.ws = null;
    conn.early = [];
    this.#connections.delete(conn);
    this.#metrics.closed(code);
    if (!conn.socket) return;
    try {
      this.#declaration.closed?.(conn.socket);
    } catch (error) {
      this.#logger.warn({ err: error }, 'detaching a closed socket failed');
    }
  }
}
