import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { AppError, toAppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { loadUws, type Uws } from './uws.ts';
import { precompile, validate, validationError } from './validation.ts';
import type { AnyRoute, HttpMethod, HttpResult, Principal, RequestContext, RouteDefinition } from './types.ts';
import type { IdempotencyStore } from './idempotency.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { HttpMetrics } from './metrics.ts';
import { answerAndLinger, lingerCapBytes, LINGER_MS, type LingeringClose, type RawAnswer } from './lingering.ts';

export interface HttpServerDeps {
  logger: Logger;
  maxBodyBytes: number;
  trustProxy: boolean;
  publicUrl: string | null;
  /** Resolves the caller from headers; throws AppError('unauthorized') for a bad credential, null when none was sent. */
  authenticate: (headers: Record<string, string>) => Promise<Principal | null>;
  idempotency?: IdempotencyStore;
  rateLimiter?: RateLimiter;
  metrics?: HttpMetrics;
}

interface CompiledRoute {
  route: RouteDefinition;
  paramNames: string[];
  uwsPattern: string;
}

/** Paths whose requests are logged at debug: probes and scrapes would drown the log. */
const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics']);
const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required',
  403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests', 500: 'Internal Server Error',
  503: 'Service Unavailable',
};
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export class HttpServer {
  readonly app: Uws.TemplatedApp;
  private readonly uws: typeof Uws;
  private readonly routes: CompiledRoute[] = [];
  private listenSocket: Uws.us_listen_socket | null = null;
  private draining = false;
  private inFlight = 0;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(private readonly deps: HttpServerDeps) {
    this.uws = loadUws();
    this.app = this.uws.App();
  }

  get routeDefinitions(): readonly RouteDefinition[] {
    return this.routes.map((r) => r.route);
  }

  add(route: AnyRoute): void {
    const paramNames: string[] = [];
    const uwsPattern = route.path.replace(/\{([a-z_]+)\}/gi, (_m, name: string) => {
      paramNames.push(name);
      return `:${name}`;
    });
    if (route.rawBody && route.body) throw new Error(`${route.method} ${route.path}: a rawBody route has no body schema`);
    precompile(route.body);
    precompile(route.query);
    precompile(route.params);
    const compiled: CompiledRoute = { route: route as RouteDefinition, paramNames, uwsPattern };
    this.routes.push(compiled);
    const register = { get: this.app.get, post: this.app.post, put: this.app.put, patch: this.app.patch, delete: this.app.del, options: this.app.options }[route.method];
    register.call(this.app, uwsPattern, (res, req) => this.handle(compiled, res, req));
  }

  /**
   * A route that handles uWS directly, for streaming bodies (signed storage URLs) and WebSocket
   * upgrades' neighbours. It still counts as in-flight work for graceful shutdown via `track`.
   */
  addRaw(method: 'get' | 'put' | 'head', pattern: string, handler: (res: Uws.HttpResponse, req: Uws.HttpRequest) => void): void {
    const register = { get: this.app.get, put: this.app.put, head: this.app.head }[method];
    register.call(this.app, pattern, handler);
  }

  async listen(host: string, port: number): Promise<number> {
    // Anything no route matched: a JSON 404, never uWS's empty default.
    this.app.any('/*', (res, req) => {
      const method = req.getMethod().toUpperCase();
      const url = req.getUrl();
      res.onAborted(() => undefined);
      this.writeResult(res, { aborted: false }, randomUUID(), errorResult(new AppError('not_found', `No route for ${method} ${url}`)));
    });
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) {
          reject(new Error(`cannot listen on ${host}:${port} (port in use or not permitted)`));
          return;
        }
        this.listenSocket = socket;
        resolve(this.uws.us_socket_local_port(socket as unknown as Uws.us_socket));
      });
    });
  }

  /** Stops accepting connections, then waits (bounded) for requests already running. */
  async close(graceMs = 5000): Promise<void> {
    this.draining = true;
    if (this.listenSocket) {
      this.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
    if (this.inFlight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
    }
  }

  private clientIp(res: Uws.HttpResponse, headers: Record<string, string>): string {
    if (this.deps.trustProxy && headers['x-forwarded-for']) return headers['x-forwarded-for'].split(',')[0]!.trim();
    return Buffer.from(res.getRemoteAddressAsText()).toString();
  }

  private handle(compiled: CompiledRoute, res: Uws.HttpResponse, req: Uws.HttpRequest): void {
    // Everything from req must be read synchronously: uWS invalidates it after this function returns.
    const started = process.hrtime.bigint();
    const headers: Record<string, string> = {};
    req.forEach((key, value) => {
      headers[key] = value;
    });
    const path = req.getUrl();
    const queryString = req.getQuery() ?? '';
    const rawParams = compiled.paramNames.map((_, i) => req.getParameter(i));
    const ip = this.clientIp(res, headers);
    const requestId = /^[\w-]{1,128}$/.test(headers['x-request-id'] ?? '') ? headers['x-request-id']! : randomUUID();
    const state = { aborted: false };
    let lingering: LingeringClose | null = null;
    res.onAborted(() => {
      state.aborted = true;
      lingering?.gone();
    });

    const record = (result: HttpResult): void => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.deps.metrics?.observe(compiled.route.method, compiled.route.path, result.status, seconds);
      const level = (QUIET_PATHS.has(path) && result.status < 400) || this.draining ? 'debug' : result.status >= 500 ? 'error' : 'info';
      this.deps.logger[level]({ requestId, method: compiled.route.method.toUpperCase(), route: compiled.route.path, path, status: result.status, ms: Math.round(seconds * 1000), ip }, 'request');
      this.inFlight -= 1;
      if (this.inFlight === 0) this.idleWaiters.splice(0).forEach((wake) => wake());
    };
    const routeHeaders = compiled.route.headers;
    const withRouteHeaders = <R extends HttpResult>(result: R): R => (routeHeaders ? { ...result, headers: { ...routeHeaders, ...result.headers } } : result);
    const finish = (answer: HttpResult): void => {
      const result = withRouteHeaders(answer);
      this.writeResult(res, state, requestId, result);
      record(result);
    };
    // An over-limit body is answered at once, then drained before the close (see lingering.ts).
    const refuseBody = (): LingeringClose => {
      const result = withRouteHeaders(errorResult(tooLarge(this.deps.maxBodyBytes)));
      state.aborted = true; // a response is written once
      lingering = answerAndLinger(res, this.rawAnswer(requestId, result), { maxBytes: lingerCapBytes(this.deps.maxBodyBytes), maxMs: LINGER_MS });
      record(result);
      return lingering;
    };
    this.inFlight += 1;

    if (this.draining) {
      // Close the connection too, so keep-alive clients move on instead of retrying here.
      finish(errorResult(new AppError('service_unavailable', 'Server is shutting down'), true));
      return;
    }
    const hasBody = compiled.route.method === 'post' || compiled.route.method === 'put' || compiled.route.method === 'patch';
    const declaredLength = Number(headers['content-length'] ?? '0');
    if (declaredLength > this.deps.maxBodyBytes) {
      const drain = refuseBody();
      res.onData((chunk, isLast) => drain.data(chunk, isLast));
      return;
    }
    const run = (body: Buffer | null): void => {
      const rawQuery = Object.fromEntries(new URLSearchParams(queryString));
      this.process(compiled, { headers, path, rawQuery, rawParams, ip, requestId, body }).then(finish, (error: unknown) => {
        const appError = toAppError(error);
        if (appError.code === 'internal_error') this.deps.logger.error({ err: error, requestId, path }, 'unhandled error in route');
        finish(errorResult(appError));
      });
    };
    if (!hasBody) {
      run(null);
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    res.onData((chunk, isLast) => {
      if (lingering) {
        lingering.data(chunk, isLast);
        return;
      }
      received += chunk.byteLength;
      // Without a Content-Length (chunked upload) the limit is only known to be crossed here.
      if (received > this.deps.maxBodyBytes) {
        refuseBody().data(chunk, isLast);
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0))); // uWS reuses the chunk's memory: copy it
      if (isLast) run(Buffer.concat(chunks));
    });
  }

  /** A result as the status line, headers and body of a raw answer (answerAndLinger). */
  private rawAnswer(requestId: string, result: HttpResult): RawAnswer {
    return {
      status: `${result.status} ${STATUS_TEXT[result.status] ?? ''}`.trim(),
      headers: { 'X-Request-Id': requestId, 'Content-Type': 'application/json; charset=utf-8', ...result.headers },
      body: result.body === undefined ? '' : JSON.stringify(result.body),
    };
  }

  private async process(
    compiled: CompiledRoute,
    raw: { headers: Record<string, string>; path: string; rawQuery: Record<string, string>; rawParams: string[]; ip: string; requestId: string; body: Buffer | null },
  ): Promise<HttpResult> {
    const { route } = compiled;
    // A signaling route's bearer is a signaling token, which its handler checks (and consumes).
    const principal = route.auth === 'signaling' ? null : await this.deps.authenticate(raw.headers);
    if (route.auth !== 'none' && route.auth !== 'signaling' && !principal) throw new AppError('unauthorized', 'Missing credentials: send Authorization: Bearer <token> or X-Api-Key');
    if (route.auth === 'admin' && principal && !isAdmin(principal)) throw new AppError('forbidden', 'This endpoint needs the operator API key or an admin token');
    if (route.rateLimit && this.deps.rateLimiter) {
      this.deps.rateLimiter.hit(route.rateLimit, raw.ip, principal?.kind === 'user' ? principal.userId : null);
    }

    const params = this.decodeParams(compiled, raw.rawParams);
    const query = route.query
      ? validate(route.query, raw.rawQuery, 'query')
      : Object.keys(raw.rawQuery).length > 0
        ? (() => {
            throw validationError(Object.keys(raw.rawQuery).map((key) => ({ in: 'query' as const, path: `/${key}`, message: 'Unknown query parameter' })));
          })()
        : {};
    const body = route.rawBody ? undefined : route.body ? validate(route.body, parseJsonBody(raw.body, raw.headers), 'body') : rejectUnexpectedBody(raw.body);

    const context: RequestContext = {
      method: route.method,
      path: raw.path,
      params,
      query,
      body,
      headers: raw.headers,
      ip: raw.ip,
      requestId: raw.requestId,
      principal,
      logger: this.deps.logger.child({ requestId: raw.requestId }),
      baseUrl: this.deps.publicUrl ?? `${raw.headers['x-forwarded-proto'] && this.deps.trustProxy ? raw.headers['x-forwarded-proto'] : 'http'}://${raw.headers.host ?? 'localhost'}`,
      ...(route.rawBody ? { rawBody: raw.body ?? Buffer.alloc(0) } : {}),
    };

    const idempotencyKey = raw.headers['x-idempotency-key'];
    if (route.method !== 'post' || idempotencyKey === undefined || !this.deps.idempotency) return route.handler(context as never);
    if (!IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw validationError([{ in: 'body', path: '/X-Idempotency-Key', message: 'X-Idempotency-Key must be 1-255 printable ASCII characters' }], 'Invalid X-Idempotency-Key header');
    }
    const caller = principal ? (principal.kind === 'api_key' ? 'api_key' : `user:${principal.userId}`) : `ip:${raw.ip}`;
    const store = this.deps.idempotency;
    const begun = await store.begin({ caller, key: idempotencyKey, method: 'POST', path: raw.path, body: route.rawBody ? (raw.body ?? Buffer.alloc(0)).toString('utf8') : body });
    if (begun.kind === 'replay') return { ...begun.result, headers: { ...begun.result.headers, 'Idempotent-Replayed': 'true' } };
    if (begun.retryOfAbandoned) context.logger.info({ key: idempotencyKey }, 'idempotency: retry of a request a crash cut off; it runs again');
    try {
      const result = await route.handler({ ...context, idempotency: { key: idempotencyKey, firstReceivedAt: begun.firstReceivedAt } } as never);
      await store.complete(caller, idempotencyKey, result);
      return result;
    } catch (error) {
      const appError = toAppError(error);
      if (appError.status < 500) await store.complete(caller, idempotencyKey, errorResult(appError));
      else await store.abandon(caller, idempotencyKey);
      throw error;
    }
  }

  private decodeParams(compiled: CompiledRoute, rawParams: string[]): Record<string, unknown> {
    const values: Record<string, string> = {};
    compiled.paramNames.forEach((name, i) => {
      try {
        values[name] = decodeURIComponent(rawParams[i] ?? '');
      } catch {
        throw validationError([{ in: 'params', path: `/${name}`, message: 'Malformed percent-encoding' }]);
      }
    });
    return compiled.route.params ? validate(compiled.route.params, values, 'params') : values;
  }

  /** Writes a JSON result (or error envelope) on a raw route's response. */
  respond(res: Uws.HttpResponse, state: { aborted: boolean }, requestId: string, result: HttpResult & { closeConnection?: boolean }): void {
    this.writeResult(res, state, requestId, result);
  }

  private writeResult(res: Uws.HttpResponse, state: { aborted: boolean }, requestId: string, result: HttpResult & { closeConnection?: boolean }): void {
    if (state.aborted) return;
    state.aborted = true; // a response is written once
    const payload = result.text ? result.text.content : result.body === undefined ? '' : JSON.stringify(result.body);
    const contentType = result.text ? result.text.contentType : 'application/json; charset=utf-8';
    res.cork(() => {
      res.writeStatus(`${result.status} ${STATUS_TEXT[result.status] ?? ''}`.trim());
      res.writeHeader('X-Request-Id', requestId);
      if (result.status !== 204) res.writeHeader('Content-Type', contentType);
      for (const [key, value] of Object.entries(result.headers ?? {})) res.writeHeader(key, value);
      if (result.status === 204) res.endWithoutBody(0, result.closeConnection);
      else res.end(payload, result.closeConnection);
    });
  }
}

function isAdmin(principal: Principal): boolean {
  return principal.kind === 'api_key' || principal.role === 'admin';
}

function tooLarge(limit: number): AppError {
  return new AppError('payload_too_large', `Request body exceeds ${limit} bytes`, { limit_bytes: limit });
}

export function errorResult(error: AppError, closeConnection = false): HttpResult & { closeConnection?: boolean } {
  return { status: error.status, body: error.toBody(), headers: error.headers, closeConnection };
}

function parseJsonBody(body: Buffer | null, headers: Record<string, string>): unknown {
  if (!body || body.length === 0) return {};
  const contentType = headers['content-type'] ?? '';
  if (contentType && !/^application\/([\w.+-]*\+)?json\b/i.test(contentType)) {
    throw validationError([{ in: 'body', path: '/', message: `Content-Type must be application/json (got ${contentType})` }]);
  }
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw validationError([{ in: 'body', path: '/', message: `Malformed JSON: ${(error as Error).message}` }], 'Malformed JSON body');
  }
}

function rejectUnexpectedBody(body: Buffer | null): undefined {
  if (body && body.length > 0 && body.toString('utf8').trim() !== '' && body.toString('utf8').trim() !== '{}') {
    throw validationError([{ in: 'body', path: '/', message: 'This endpoint takes no request body' }]);
  }
  return undefined;
}

export const EmptyObject = Type.Object({}, { additionalProperties: false });
export type { HttpMethod };
