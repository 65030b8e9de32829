/**
 * The load tester's signaling client: one WebSocket per simulated peer, speaking the JSON frames of
 * src/protocol/signaling.ts (README, "Room calls"). Requests carry an id and resolve with the
 * response payload; notifications go to `onNotification`.
 */
import WebSocket from 'ws';
import type { NotificationPayloads, NotificationType, RequestPayload, RequestType, ResponsePayloads } from '../protocol/signaling.ts';

const REQUEST_TIMEOUT_MS = 20_000;

export type AnyNotification = { [T in NotificationType]: { type: T; payload: NotificationPayloads[T] } }[NotificationType];

interface Pending {
  type: string;
  resolve: (payload: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class SignalingClient {
  readonly welcome: Promise<NotificationPayloads['welcome']>;
  /** Resolves with the close code once the socket has closed (either side). */
  readonly closed: Promise<number>;
  onNotification: (notification: AnyNotification) => void = () => undefined;
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #isClosed = false;
  /** The close code and reason, once closed. */
  closeInfo: string | null = null;

  constructor(signalingUrl: string, token: string) {
    const separator = signalingUrl.includes('?') ? '&' : '?';
    this.#ws = new WebSocket(`${signalingUrl}${separator}token=${encodeURIComponent(token)}`);
    this.#ws.on('error', () => undefined); // a close always follows
    let resolveWelcome!: (w: NotificationPayloads['welcome']) => void;
    let rejectWelcome!: (e: Error) => void;
    this.welcome = new Promise((resolve, reject) => {
      resolveWelcome = resolve;
      rejectWelcome = reject;
    });
    this.welcome.catch(() => undefined);
    this.closed = new Promise((resolve) => {
      this.#ws.on('close', (code, reason) => {
        this.#isClosed = true;
        this.closeInfo = `${code}${String(reason) ? ` ${String(reason)}` : ''}`;
        rejectWelcome(new Error(`signaling closed before the welcome (${code} ${String(reason)})`));
        for (const [id, pending] of this.#pending) {
          clearTimeout(pending.timer);
          pending.reject(new Error(`signaling closed (${code}) before ${pending.type} was answered`));
          this.#pending.delete(id);
        }
        resolve(code);
      });
    });
    this.#ws.on('message', (data) => {
      let frame: { type?: string; id?: number; payload?: unknown };
      try {
        frame = JSON.parse(String(data)) as typeof frame;
      } catch {
        return;
      }
      if ((frame.type === 'response' || frame.type === 'error') && frame.id !== undefined) {
        const pending = this.#pending.get(Number(frame.id));
        if (!pending) return;
        this.#pending.delete(Number(frame.id));
        clearTimeout(pending.timer);
        if (frame.type === 'response') pending.resolve(frame.payload ?? {});
        else {
          const error = (frame.payload ?? {}) as { code?: string; message?: string };
          pending.reject(new Error(`${pending.type}: ${error.code ?? 'error'}: ${error.message ?? 'failed'}`));
        }
        return;
      }
      if (frame.type === 'welcome') resolveWelcome(frame.payload as NotificationPayloads['welcome']);
      if (typeof frame.type === 'string') this.onNotification({ type: frame.type, payload: frame.payload ?? {} } as AnyNotification);
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  request<T extends RequestType>(type: T, payload: RequestPayload<T>): Promise<ResponsePayloads[T]> {
    if (this.#ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error(`signaling is not open (${type})`));
    const id = this.#nextId++;
    return new Promise<ResponsePayloads[T]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${type} was not answered within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.#pending.set(id, { type, resolve: resolve as (payload: unknown) => void, reject, timer });
      this.#ws.send(JSON.stringify({ type, id, payload }));
    });
  }

  /** Sends `leave` (best effort) and closes the socket; resolves once it is closed. */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    if (this.#ws.readyState === WebSocket.OPEN) {
      await Promise.race([this.request('leave', {} as RequestPayload<'leave'>).catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
    }
    if (!this.#isClosed) this.#ws.close(1000);
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 2000))]);
    if (!this.#isClosed) this.#ws.terminate();
  }
}
