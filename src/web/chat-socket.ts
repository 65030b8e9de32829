/**
 * The chat WebSocket from the browser (docs/api.md, "Chat WebSocket"): the frames it lists, with a
 * reconnect (backoff) while the page is signed in. Frames sent while it is down are refused, so
 * the caller can fall back to REST.
 */
import type { ChatServerFrame } from '../protocol/chat.ts';

export class ChatSocket {
  #socket: WebSocket | null = null;
  #stopped = false;
  #attempt = 0;
  #timer: number | null = null;

  constructor(
    private readonly url: string,
    private readonly onFrame: (frame: ChatServerFrame) => void,
    private readonly onState: (open: boolean) => void,
  ) {
    this.#open();
  }

  get isOpen(): boolean {
    return this.#socket?.readyState === WebSocket.OPEN;
  }

  /** Sends a client frame; false when the socket is not open. */
  send(frame: { type: 'message' | 'typing' | 'read'; conversation_id: string; body?: string; client_id?: string }): boolean {
    if (!this.isOpen) return false;
    this.#socket!.send(JSON.stringify(frame));
    return true;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#socket?.close(1000, 'signed out');
  }

  #open(): void {
    const socket = new WebSocket(this.url);
    this.#socket = socket;
    socket.addEventListener('open', () => {
      this.#attempt = 0;
      this.onState(true);
    });
    socket.addEventListener('message', (message) => {
      try {
        const frame = JSON.parse(String(message.data)) as ChatServerFrame;
        if (frame && typeof frame.type === 'string') this.onFrame(frame);
      } catch {
        console.warn('chat socket: ignoring a frame that is not JSON');
      }
    });
    socket.addEventListener('close', (event) => {
      this.onState(false);
      if (this.#stopped || event.code === 4001) return; // a refused token stays refused
      const delay = Math.min(500 * 2 ** this.#attempt++, 10_000);
      this.#timer = window.setTimeout(() => this.#open(), delay);
    });
  }
}
