/**
 * The user WebSocket (docs/api.md, "User WebSocket"): call invites and call state changes for the signed-in user.
 * Reconnects with backoff while the page is signed in.
 */
import type { UserEventEnvelope } from '../protocol/user-events.ts';

export class UserSocket {
  private socket: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private timer: number | null = null;
  connected = false;

  constructor(
    private readonly url: string,
    private readonly onEvent: (event: UserEventEnvelope) => void,
    private readonly onState: (connected: boolean) => void,
  ) {
    this.open();
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
        const envelope = JSON.parse(String(message.data)) as UserEventEnvelope;
        if (envelope && typeof envelope.event?.name === 'string') this.onEvent(envelope);
      } catch {
        console.warn('user socket: ignoring a frame that is not JSON');
      }
    });
    socket.addEventListener('close', (event) => {
      this.connected = false;
      this.onState(false);
      // 4001: the access token was refused; retrying with it cannot help.
      if (this.stopped || event.code === 4001) return;
      const delay = Math.min(500 * 2 ** this.attempt++, 10_000);
      this.timer = window.setTimeout(() => this.open(), delay);
    });
  }
}
