import type { TSchema, Static } from '@sinclair/typebox';
import type { Logger } from '../shared/logger.ts';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete' | 'options';

import type { Principal } from '../identity/principal.ts';

export type { Principal };

/**
 * none: public; user: any valid token or the API key; admin: the API key or an admin token;
 * signaling: the handler reads `Authorization: Bearer <signaling token>` itself (WHIP/WHEP), so the
 * server does not treat that bearer as an access token.
 */
export type AuthLevel = 'none' | 'user' | 'admin' | 'signaling';

export interface RequestContext<B = unknown, Q = unknown, P = unknown> {
  method: HttpMethod;
  path: string;
  params: P;
  query: Q;
  body: B;
  headers: Record<string, string>;
  ip: string;
  requestId: string;
  principal: Principal | null;
  logger: Logger;
  /** Base URL the client used (public_url, or scheme + Host). */
  baseUrl: string;
  /** The request body exactly as received; set only for routes with `rawBody: true`. */
  rawBody?: Buffer;
  /**
   * A POST with X-Idempotency-Key: the key, and when the key was first received (earlier than now
   * for the retry of a request that a crash cut off).
   */
  idempotency?: { key: string; firstReceivedAt: Date };
}

export interface HttpResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Raw text bodies (metrics, HTML); body is JSON-encoded otherwise. */
  text?: { contentType: string; content: string | Buffer };
}

export interface RouteResponse {
  description: string;
  schema?: TSchema;
}

export type RateLimitRuleName = 'token' | 'guest' | 'initiate';

export interface RouteDefinition<BS extends TSchema | undefined = TSchema | undefined, QS extends TSchema | undefined = TSchema | undefined, PS extends TSchema | undefined = TSchema | undefined> {
  method: HttpMethod;
  /** OpenAPI-style path: /v1/users/{id} */
  path: string;
  summary: string;
  tags: string[];
  auth: AuthLevel;
  body?: BS;
  query?: QS;
  params?: PS;
  responses: Record<number, RouteResponse>;
  rateLimit?: RateLimitRuleName;
  /**
   * The handler gets the body's bytes untouched (ctx.rawBody) instead of parsed, validated JSON — for
   * payloads verified against a signature of those exact bytes (webhooks). Excludes `body`.
   */
  rawBody?: boolean;
  /** The content type of a rawBody route's request, for OpenAPI (e.g. application/sdp). */
  rawBodyType?: string;
  /** Headers sent on every answer of this route, errors included (CORS for WHIP/WHEP). */
  headers?: Record<string, string>;
  handler: (
    ctx: RequestContext<BS extends TSchema ? Static<BS> : undefined, QS extends TSchema ? Static<QS> : Record<string, never>, PS extends TSchema ? Static<PS> : Record<string, never>>,
  ) => Promise<HttpResult>;
}

/**
 * A route of any schema types, for heterogeneous route lists. Each route is checked against its own
 * schemas where it is defined (defineRoute); a list only needs the common shape.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRoute = RouteDefinition<any, any, any>;

/** Helper that keeps the handler's ctx typed from the route's own schemas. */
export function defineRoute<BS extends TSchema | undefined = undefined, QS extends TSchema | undefined = undefined, PS extends TSchema | undefined = undefined>(
  route: RouteDefinition<BS, QS, PS>,
): RouteDefinition<BS, QS, PS> {
  return route;
}

export function ok(body: unknown, status = 200, headers?: Record<string, string>): HttpResult {
  return { status, body, ...(headers ? { headers } : {}) };
}
