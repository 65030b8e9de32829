import { randomUUID } from 'node:crypto';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { Registry } from 'prom-client';
import type { NotifyOptions, SocketCaller, UserNotifier } from '../calls/ports.ts';
import { PRESENCE_CHANGED_EVENT } from '../protocol/videochat.ts';
import type { Principal } from '../http/types.ts';
import type { Uws } from '../http/uws.ts';
import { UserRequestFrame, type UserEventEnvelope, type UserReply } from '../protocol/user-events.ts';
import { AppError, toAppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { SocketEndpoint, type FrameProtocol, type Socket } from '../ws/index.ts';

/** Close codes of the user socket. */
export const UserSocketClose = { unauthorized: 4001, flooding: 4008, goingAway: 1001 } as const;

const MAX_CLIENT_MESSAGE_BYTES = 16 * 1024;
/** A user socket carries a few requests a minute; this leaves room for bursts of them. */
const MESSAGES_PER_SECOND = 10;

interface UserSession {
  userId: string;
  role: string;
  /** Opaque per socket: lets an event skip the socket whose request caused it. */
  socketId: string;
}

const OK = { status: false, code: 0, message: '' } as const;

/** An AppError's integer code on this socket: the videochat codes (1021, 10011) ride in details.code, else the HTTP status. */
function wireCode(error: AppError): number {
  const code = error.details?.code;
  return typeof code === 'number' && Number.isInteger(code) ? code : error.status;
}

const date = (): string => new Date().toISOString();

/** The request envelope {endpoint, data, event: {id, date}} and its UserReply. */
const userFrames: FrameProtocol = {
  envelope: UserRequestFrame,
  requestName(frame) {
    const endpoint = (frame as { endpoint?: unknown } | null)?.endpoint;
    return typeof endpoint === 'string' ? endpoint : undefined;
  },
  requestId(frame) {
    const id = (frame as { event?: { id?: unknown } } | null)?.event?.id;
    return typeof id === 'string' && id.length <= 128 ? id : undefined;
  },
  payload: (frame) => (frame as UserRequestFrame).data ?? {},
  reply: (id, data): UserReply => ({ data: data ?? null, error: OK, event: { id: id === undefined ? null : String(id), date: date() } }),
  error: (id, error): UserReply => ({ data: null, error: { status: true, code: wireCode(error), message: error.message }, event: { id: id === undefined ? null : String(id), date: date() } }),
  unknownRequest: (name) => new AppError('not_found', `Unknown endpoint ${JSON.stringify(name ?? '').slice(0, 80)}`),
};

/**
 * The user WebSocket (README "Room calls"): /v1/ws?token=<access_token>. An event for a user goes
 * to every socket that user has open.
 */
export class UserSockets implements UserNotifier {
  readonly #byUser = new Map<string, Set<Socket<UserSession>>>();
  readonly #endpoint: SocketEndpoint<UserSession>;

  constructor(app: Uws.TemplatedApp, deps: { authenticate: (headers: Record<string, string>) => Promise<Principal | null>; logger: Logger; registry?: Registry }) {
    this.#endpoint = new SocketEndpoint<UserSession>(
      app,
      {
        name: 'user',
        paths: ['/v1/ws'],
        tokenName: 'access_token',
        legacyMetricsPrefix: 'callplane_user',
        limits: { maxMessageBytes: MAX_CLIENT_MESSAGE_BYTES, maxFrameBytes: 4 * MAX_CLIENT_MESSAGE_BYTES, messagesPerSecond: MESSAGES_PER_SECOND, floodCloseCode: UserSocketClose.flooding },
        protocol: userFrames,
        async authenticate(token) {
          const principal = await deps.authenticate({ authorization: `Bearer ${token}` });
          if (principal?.kind !== 'user') throw new AppError('unauthorized', 'a user access token is required');
          return { userId: principal.userId, role: principal.role, socketId: randomUUID() };
        },
        refusal: (error) => ({ code: UserSocketClose.unauthorized, reason: toAppError(error).message }),
        opened: (socket) => this.#opened(socket),
        closed: (socket) => this.#closed(socket),
      },
      { logger: deps.logger, ...(deps.registry ? { registry: deps.registry } : {}) },
    );
    this.#endpoint.request('ping', Type.Object({}), () => ({ pong: true }));
  }

  isOnline(userId: string): boolean {
    return (this.#byUser.get(userId)?.size ?? 0) > 0;
  }

  onlineUserIds(): string[] {
    return [...this.#byUser.keys()];
  }

  notify(userIds: readonly string[], name: string, data: Record<string, unknown>, options: NotifyOptions = {}): void {
    // The videochat events carry the handshake API's error block too (docs/api.md, "Direct videochat (user socket)").
    const envelope: UserEventEnvelope = { event: { name, id: randomUUID(), date: date() }, data, ...(name.startsWith('videochat:') ? { error: OK } : {}) };
    const text = JSON.stringify(envelope);
    // A copy: a send may close a slow socket, which leaves its user's set.
    for (const userId of new Set(userIds)) {
      for (const socket of [...(this.#byUser.get(userId) ?? [])]) if (socket.session.socketId !== options.exceptSocket) socket.sendText(text);
    }
  }

  /** A client request (the videochat handshake adds some): `data` must pass `schema`; errors answer with their code. */
  onRequest<T extends TSchema>(name: string, schema: T, handler: (caller: SocketCaller, data: Static<T>) => Promise<unknown>): void {
    this.#endpoint.request(name, schema, (socket, data) => handler({ userId: socket.session.userId, socketId: socket.session.socketId }, data));
  }

  /** Graceful shutdown: tell every client, then close. */
  closeAll(): void {
    this.#endpoint.closeAll(UserSocketClose.goingAway, 'server shutting down');
  }

  #opened(socket: Socket<UserSession>): void {
    const { userId } = socket.session;
    let sockets = this.#byUser.get(userId);
    if (!sockets) this.#byUser.set(userId, (sockets = new Set()));
    sockets.add(socket);
    const presence: UserEventEnvelope = { event: { name: 'presence', id: randomUUID(), date: date() }, data: { user_id: userId, online: true, sockets: sockets.size } };
    socket.send(presence);
    if (sockets.size === 1) this.#presenceChanged(userId, true);
  }

  /** A user's first socket opened or its last closed: every other online user hears it (the demo lobby). */
  #presenceChanged(userId: string, online: boolean): void {
    this.notify(this.onlineUserIds().filter((id) => id !== userId), PRESENCE_CHANGED_EVENT, { user_id: userId, online });
  }

  #closed(socket: Socket<UserSession>): void {
    const sockets = this.#byUser.get(socket.session.userId);
    if (!sockets?.delete(socket)) return;
    if (sockets.size === 0) {
      this.#byUser.delete(socket.session.userId);
      this.#presenceChanged(socket.session.userId, false);
    }
  }
}
