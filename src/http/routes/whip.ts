import { Type } from '@sinclair/typebox';
import type { IngressKind, IngressOptions, IngressService } from '../../calls/ingress/index.ts';
import { AppError } from '../../shared/errors.ts';
import { Strict, Ulid } from '../../shared/schema.ts';
import { defineRoute, type AnyRoute, type HttpResult } from '../types.ts';

/**
 * CORS on every answer of the WHIP/WHEP routes, errors included: browsers on other origins publish
 * and play with a bearer (no cookies), and must read Location from the POST's answer.
 */
export const INGRESS_CORS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'POST, DELETE, PATCH, OPTIONS',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, If-Match',
  'Access-Control-Expose-Headers': 'Location, ETag, Link, Accept-Post, Allow',
  'Access-Control-Max-Age': '86400',
};

const SDP_TYPE = /^application\/sdp\s*(;|$)/i;
const BEARER = /^Bearer\s+(\S+)$/i;
const SIGNALING_TOKEN = /^st_[A-Za-z0-9_-]{43}$/;

/** The signaling token from `Authorization: Bearer st_…`; 401 when there is none or it is not one. */
export function signalingBearer(headers: Record<string, string>): string {
  const authorization = headers.authorization;
  if (authorization === undefined) throw new AppError('unauthorized', 'Missing credentials: send Authorization: Bearer <signaling_token>');
  const token = BEARER.exec(authorization)?.[1];
  if (!token || !SIGNALING_TOKEN.test(token)) throw new AppError('unauthorized', 'Authorization must be "Bearer <signaling_token>" (st_…)');
  return token;
}

function requireSdp(headers: Record<string, string>): void {
  const type = headers['content-type'];
  if (!type || !SDP_TYPE.test(type)) throw new AppError('unsupported_media_type', `Content-Type must be application/sdp (got ${type ? JSON.stringify(type) : 'none'})`);
}

const Errors = {
  400: { description: 'validation_failed: the SDP cannot be used (details name the m-line)' },
  401: { description: 'unauthorized: no signaling token, or an unknown, expired or used one' },
  403: { description: 'forbidden: the token is for another call' },
  404: { description: 'not_found: no such call' },
  409: { description: 'call_ended: the call has ended' },
  415: { description: 'unsupported_media_type: the body is not application/sdp' },
} as const;

/**
 * The routes of one kind (RFC 9725 for WHIP; WHEP likewise): POST an offer at the call's endpoint,
 * DELETE the Location it answered, PATCH answers 405, OPTIONS answers CORS preflight.
 */
export function ingressRoutes(kind: IngressKind, ingress: IngressService, describe: { publishes: string; query?: boolean }): AnyRoute[] {
  const endpoint = `/v1/calls/{id}/${kind}`;
  const location = `${endpoint}/{session}`;
  const CallParams = Strict({ id: Ulid });
  const SessionParams = Strict({ id: Ulid, session: Ulid });
  const tags = [kind];
  const preflight = (path: string, allow: string): AnyRoute =>
    defineRoute({
      method: 'options', path, summary: `CORS preflight (${kind.toUpperCase()})`, tags, auth: 'none', headers: INGRESS_CORS,
      params: path === endpoint ? CallParams : SessionParams,
      responses: { 204: { description: 'Allowed methods and headers' } },
      handler: async () => ({ status: 204, headers: { Allow: allow, ...(path === endpoint ? { 'Accept-Post': 'application/sdp' } : {}) } }),
    });
  const post = defineRoute({
    method: 'post', path: endpoint, summary: describe.publishes, tags, auth: 'signaling', rawBody: true, rawBodyType: 'application/sdp', headers: INGRESS_CORS,
    params: CallParams,
    ...(describe.query ? { query: Strict({ participant: Type.Optional(Ulid) }) } : {}),
    responses: { 201: { description: 'Created: the SDP answer (application/sdp), Location names the session' }, ...Errors },
    handler: async ({ params, query, headers, rawBody }): Promise<HttpResult> => {
      const token = signalingBearer(headers);
      requireSdp(headers);
      const options: IngressOptions = (query as { participant?: string } | undefined)?.participant ? { participant: (query as { participant: string }).participant } : {};
      const { sessionId, answer } = await ingress.open(kind, params.id, token, (rawBody ?? Buffer.alloc(0)).toString('utf8'), options);
      return { status: 201, headers: { Location: `/v1/calls/${params.id}/${kind}/${sessionId}` }, text: { contentType: 'application/sdp', content: answer } };
    },
  });
  const remove = defineRoute({
    method: 'delete', path: location, summary: `End the ${kind.toUpperCase()} session (bearer: the token its POST used)`, tags, auth: 'signaling', headers: INGRESS_CORS,
    params: SessionParams,
    responses: { 200: { description: 'Ended' }, 401: Errors[401], 404: { description: 'not_found: no such session (ended already)' } },
    handler: async ({ params, headers }) => {
      ingress.end(kind, params.id, params.session, signalingBearer(headers));
      return { status: 200, body: {} };
    },
  });
  const patch = defineRoute({
    method: 'patch', path: location, summary: 'Trickle ICE and ICE restart are not supported (the server is ICE-lite; candidates are in the answer)', tags, auth: 'signaling', rawBody: true, headers: INGRESS_CORS,
    params: SessionParams,
    responses: { 405: { description: 'method_not_allowed' }, 401: Errors[401], 404: { description: 'not_found: no such session' } },
    handler: async ({ params, headers }) => {
      ingress.sessions.find(kind, params.id, params.session, signalingBearer(headers));
      throw new AppError('method_not_allowed', 'PATCH is not supported: the answer holds every server candidate; to recover, DELETE and POST a new offer', undefined, { Allow: 'DELETE, OPTIONS' });
    },
  });
  return [preflight(endpoint, 'POST, OPTIONS'), post, preflight(location, 'DELETE, PATCH, OPTIONS'), remove, patch];
}

/** WHIP publish (docs/whip-whep.md). */
export function whipRoutes(deps: { ingress: IngressService }): AnyRoute[] {
  return ingressRoutes('whip', deps.ingress, { publishes: 'WHIP: publish sendonly audio/video from an SDP offer (bearer: a signaling token)' });
}
