import { randomUUID } from 'node:crypto';
import { Gauge, type Registry } from 'prom-client';
import type { UserNotifier } from '../calls/ports.ts';
import type { Principal } from '../http/types.ts';
import type { Uws } from '../http/uws.ts';
import type { Logger } from '../shared/logger.ts';
import type { UserEventEnvelope } from '../protocol/user-events.ts';

interface UserSocketData {
  userId: string | null;
  role: string;
  closeReason: string | null;
}

/** Close codes of the user socket. */
export const UserSocketClose = { unauthorized: 4001, goingAway: 1001 } as const;

const MAX_CLIENT_MESSAGE_BYTES = 16 * 1024;

/**
 * The user WebSocket (SPEC §8): /v1/ws?token=<access_token>. Each user's sockets subscribe to the
 * topic `user:<id>`, so an event published once reaches every socket of that user.
 */
export class UserSockets implements UserNotifier {
  private readonly online = new Map<string, number>();
  private readonly sockets = new Set<Uws.WebSocket<UserSocketData>>();
  private readonly gauge: Gauge | null;
  /** Handlers for client requests on the user socket (the videochat handshake adds some later). */
  private readonly requestHandlers = new Map<string, (userId: string, data: unknown) => Promise<unknown>>();

  constructor(
    private readonly app: Uws.TemplatedApp,
    private readonly deps: { authenticate: (headers: Record<string, string>) => Promise<Principal | null>; logger: Logger; registry?: Registry },
  ) {
    this.gauge = deps.registry
      ? new Gauge({ name: 'callplane_user_sockets', help: 'Open user WebSockets (/v1/ws)', registers: [deps.registry] })
      : null;
    app.ws<UserSocketData>('/v1/ws', {
      maxPayloadLength: MAX_CLIENT_MESSAGE_BYTES,
      idleTimeout: 60,
      sendPingsAutomatically: true,
      maxBackpressure: 4 * 1024 * 1024,
      upgrade: (res, req, context) => this.upgrade(res, req, context),
      open: (ws) => this.opened(ws),
      message: (ws, message, isBinary) => this.received(ws, message, isBinary),
      close: (ws) => this.closed(ws),
    });
  }

  isOnline(userId: string): boolean {
    return (this.online.get(userId) ?? 0) > 0;
  }

  notify(userIds: readonly string[], name: string, data: Record<string, unknown>): void {
    const envelope: UserEventEnvelope = { event: { name, id: randomUUID(), date: new Date().toISOString() }, data };
    const text = JSON.stringify(envelope);
    for (const userId of new Set(userIds)) this.app.publish(`user:${userId}`, text);
  }

  onRequest(name: string, handler: (userId: string, data: unknown) => Promise<unknown>): void {
    this.requestHandlers.set(name, handler);
  }

  /** Graceful shutdown: tell every client, then close. */
  closeAll(): void {
    for (const ws of [...this.sockets]) {
      try {
        ws.end(UserSocketClose.goingAway, 'server shutting down');
      } catch {
        /* already closed */
      }
    }
  }

  private upgrade(res: Uws.HttpResponse, req: Uws.HttpRequest, context: Uws.us_socket_context_t): void {
    const token = new URLSearchParams(req.getQuery() ?? '').get('token') ?? '';
    const key = req.getHeader('sec-websocket-key');
    const protocol = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    this.deps
      .authenticate({ authorization: `Bearer ${token}` })
      .then(
        (principal) => (principal?.kind === 'user' ? { userId: principal.userId, role: principal.role, closeReason: null } : { userId: null, role: '', closeReason: 'a user access token is required' }),
        (error: unknown) => ({ userId: null, role: '', closeReason: (error as Error).message || 'unauthorized' }),
      )
      .then((data: UserSocketData) => {
        if (aborted) return;
        // Browsers cannot read an HTTP error on upgrade: accept, then close with a code and reason.
        res.cork(() => res.upgrade(data, key, protocol, extensions, context));
      });
  }

  private opened(ws: Uws.WebSocket<UserSocketData>): void {
    const data = ws.getUserData();
    if (!data.userId) {
      ws.end(UserSocketClose.unauthorized, data.closeReason ?? 'unauthorized');
      return;
    }
    this.sockets.add(ws);
    this.gauge?.inc();
    this.online.set(data.userId, (this.online.get(data.userId) ?? 0) + 1);
    ws.subscribe(`user:${data.userId}`);
    const envelope: UserEventEnvelope = { event: { name: 'presence', id: randomUUID(), date: new Date().toISOString() }, data: { user_id: data.userId, online: true, sockets: this.online.get(data.userId) } };
    ws.send(JSON.stringify(envelope));
  }

  /** Requests use seed 001's envelope: {endpoint, data, event: {id, date}} answered with the same event.id. */
  private received(ws: Uws.WebSocket<UserSocketData>, message: ArrayBuffer, isBinary: boolean): void {
    const userId = ws.getUserData().userId;
    if (!userId) return;
    let request: { endpoint?: unknown; data?: unknown; event?: { id?: unknown } };
    try {
      if (isBinary) throw new Error('binary frames are not accepted');
      request = JSON.parse(Buffer.from(message).toString('utf8'));
      if (typeof request !== 'object' || request === null) throw new Error('expected a JSON object');
    } catch (error) {
      this.reply(ws, null, null, { status: true, code: 400, message: `Malformed message: ${(error as Error).message}` });
      return;
    }
    const eventId = typeof request.event?.id === 'string' ? request.event.id : null;
    const endpoint = typeof request.endpoint === 'string' ? request.endpoint : '';
    if (endpoint === 'ping') {
      this.reply(ws, eventId, { pong: true }, null);
      return;
    }
    const handler = this.requestHandlers.get(endpoint);
    if (!handler) {
      this.reply(ws, eventId, null, { status: true, code: 404, message: `Unknown endpoint ${JSON.stringify(endpoint).slice(0, 80)}` });
      return;
    }
    handler(userId, request.data).then(
      (data) => this.reply(ws, eventId, data, null),
      (error: { code?: number; message?: string }) => this.reply(ws, eventId, null, { status: true, code: typeof error.code === 'number' ? error.code : 500, message: error.message ?? 'error' }),
    );
  }

  private reply(ws: Uws.WebSocket<UserSocketData>, eventId: string | null, data: unknown, error: { status: boolean; code: number; message: string } | null): void {
    if (!this.sockets.has(ws)) return;
    ws.send(JSON.stringify({ data, error: error ?? { status: false, code: 0, message: '' }, event: { id: eventId, date: new Date().toISOString() } }));
  }

  private closed(ws: Uws.WebSocket<UserSocketData>): void {
    const userId = ws.getUserData().userId;
    if (!userId || !this.sockets.delete(ws)) return;
    this.gauge?.dec();
    const left = (this.online.get(userId) ?? 1) - 1;
    if (left <= 0) this.online.delete(userId);
    else this.online.set(userId, left);
  }
}
