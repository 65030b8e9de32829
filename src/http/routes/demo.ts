import { Type } from '@sinclair/typebox';
import type { UserService } from '../../identity/users.ts';
import { UserSchema, toUserDto } from '../../identity/users.ts';
import type { TokenService } from '../../identity/tokens.ts';
import { ListEnvelope, Strict, paginate } from '../../shared/schema.ts';
import { defineRoute, ok, type AnyRoute } from '../types.ts';

/**
 * One-click demo sign-in for the demo page: it creates a real user through the user service and
 * mints a real token. Registered only while the sign-in is on (config.demo, decided in
 * src/config/demo.ts: by default only on a loopback http.host with the test payment provider).
 */
export function demoRoutes(deps: { users: UserService; tokens: TokenService }): AnyRoute[] {
  return [
    defineRoute({
      method: 'post', path: '/v1/demo/login', summary: 'Demo mode: create a user and sign in', tags: ['demo'], auth: 'none', rateLimit: 'guest',
      // A demo host can create paid links (role host); nobody can sign in as an admin this way.
      body: Strict({ display_name: Type.String({ minLength: 1, maxLength: 100 }), role: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('host')])) }),
      responses: { 201: { description: 'Signed in', schema: Type.Object({ user: UserSchema, access_token: Type.String(), expires_at: Type.String() }) } },
      handler: async ({ body }) => {
        const user = await deps.users.create({ display_name: body.display_name, role: body.role ?? 'user' });
        const minted = await deps.tokens.mint({ userId: user.id, role: user.role });
        return ok({ user: toUserDto(user), access_token: minted.accessToken, expires_at: minted.expiresAt.toISOString() }, 201);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/demo/users', summary: 'Demo mode: the other users, to pick room members', tags: ['demo'], auth: 'user',
      responses: { 200: { description: 'Users', schema: ListEnvelope(Type.Object({ id: Type.String(), display_name: Type.String() })) } },
      handler: async () => {
        const { rows, total } = await deps.users.list({ page: 1, perPage: 100 });
        return ok(paginate(rows.map((u) => ({ id: u.id, display_name: u.display_name })), 1, 100, total));
      },
    }),
  ];
}
