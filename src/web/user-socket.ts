/**
 * The user WebSocket (docs/api.md, "User WebSocket"): call invites and call state changes for the signed-in user.
 * Reconnects with backoff while the page is signed in.
 */
import type { UserEventEnvelope, UserReply } from '../protocol/user-events.ts';

/** An error answer of a user-socket request: `code` is the handshake's integer code (1021, 10011, HTTP-like). */
export class UserSocketError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'UserSocketError';
  }
}

export class UserSocket {
  private socket: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private timer: number | null = null;
  private nextId = 1;
  private readonly pending = new Map<string, { resolve: (data: unknown) => void; reject: (error: Error) => void }>();
  connected = false;

  constructor(
    private readonly url: string,
    private readonly onEvent: (event: UserEventEnvelope) => void,
    private readonly onState: (connected: boolean) => void,
  ) {
    this.open();
  }

  /** A request in the handshake's envelope; resolves with the answer's data, rejects with a UserSocketError. */
  request<T = unknown>(endpoint: string, data: Record<string, unknown> = {}): Promise<T> {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return Promise.reject(new UserSocketError(503, 'The user socket is not connected'));
    const id = `web-${this.nextId++}`;
    socket.send(JSON.stringify({ endpoint, data, event: { id, date: new Date().toISOString() } }));
    return new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as (data: unknown) => void, reject }));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.socket?.close(1000, 'signed out');
  }

  private open(): void {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.attempt = 0;
      this.connected = true;
      this.onState(true);
    });
    socket.addEventListener('message', (message) => {
      try {
        const frame = JSON.parse(String(message.data)) as UserEventEnvelope | UserReply;
        const waiting = frame.event && 'id' in frame.event && !('name' in frame.event) && frame.event.id !== null ? this.pending.get(frame.event.id) : undefined;
        if (waiting) {
          this.pending.delete((frame as UserReply).event.id!);
          const reply = frame as UserReply;
          if (reply.error?.status) waiting.reject(new UserSocketError(reply.error.code, reply.error.message));
          else waiting.resolve(reply.data);
          return;
        }
        if (frame && 'name' in frame.event && typeof frame.event.name === 'string') this.onEvent(frame as UserEventEnvelope);
      } catch {
        console.warn('user socket: ignoring a frame that is not JSON');
      }
    });
    socket.addEventListener('close', (event) => {
      this.connected = false;
      for (const waiting of this.pending.values()) waiting.reject(new UserSocketError(503, 'The user socket closed'));
      this.pending.clear();
      this.onState(false);
      // 4001: the access token was refused; retrying with it cannot help.
      if (this.stopped || event.code === 4001) return;
      const delay = Math.min(500 * 2 ** this.attempt++, 10_000);
      this.timer = window.setTimeout(() => this.open(), delay);
    });
  }
}
