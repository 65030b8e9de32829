import { Type } from '@sinclair/typebox';
import type { UserService } from '../../identity/users.ts';
import { CreateUserBody, UpdateUserBody, UserSchema, toUserDto } from '../../identity/users.ts';
import type { TokenService } from '../../identity/tokens.ts';
import { AppError } from '../../shared/errors.ts';
import { DateTime, ListEnvelope, PageQuery, Strict, Ulid, paginate } from '../../shared/schema.ts';
import { defineRoute, ok, type Principal, type AnyRoute } from '../types.ts';

const UserEnvelope = Type.Object({ user: UserSchema });
const IdParams = Strict({ id: Ulid });
const RevocationEnvelope = Type.Object({ user_id: Ulid, tokens_revoked_at: DateTime });

function requireUser(principal: Principal | null): { userId: string } {
  if (!principal || principal.kind !== 'user') throw new AppError('forbidden', 'This endpoint needs a user access token, not the API key');
  return principal;
}

export function userRoutes(deps: { users: UserService; tokens: TokenService }): AnyRoute[] {
  const { users, tokens } = deps;
  return [
    defineRoute({
      method: 'post',
      path: '/v1/users',
      summary: 'Create a user',
      tags: ['users'],
      auth: 'admin',
      body: CreateUserBody,
      responses: { 201: { description: 'Created', schema: UserEnvelope } },
      handler: async ({ body }) => ok({ user: toUserDto(await users.create(body)) }, 201),
    }),
    defineRoute({
      method: 'get',
      path: '/v1/users',
      summary: 'List users',
      tags: ['users'],
      auth: 'admin',
      query: Strict({ ...PageQuery, role: Type.Optional(Type.Union(['guest', 'user', 'host', 'admin'].map((r) => Type.Literal(r)))) }),
      responses: { 200: { description: 'A page of users', schema: ListEnvelope(UserSchema) } },
      handler: async ({ query }) => {
        const page = query.page ?? 1;
        const perPage = query.per_page ?? 20;
        const { rows, total } = await users.list({ page, perPage, ...(query.role ? { role: query.role as never } : {}) });
        return ok(paginate(rows.map(toUserDto), page, perPage, total));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/users/me',
      summary: 'The user the access token belongs to',
      tags: ['users'],
      auth: 'user',
      responses: { 200: { description: 'The current user', schema: UserEnvelope } },
      handler: async ({ principal }) => ok({ user: toUserDto(await users.current(requireUser(principal).userId)) }),
    }),
    defineRoute({
      method: 'get',
      path: '/v1/users/{id}',
      summary: 'Get a user',
      tags: ['users'],
      auth: 'admin',
      params: IdParams,
      responses: { 200: { description: 'The user', schema: UserEnvelope } },
      handler: async ({ params }) => ok({ user: toUserDto(await users.get(params.id)) }),
    }),
    defineRoute({
      method: 'patch',
      path: '/v1/users/{id}',
      summary: 'Update a user',
      tags: ['users'],
      auth: 'admin',
      params: IdParams,
      body: UpdateUserBody,
      responses: { 200: { description: 'The updated user', schema: UserEnvelope } },
      handler: async ({ params, body }) => ok({ user: toUserDto(await users.update(params.id, body)) }),
    }),
    defineRoute({
      method: 'post',
      path: '/v1/users/{id}/revoke-tokens',
      summary: 'Refuse every access token of a user issued so far (sign out everywhere)',
      tags: ['users'],
      auth: 'admin',
      params: IdParams,
      responses: { 200: { description: 'When the revocation took effect', schema: RevocationEnvelope } },
      handler: async ({ params }) => ok({ user_id: params.id, tokens_revoked_at: (await users.revokeTokens(params.id)).toISOString() }),
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/token',
      summary: 'Mint an access token for a user (operator backends)',
      tags: ['auth'],
      auth: 'admin',
      rateLimit: 'token',
      body: Strict({ user_id: Ulid, ttl_seconds: Type.Optional(Type.Integer({ minimum: 60 })) }),
      responses: {
        201: { description: 'Minted', schema: Type.Object({ access_token: Type.String(), expires_at: Type.String({ format: 'date-time' }) }) },
      },
      handler: async ({ body }) => {
        const user = await users.get(body.user_id);
        const minted = await tokens.mint({ userId: user.id, role: user.role, ...(body.ttl_seconds ? { ttlSeconds: body.ttl_seconds } : {}) });
        return ok({ access_token: minted.accessToken, expires_at: minted.expiresAt.toISOString() }, 201);
      },
    }),
  ];
}
