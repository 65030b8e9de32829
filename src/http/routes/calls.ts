import { Type } from '@sinclair/typebox';
import { CallSchema } from '../../calls/call-dto.ts';
import { InitiateRoomCallBody, JoinAnswerSchema, type CallService } from '../../calls/call-service.ts';
import type { Actor } from '../../calls/ports.ts';
import { CreateRoomBody, MemberInput, RoomSchema, type RoomService, type SettingsService } from '../../calls/rooms.ts';
import { AppError } from '../../shared/errors.ts';
import { ListEnvelope, PageQuery, Strict, Ulid, paginate } from '../../shared/schema.ts';
import { defineRoute, ok, type AnyRoute, type Principal, type RequestContext } from '../types.ts';

export function actorOf(principal: Principal | null): Actor {
  if (!principal) return { userId: null, isAdmin: false };
  if (principal.kind === 'api_key') return { userId: null, isAdmin: true };
  return { userId: principal.userId, isAdmin: principal.role === 'admin' };
}

/** ws(s)://<host>/v1/signal for the URL the client used (or the configured public URL). */
export function signalingUrlFor(ctx: Pick<RequestContext, 'baseUrl'>): string {
  return `${ctx.baseUrl.replace(/^http/, 'ws')}/v1/signal`;
}

const CallIdParams = Strict({ id: Ulid });
const RoomIdParams = Strict({ id: Ulid });
const CallEnvelope = Type.Object({ call: CallSchema });
const RoomEnvelope = Type.Object({ room: RoomSchema });

function requireNonGuest(principal: Principal | null): void {
  if (principal?.kind === 'user' && principal.role === 'guest') throw new AppError('forbidden', 'Guests cannot do this');
}

export function roomRoutes(deps: { rooms: RoomService; settings: SettingsService }): AnyRoute[] {
  const { rooms, settings } = deps;
  return [
    defineRoute({
      method: 'post', path: '/v1/rooms', summary: 'Create a room (the creator is a member with power 100)', tags: ['rooms'], auth: 'user',
      body: CreateRoomBody,
      responses: { 201: { description: 'Created', schema: RoomEnvelope } },
      handler: async ({ principal, body }) => {
        requireNonGuest(principal);
        return ok({ room: await rooms.create(actorOf(principal), body) }, 201);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/rooms', summary: 'Rooms I am a member of', tags: ['rooms'], auth: 'user',
      query: Strict({ ...PageQuery }),
      responses: { 200: { description: 'A page of rooms', schema: ListEnvelope(RoomSchema) } },
      handler: async ({ principal, query }) => {
        const actor = actorOf(principal);
        if (!actor.userId) throw new AppError('forbidden', 'This endpoint needs a user access token');
        const page = query.page ?? 1;
        const perPage = query.per_page ?? 20;
        const { rows, total } = await rooms.listFor(actor.userId, page, perPage);
        return ok(paginate(rows, page, perPage, total));
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/rooms/{id}', summary: 'Get a room', tags: ['rooms'], auth: 'user', params: RoomIdParams,
      responses: { 200: { description: 'The room', schema: RoomEnvelope } },
      handler: async ({ principal, params }) => ok({ room: await rooms.get(actorOf(principal), params.id) }),
    }),
    defineRoute({
      method: 'patch', path: '/v1/rooms/{id}', summary: 'Rename a room (power 100)', tags: ['rooms'], auth: 'user',
      params: RoomIdParams, body: Strict({ name: Type.String({ minLength: 1, maxLength: 200 }) }),
      responses: { 200: { description: 'The room', schema: RoomEnvelope } },
      handler: async ({ principal, params, body }) => ok({ room: await rooms.rename(actorOf(principal), params.id, body.name) }),
    }),
    defineRoute({
      method: 'delete', path: '/v1/rooms/{id}', summary: 'Delete a room without a call in progress (power 100)', tags: ['rooms'], auth: 'user',
      params: RoomIdParams,
      responses: { 204: { description: 'Deleted' } },
      handler: async ({ principal, params }) => {
        await rooms.delete(actorOf(principal), params.id);
        return { status: 204 };
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/rooms/{id}/members', summary: 'Add a member or change their power (power ≥ 50)', tags: ['rooms'], auth: 'user',
      params: RoomIdParams, body: MemberInput,
      responses: { 200: { description: 'The room', schema: RoomEnvelope } },
      handler: async ({ principal, params, body }) => ok({ room: await rooms.addMember(actorOf(principal), params.id, body) }),
    }),
    defineRoute({
      method: 'delete', path: '/v1/rooms/{id}/members/{user_id}', summary: 'Remove a member (power ≥ 50, or yourself)', tags: ['rooms'], auth: 'user',
      params: Strict({ id: Ulid, user_id: Ulid }),
      responses: { 200: { description: 'The room', schema: RoomEnvelope } },
      handler: async ({ principal, params }) => ok({ room: await rooms.removeMember(actorOf(principal), params.id, params.user_id) }),
    }),
    defineRoute({
      method: 'get', path: '/v1/settings', summary: 'Tenant settings', tags: ['settings'], auth: 'admin',
      responses: { 200: { description: 'Settings', schema: Type.Object({ settings: Type.Object({ recording_enabled: Type.Boolean() }) }) } },
      handler: async () => ok({ settings: { recording_enabled: await settings.recordingEnabled() } }),
    }),
    defineRoute({
      method: 'put', path: '/v1/settings', summary: 'Change tenant settings', tags: ['settings'], auth: 'admin',
      body: Strict({ recording_enabled: Type.Boolean() }),
      responses: { 200: { description: 'Settings', schema: Type.Object({ settings: Type.Object({ recording_enabled: Type.Boolean() }) }) } },
      handler: async ({ body }) => {
        await settings.setRecordingEnabled(body.recording_enabled);
        return ok({ settings: { recording_enabled: await settings.recordingEnabled() } });
      },
    }),
  ];
}

export function callRoutes(deps: { calls: CallService }): AnyRoute[] {
  const { calls } = deps;
  return [
    defineRoute({
      method: 'post', path: '/v1/calls/initiate', summary: 'Start a call in a room; members get call.invite', tags: ['calls'], auth: 'user', rateLimit: 'initiate',
      body: InitiateRoomCallBody,
      responses: { 201: { description: 'Started', schema: JoinAnswerSchema } },
      handler: async (ctx) => {
        requireNonGuest(ctx.principal);
        return ok(await calls.initiateRoomCall(actorOf(ctx.principal), ctx.body, signalingUrlFor(ctx)), 201);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/calls/{id}/join', summary: 'Join a call in progress: a signaling token for this caller', tags: ['calls'], auth: 'user',
      params: CallIdParams,
      responses: { 200: { description: 'Joined', schema: JoinAnswerSchema } },
      handler: async (ctx) => ok(await calls.join(actorOf(ctx.principal), ctx.params.id, signalingUrlFor(ctx))),
    }),
    defineRoute({
      method: 'post', path: '/v1/calls/{id}/token', summary: 'A fresh signaling token to reconnect', tags: ['calls'], auth: 'user',
      params: CallIdParams,
      responses: { 200: { description: 'Token', schema: Type.Omit(JoinAnswerSchema, ['call']) } },
      handler: async (ctx) => ok(await calls.newToken(actorOf(ctx.principal), ctx.params.id, signalingUrlFor(ctx))),
    }),
    defineRoute({
      method: 'post', path: '/v1/calls/{id}/leave', summary: 'Leave the call', tags: ['calls'], auth: 'user', params: CallIdParams,
      responses: { 200: { description: 'The call', schema: CallEnvelope } },
      handler: async ({ principal, params }) => ok({ call: await calls.leave(actorOf(principal), params.id) }),
    }),
    defineRoute({
      method: 'post', path: '/v1/calls/{id}/reject', summary: 'Decline a ringing call', tags: ['calls'], auth: 'user', params: CallIdParams,
      responses: { 200: { description: 'The call', schema: CallEnvelope } },
      handler: async ({ principal, params }) => ok({ call: await calls.reject(actorOf(principal), params.id) }),
    }),
    defineRoute({
      method: 'post', path: '/v1/calls/{id}/end', summary: 'End the call for everyone (initiator or power ≥ 50)', tags: ['calls'], auth: 'user',
      params: CallIdParams, body: Strict({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z_]+$' })) }),
      responses: { 200: { description: 'The ended call', schema: CallEnvelope } },
      handler: async ({ principal, params, body }) => ok({ call: await calls.end(actorOf(principal), params.id, body.reason ?? 'ended_by_user') }),
    }),
    defineRoute({
      method: 'get', path: '/v1/calls/{id}', summary: 'Call state with participants and recordings', tags: ['calls'], auth: 'user', params: CallIdParams,
      responses: { 200: { description: 'The call', schema: CallEnvelope } },
      handler: async ({ principal, params }) => ok({ call: await calls.get(actorOf(principal), params.id) }),
    }),
  ];
}
