import { Type } from '@sinclair/typebox';
import { CallSchema } from '../../calls/room/call-dto.ts';
import { InitiateRoomCallBody, JoinAnswerSchema, type CallService } from '../../calls/room/call-service.ts';
import { InitiatePaidCallBody, PaidCallSchema } from '../../calls/paid/paid-call-dto.ts';
import type { PaidCallService } from '../../calls/paid/paid-calls.ts';
import type { CallFacade } from '../../calls/facade.ts';
import type { Actor } from '../../calls/ports.ts';
import { CreateRoomBody, MemberInput, RoomSchema, type RoomService, type SettingsService } from '../../calls/room/rooms.ts';
import { AppError } from '../../shared/errors.ts';
import { TurnCredentialsSchema } from '../../turn/credentials.ts';
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

const PaidJoinAnswerSchema = Type.Object({
  call: PaidCallSchema,
  signaling_url: Type.String(),
  signaling_token: Type.String(),
  turn_credentials: TurnCredentialsSchema,
});
const AnyCallEnvelope = Type.Object({ call: Type.Union([CallSchema, PaidCallSchema]) });
const EndBody = Strict({
  reason: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z_]+$', description: 'Room calls: stored as the end reason. Paid calls: informative; the reason follows from who ends (user_ended / host_ended).' })),
});

/**
 * Calls of every kind share these paths (README, "Room calls" and "Paid link calls"): a body with `short_code` initiates a paid link call,
 * one with `room_id` a room call; the other routes follow the call's kind.
 */
export function callRoutes(deps: { calls: CallFacade; roomCalls: CallService; paid: PaidCallService }): AnyRoute[] {
  const { calls, roomCalls, paid } = deps;
  return [
    defineRoute({
      method: 'post', path: '/v1/calls/initiate', summary: 'Start a call: a paid link call ({short_code, payment_method_id}) or a room call ({room_id, type})', tags: ['calls'], auth: 'user', rateLimit: 'initiate',
      body: Type.Union([InitiatePaidCallBody, InitiateRoomCallBody]),
      responses: {
        201: { description: 'Paid: waiting for the host, window-1 hold placed. Room: started, members invited.', schema: Type.Union([PaidJoinAnswerSchema, JoinAnswerSchema]) },
        402: { description: 'payment_failed: the window-1 hold was declined' },
        404: { description: 'link_not_found' },
        409: { description: 'link_exhausted' },
        503: { description: 'host_unavailable, media_unavailable, or the payment provider did not answer' },
      },
      handler: async (ctx) => {
        const body = ctx.body;
        if ('short_code' in body) {
          const request = ctx.idempotency ? { requestKey: ctx.idempotency.key } : {};
          return ok(await paid.initiate(actorOf(ctx.principal), ctx.principal?.kind === 'user' ? ctx.principal.scope : undefined, body, signalingUrlFor(ctx), request), 201);
        }
        requireNonGuest(ctx.principal);
        return ok(await roomCalls.initiateRoomCall(actorOf(ctx.principal), body, signalingUrlFor(ctx)), 201);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/calls/{id}/join', summary: 'Join a call: room members join a call in progress; a paid call\'s host answers it', tags: ['calls'], auth: 'user',
      params: CallIdParams,
      responses: { 200: { description: 'Joined', schema: Type.Union([JoinAnswerSchema, PaidJoinAnswerSchema]) } },
      handler: async (ctx) => {
        return ok(await calls.join(actorOf(ctx.principal), ctx.params.id, signalingUrlFor(ctx)));
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/calls/{id}/token', summary: 'A fresh signaling token to reconnect', tags: ['calls'], auth: 'user',
      params: CallIdParams,
      responses: { 200: { description: 'Token', schema: Type.Omit(JoinAnswerSchema, ['call']) } },
      handler: async (ctx) => {
        return ok(await calls.newToken(actorOf(ctx.principal), ctx.params.id, signalingUrlFor(ctx)));
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/calls/{id}/leave', summary: 'Leave a room call (paid calls end with POST /v1/calls/{id}/end)', tags: ['calls'], auth: 'user', params: CallIdParams,
      responses: { 200: { description: 'The call', schema: CallEnvelope } },
      handler: async ({ principal, params }) => {
        return ok({ call: await calls.leave(actorOf(principal), params.id) });
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/calls/{id}/reject', summary: 'Decline a ringing call (a paid call\'s host: cancelled, hold released)', tags: ['calls'], auth: 'user', params: CallIdParams,
      responses: { 200: { description: 'The call', schema: AnyCallEnvelope } },
      handler: async ({ principal, params }) => {
        return ok({ call: await calls.reject(actorOf(principal), params.id) });
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/calls/{id}/end', summary: 'End the call for everyone (paid: either participant, answered with the billing summary)', tags: ['calls'], auth: 'user',
      params: CallIdParams, body: EndBody,
      responses: { 200: { description: 'The ended call', schema: AnyCallEnvelope }, 409: { description: 'invalid_state (paid) or call_ended (room)' } },
      handler: async ({ principal, params, body, idempotency }) => {
        const retry = idempotency ? { receivedAtMs: idempotency.firstReceivedAt.getTime(), requestKey: idempotency.key } : {};
        return ok({ call: await calls.end(actorOf(principal), params.id, { ...(body.reason ? { reason: body.reason } : {}), ...retry }) });
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/calls/{id}/status', summary: 'The call now: paid calls with the meter (current window, next hold, elapsed, estimated charge)', tags: ['calls'], auth: 'user', params: CallIdParams,
      responses: { 200: { description: 'The call', schema: AnyCallEnvelope } },
      handler: async ({ principal, params }) => {
        return ok({ call: await calls.describe(actorOf(principal), params.id) });
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/calls/{id}', summary: 'Call state (room calls: participants and recordings; paid calls: as /status)', tags: ['calls'], auth: 'user', params: CallIdParams,
      responses: { 200: { description: 'The call', schema: AnyCallEnvelope } },
      handler: async ({ principal, params }) => {
        return ok({ call: await calls.describe(actorOf(principal), params.id) });
      },
    }),
  ];
}
