/* eslint-disable @typescript-eslint/no-explicit-any -- frames read off the wire are JSON of many shapes */
/**
 * A user-socket client for tests: requests in the handshake's envelope {endpoint, data, event},
 * answers matched by event.id, events waited for by name (each event is handed out once).
 */
import WebSocket from 'ws';

export class UserSocketClient {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Every frame received, in order (replies and events). */
  readonly frames: any[] = [];
  readonly #unclaimed: any[] = [];
  readonly #waiters: Array<{ match: (f: any) => boolean; resolve: (f: any) => void }> = [];
  #next = 1;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('error', () => undefined);
    this.ws.on('message', (raw) => {
      const frame = JSON.parse(String(raw));
      this.frames.push(frame);
      const i = this.#waiters.findIndex((w) => w.match(frame));
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(frame);
      else this.#unclaimed.push(frame);
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    // Open once the server said hello (its presence event): requests are then handled at once.
    this.opened = this.next('presence').then(() => undefined);
  }

  static async connect(baseUrl: string, token: string): Promise<UserSocketClient> {
    const client = new UserSocketClient(`${baseUrl.replace(/^http/, 'ws')}/v1/ws?token=${encodeURIComponent(token)}`);
    await client.opened;
    return client;
  }

  /** The next frame matching (received already or to come). */
  wait(match: (f: any) => boolean, ms = 15_000): Promise<any> {
    const i = this.#unclaimed.findIndex(match);
    if (i >= 0) return Promise.resolve(this.#unclaimed.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${ms} ms; received ${JSON.stringify(this.frames.map((f) => f.event?.name ?? f.event?.id))}`)), ms);
      this.#waiters.push({ match, resolve: (f) => (clearTimeout(timer), resolve(f)) });
    });
  }

  /** The next server event called `name`; resolves with its whole envelope. */
  next(name: string, ms?: number): Promise<any> {
    return this.wait((f) => f.event?.name === name, ms);
  }

  /** Whether an event called `name` arrived and was not yet taken. */
  has(name: string): boolean {
    return this.#unclaimed.some((f) => f.event?.name === name);
  }

  /** Sends a request; resolves with the reply carrying its event.id. */
  ask(endpoint: string, data: unknown = {}): Promise<any> {
    const id = `req-${this.#next++}`;
    this.ws.send(JSON.stringify({ endpoint, data, event: { id, date: Date.now() } }));
    return this.wait((f) => f.event?.id === id && 'error' in f && f.event?.name === undefined);
  }

  /** Sends text as is; resolves with the next reply whose event.id is null. */
  raw(text: string): Promise<any> {
    this.ws.send(text);
    return this.wait((f) => f.event?.id === null);
  }

  close(): void {
    this.ws.close();
  }
}
