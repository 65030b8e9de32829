/**
 * The chat WebSocket (docs/api.md, "Chat WebSocket"): /v1/chat/ws?token=<access_token>, declared
 * on the shared WebSocket module. Client frames `message`, `typing`, `read` go to the chat service;
 * what it decides comes back through ChatSink as `new_message`, `typing`, `read_receipt`, to every
 * socket of the users concerned. A refused frame gets `{type: "error", code, message, conversation_id?}`.
 */
import type { Registry } from 'prom-client';
import type { ChatActor, ChatService, ChatSink } from '../chat/index.ts';
import type { Principal } from '../http/types.ts';
import type { Uws } from '../http/uws.ts';
import { ChatClientEnvelope, ChatSocketClose, chatClientFrames, type ChatServerFrame } from '../protocol/chat.ts';
import { AppError, toAppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { SocketEndpoint, type FrameProtocol, type Socket } from '../ws/index.ts';

/** A message body of chat.max_message_chars characters, as UTF-8 and JSON-escaped, fits with room to spare. */
const frameBytesFor = (maxChars: number): number => Math.max(16 * 1024, maxChars * 6 + 1024);

/** Flat frames {type, conversation_id, …}: the type names the request; errors carry the frame's conversation_id. */
const chatFrames: FrameProtocol = {
  envelope: ChatClientEnvelope,
  requestName(frame) {
    const type = (frame as { type?: unknown } | null)?.type;
    return typeof type === 'string' ? type : undefined;
  },
  requestId(frame) {
    const id = (frame as { conversation_id?: unknown } | null)?.conversation_id;
    return typeof id === 'string' && /^[0-9A-HJKMNP-TV-Z]{26}$/.test(id) ? id : undefined;
  },
  payload: (frame) => frame,
  // Chat answers with events (new_message, read_receipt…), never with a reply frame.
  reply: () => null,
  error: (id, error): ChatServerFrame => ({ type: 'error', code: error.code, message: error.message, ...(id === undefined ? {} : { conversation_id: String(id) }) }),
  unknownRequest: (name, known) => new AppError('validation_failed', `Unknown frame type ${JSON.stringify(name ?? '').slice(0, 40)}: use ${known.join(', ')}`),
};

export interface ChatSocketsDeps {
  chat: ChatService;
  authenticate: (headers: Record<string, string>) => Promise<Principal | null>;
  logger: Logger;
  registry?: Registry;
  maxMessageChars: number;
  messagesPerSecond: number;
}

export class ChatSockets implements ChatSink {
  readonly #byUser = new Map<string, Set<Socket<ChatActor>>>();
  readonly #endpoint: SocketEndpoint<ChatActor>;

  constructor(app: Uws.TemplatedApp, deps: ChatSocketsDeps) {
    const maxBytes = frameBytesFor(deps.maxMessageChars);
    this.#endpoint = new SocketEndpoint<ChatActor>(
      app,
      {
        name: 'chat',
        paths: ['/v1/chat/ws'],
        tokenName: 'access_token',
        limits: { maxMessageBytes: maxBytes, maxFrameBytes: 4 * maxBytes, messagesPerSecond: deps.messagesPerSecond, floodCloseCode: ChatSocketClose.flooding },
        protocol: chatFrames,
        async authenticate(token) {
          const principal = await deps.authenticate({ authorization: `Bearer ${token}` });
          if (principal?.kind !== 'user') throw new AppError('unauthorized', 'a user access token is required');
          return { userId: principal.userId, role: principal.role };
        },
        refusal: (error) => ({ code: ChatSocketClose.unauthorized, reason: toAppError(error).message }),
        opened: (socket) => this.#opened(socket),
        closed: (socket) => this.#closed(socket),
      },
      { logger: deps.logger, ...(deps.registry ? { registry: deps.registry } : {}) },
    );
    const frames = chatClientFrames(deps.maxMessageChars);
    const { chat } = deps;
    this.#endpoint
      .request('message', frames.message, async (socket, frame) => {
        await chat.send(socket.session, frame.conversation_id, { body: frame.body, ...(frame.client_id === undefined ? {} : { client_id: frame.client_id }) });
      })
      .request('typing', frames.typing, (socket, frame) => chat.typing(socket.session, frame.conversation_id))
      .request('read', frames.read, (socket, frame) => chat.markRead(socket.session, frame.conversation_id));
  }

  deliver(userIds: readonly string[], frame: ChatServerFrame): void {
    const text = JSON.stringify(frame);
    // A copy: a send may close a slow socket, which leaves its user's set.
    for (const userId of new Set(userIds)) for (const socket of [...(this.#byUser.get(userId) ?? [])]) socket.sendText(text);
  }

  /** Open chat sockets of a user (tests, metrics). */
  socketsOf(userId: string): number {
    return this.#byUser.get(userId)?.size ?? 0;
  }

  closeAll(): void {
    this.#endpoint.closeAll(ChatSocketClose.goingAway, 'server shutting down');
  }

  #opened(socket: Socket<ChatActor>): void {
    let sockets = this.#byUser.get(socket.session.userId);
    if (!sockets) this.#byUser.set(socket.session.userId, (sockets = new Set()));
    sockets.add(socket);
  }

  #closed(socket: Socket<ChatActor>): void {
    const sockets = this.#byUser.get(socket.session.userId);
    if (!sockets?.delete(socket)) return;
    if (sockets.size === 0) this.#byUser.delete(socket.session.userId);
  }
}
