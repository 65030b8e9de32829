/**
 * A request/response client for the SFU signaling socket (src/protocol/signaling.ts; docs/api.md, "Signaling WebSocket").
 * Only types come from the protocol module, so the bundle does not carry its schemas.
 */
import type {
  NotificationPayloads,
  NotificationType,
  RequestPayload,
  RequestType,
  ResponsePayloads,
  SignalCloseCode as ServerCloseCodes,
} from '../protocol/signaling.ts';

/** The server's close codes (kept in step with the protocol module by the `satisfies` check). */
export const CloseCode = {
  goingAway: 1001,
  unauthorized: 4001,
  forbidden: 4003,
  flooding: 4008,
  replaced: 4009,
  callEnded: 4010,
  reconnect: 4011,
  left: 4012,
  removed: 4013,
} as const satisfies typeof ServerCloseCodes;

export type Notification = { [K in NotificationType]: { type: K; payload: NotificationPayloads[K] } }[NotificationType];

export class SignalError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SignalError';
  }
}

const REQUEST_TIMEOUT_MS = 15_000;

interface Pending {
  type: string;
  resolve: (payload: unknown) => void;
  reject: (error: Error) => void;
  timer: number;
}

export class SignalingClient {
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedInfo: { code: number; reason: string } | null = null;

  /**
   * @param onNotification every server notification, including `welcome`, in arrival order
   * @param onClose once, when the socket closes (after pending requests were rejected)
   */
  constructor(
    url: string,
    private readonly onNotification: (notification: Notification) => void,
    private readonly onClose: (code: number, reason: string) => void,
  ) {
    this.socket = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.socket.addEventListener('open', () => resolve(), { once: true });
      this.socket.addEventListener('close', (event) => reject(new SignalError('closed', `signaling closed before opening (${event.code})`)), { once: true });
    });
    this.opened.catch(() => undefined);
    this.socket.addEventListener('message', (event) => this.onMessage(event));
    this.socket.addEventListener('close', (event) => {
      this.closedInfo = { code: event.code, reason: event.reason };
      for (const [id, pending] of this.pending) {
        clearTimeout(pending.timer);
        pending.reject(new SignalError('closed', `signaling closed (${event.code}) before ${pending.type} was answered`));
        this.pending.delete(id);
      }
      this.onClose(event.code, event.reason);
    });
  }

  get closed(): boolean {
    return this.closedInfo !== null;
  }

  request<T extends RequestType>(type: T, payload: RequestPayload<T>): Promise<ResponsePayloads[T]> {
    if (this.socket.readyState !== WebSocket.OPEN) return Promise.reject(new SignalError('closed', `signaling is not open (${type})`));
    const id = this.nextId++;
    return new Promise<ResponsePayloads[T]>((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.pending.delete(id);
        reject(new SignalError('timeout', `${type} was not answered within ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { type, resolve: resolve as (payload: unknown) => void, reject, timer });
      this.socket.send(JSON.stringify({ type, id, payload }));
    });
  }

  close(code = 1000, reason = 'client closed'): void {
    if (this.socket.readyState === WebSocket.CONNECTING || this.socket.readyState === WebSocket.OPEN) this.socket.close(code, reason);
  }

  private onMessage(event: MessageEvent): void {
    let frame: { type?: string; id?: number | string; payload?: unknown };
    try {
      frame = JSON.parse(String(event.data)) as typeof frame;
    } catch {
      console.warn('signaling: ignoring a frame that is not JSON');
      return;
    }
    if ((frame.type === 'response' || frame.type === 'error') && frame.id !== undefined) {
      const pending = this.pending.get(Number(frame.id));
      if (!pending) return;
      this.pending.delete(Number(frame.id));
      clearTimeout(pending.timer);
      if (frame.type === 'response') pending.resolve(frame.payload ?? {});
      else {
        const error = (frame.payload ?? {}) as { code?: string; message?: string };
        pending.reject(new SignalError(error.code ?? 'error', `${pending.type}: ${error.message ?? 'failed'}`));
      }
      return;
    }
    if (typeof frame.type === 'string') this.onNotification({ type: frame.type, payload: frame.payload ?? {} } as Notification);
  }
}
