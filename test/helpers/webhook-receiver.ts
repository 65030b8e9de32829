/**
 * A webhook receiver for tests: a real HTTP server on loopback that checks every request with the
 * `standardwebhooks` library (the reference implementation of the scheme) and records what came.
 * `respond` decides each answer (503 for a while, a slow answer...); by default 204.
 */
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedWebhook {
  /** The webhook-id header: the event id. */
  id: string;
  timestamp: number;
  signature: string;
  raw: string;
  /** Verified with the endpoint's secret by standardwebhooks. */
  verified: boolean;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: { type: string; timestamp: string; data: any };
  /** What the receiver answered. */
  answered: number;
}

export type Responder = (request: Omit<ReceivedWebhook, 'answered'>) => number | Promise<number>;

export class WebhookReceiver {
  /** Every request, in arrival order (failed attempts included). */
  readonly requests: ReceivedWebhook[] = [];
  readonly #events = new EventEmitter();
  secret: string | null = null;
  respond: Responder = () => 204;

  private constructor(private readonly server: Server) {}

  static async start(): Promise<WebhookReceiver> {
    const server = createServer();
    const receiver = new WebhookReceiver(server);
    server.on('request', (req, res) => {
      void receiver.handle(req).then((status) => {
        res.statusCode = status;
        res.end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  /** Requests the receiver acknowledged (2xx), in arrival order. */
  get acknowledged(): ReceivedWebhook[] {
    return this.requests.filter((r) => r.answered >= 200 && r.answered < 300);
  }

  /** Acknowledged events of one call, in arrival order. */
  ofCall(callId: string): ReceivedWebhook[] {
    return this.acknowledged.filter((r) => r.body.data?.call_id === callId);
  }

  /** Resolves with the acknowledged requests once `accept` holds for them (checked on every request). */
  async until(accept: (acknowledged: ReceivedWebhook[]) => boolean, timeoutMs = 20_000): Promise<ReceivedWebhook[]> {
    if (accept(this.acknowledged)) return this.acknowledged;
    return new Promise((resolve) => {
      const check = (): void => {
        if (!accept(this.acknowledged)) return;
        clearTimeout(timer);
        this.#events.off('request', check);
        resolve(this.acknowledged);
      };
      // On timeout the caller's assertion fails with what did arrive.
      const timer = setTimeout(() => {
        this.#events.off('request', check);
        resolve(this.acknowledged);
      }, timeoutMs);
      this.#events.on('request', check);
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage): Promise<number> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const headers = { 'webhook-id': String(req.headers['webhook-id'] ?? ''), 'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''), 'webhook-signature': String(req.headers['webhook-signature'] ?? '') };
    let verified = false;
    try {
      if (this.secret) {
        new Webhook(this.secret).verify(raw, headers);
        verified = true;
      }
    } catch {
      verified = false;
    }
    let body: ReceivedWebhook['body'];
    try {
      body = JSON.parse(raw);
    } catch {
      body = { type: '', timestamp: '', data: null };
    }
    const request = { id: headers['webhook-id'], timestamp: Number(headers['webhook-timestamp']), signature: headers['webhook-signature'], raw, verified, body };
    const answered = verified ? await this.respond(request) : 401;
    this.requests.push({ ...request, answered });
    this.#events.emit('request');
    return answered;
  }
}
