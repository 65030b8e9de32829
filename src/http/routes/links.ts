import { Type } from '@sinclair/typebox';
import { AvailabilitySchema, CreateLinkBody, LinkSchema, PublicLinkSchema, ShortCode, isExhausted, type HostAvailability, type LinkActor, type LinkService } from '../../calls/paid/links.ts';
import type { TokenService } from '../../identity/tokens.ts';
import { UserSchema, toUserDto, type UserService } from '../../identity/users.ts';
import { AppError } from '../../shared/errors.ts';
import { DateTime, ListEnvelope, PageQuery, Strict, Ulid, paginate } from '../../shared/schema.ts';
import { defineRoute, ok, type AnyRoute, type Principal } from '../types.ts';
import { actorOf } from './calls.ts';

/** Guest tokens live this long, or auth.max_token_ttl_seconds when that is shorter. */
export const GUEST_TOKEN_TTL_SECONDS = 3600;

const ShortCodeParams = Strict({ short_code: ShortCode });
const LinkEnvelope = Type.Object({ link: LinkSchema });
const AvailabilityEnvelope = Type.Object({ availability: AvailabilitySchema });

function linkActorOf(principal: Principal | null): LinkActor {
  return { ...actorOf(principal), role: principal?.kind === 'user' ? principal.role : null };
}

/** The user behind a user access token (not the API key, not a guest). */
function requireAccount(principal: Principal | null): string {
  if (!principal || principal.kind !== 'user') throw new AppError('forbidden', 'This endpoint needs a user access token, not the API key');
  if (principal.role === 'guest') throw new AppError('forbidden', 'Guests cannot do this');
  return principal.userId;
}

export function linkRoutes(deps: { links: LinkService; availability: HostAvailability; users: UserService; tokens: TokenService; maxTokenTtlSeconds: number }): AnyRoute[] {
  const { links, availability, users, tokens } = deps;
  const guestTtl = Math.min(GUEST_TOKEN_TTL_SECONDS, deps.maxTokenTtlSeconds);
  return [
    defineRoute({
      method: 'get', path: '/l/{short_code}', summary: 'A link\'s share URL: redirects to the demo page\'s guest view (/?link=<code>)', tags: ['links'], auth: 'none',
      params: ShortCodeParams,
      responses: { 302: { description: 'To the guest view' } },
      handler: async ({ params }) => ({ status: 302, headers: { location: `/?link=${encodeURIComponent(params.short_code)}` } }),
    }),
    defineRoute({
      method: 'post', path: '/v1/links', summary: 'Create a paid call link (hosts; the API key names the host with host_id)', tags: ['links'], auth: 'user',
      body: CreateLinkBody,
      responses: { 201: { description: 'Created', schema: LinkEnvelope } },
      handler: async ({ principal, body, baseUrl }) => ok({ link: await links.create(linkActorOf(principal), body, baseUrl) }, 201),
    }),
    defineRoute({
      method: 'get', path: '/v1/links', summary: 'My links (the API key and admins: every host\u2019s, or one host\u2019s with host_id)', tags: ['links'], auth: 'user',
      query: Strict({ ...PageQuery, host_id: Type.Optional(Ulid) }),
      responses: { 200: { description: 'A page of links, newest first', schema: ListEnvelope(LinkSchema) } },
      handler: async ({ principal, query, baseUrl }) => {
        const actor = actorOf(principal);
        let hostId: string | null;
        if (actor.isAdmin) {
          hostId = query.host_id ?? null;
        } else {
          hostId = requireAccount(principal);
          if (query.host_id !== undefined && query.host_id !== hostId) throw new AppError('forbidden', 'Only the API key or an admin may list another host\u2019s links');
        }
        const page = query.page ?? 1;
        const perPage = query.per_page ?? 20;
        const { rows, total } = await links.list(hostId, page, perPage, baseUrl);
        return ok(paginate(rows, page, perPage, total));
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/links/{short_code}', summary: 'Public view of a link: host, rate, window, availability', tags: ['links'], auth: 'none',
      params: ShortCodeParams,
      responses: { 200: { description: 'The link', schema: Type.Object({ link: PublicLinkSchema }) } },
      handler: async ({ params }) => ok({ link: await links.publicView(params.short_code, availability) }),
    }),
    defineRoute({
      method: 'delete', path: '/v1/links/{short_code}', summary: 'Delete a link (its host or an admin); calls keep referring to it', tags: ['links'], auth: 'user',
      params: ShortCodeParams,
      responses: { 204: { description: 'Deleted' } },
      handler: async ({ principal, params }) => {
        await links.delete(actorOf(principal), params.short_code);
        return { status: 204 };
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/links/{short_code}/guest', summary: 'A guest user and a short-lived token scoped to this link', tags: ['links'], auth: 'none', rateLimit: 'guest',
      params: ShortCodeParams,
      body: Strict({ guest_name: Type.String({ minLength: 1, maxLength: 100 }) }),
      responses: { 201: { description: 'Guest created', schema: Type.Object({ user: UserSchema, access_token: Type.String(), expires_at: DateTime }) } },
      handler: async ({ params, body }) => {
        const link = await links.usable(params.short_code);
        if (isExhausted(link)) throw new AppError('link_exhausted', `Link ${link.short_code} has reached its maximum number of uses`, { max_uses: link.max_uses });
        const guest = await users.create({ display_name: body.guest_name, role: 'guest' });
        const minted = await tokens.mint({ userId: guest.id, role: 'guest', ttlSeconds: guestTtl, scope: `link:${link.short_code}` });
        return ok({ user: toUserDto(guest), access_token: minted.accessToken, expires_at: minted.expiresAt.toISOString() }, 201);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/hosts/me/availability', summary: 'My availability for link calls', tags: ['links'], auth: 'user',
      responses: { 200: { description: 'Availability', schema: AvailabilityEnvelope } },
      handler: async ({ principal }) => ok({ availability: await availability.get(requireAccount(principal)) }),
    }),
    defineRoute({
      method: 'put', path: '/v1/hosts/me/availability', summary: 'Accept link calls or not (available also needs a live user socket)', tags: ['links'], auth: 'user',
      body: Strict({ available: Type.Boolean() }),
      responses: { 200: { description: 'Availability', schema: AvailabilityEnvelope } },
      handler: async ({ principal, body }) => ok({ availability: await availability.set(requireAccount(principal), body.available) }),
    }),
  ];
}
