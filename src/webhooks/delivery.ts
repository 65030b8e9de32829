/**
 * Delivers webhook streams (docs/webhooks.md). A stream is one call's pending deliveries to one
 * endpoint; its job (WEBHOOK_DELIVER, in a graphile-worker queue of its own, so never two at once)
 * sends them one at a time in the order the events were recorded. A failed attempt schedules the
 * stream again at its backoff and stops there: the call's later events wait, other calls go on.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import pLimit, { type LimitFunction } from 'p-limit';
import { Webhook } from 'standardwebhooks';
import type { Database } from '../db/database.ts';
import type { JobQueue } from '../jobs/index.ts';
import type { Logger } from '../shared/logger.ts';
import { nextAttemptAt, type RetryPolicy } from './backoff.ts';
import { queueStream, type DeliveryStream } from './outbox.ts';
import { guardedLookup, refusedLiteral } from './targets.ts';

export interface DeliverySettings {
  attemptTimeoutMs: number;
  retry: RetryPolicy;
  /** Deliveries to one endpoint in flight at once (over all its calls). */
  concurrencyPerEndpoint: number;
  allowPrivateTargets: boolean;
  /** At most this much of a receiver's answer is read (it is only kept for the delivery log). */
  maxResponseBytes: number;
}

export interface DeliveryMetrics {
  attempted(endpointId: string, outcome: 'delivered' | 'retry' | 'failed'): void;
  /** Seconds from the event's commit to its acknowledged delivery. */
  delivered(endpointId: string, latencySeconds: number): void;
}

/** What one attempt came to: an HTTP status, or no answer (and why). */
export type AttemptResult = { status: number } | { status: null; error: string };

interface Head {
  id: string;
  event_id: string;
  body: string;
  attempts: number;
  next_attempt_at: Date | null;
  first_attempt_at: Date | null;
  created_at: Date;
}

export class WebhookDeliverer {
  readonly #limits = new Map<string, LimitFunction>();
  readonly #stopping = new AbortController();

  constructor(private readonly deps: { db: Database; jobs: JobQueue; logger: Logger; settings: DeliverySettings; metrics?: DeliveryMetrics }) {}

  /** Graceful shutdown: attempts in flight are cut off and their streams released to the next start. */
  stop(): void {
    this.#stopping.abort();
  }

  /** The WEBHOOK_DELIVER job: sends the stream's deliveries in order until one fails or none is left. */
  async drain(stream: DeliveryStream): Promise<void> {
    const { db } = this.deps;
    for (;;) {
      if (this.#stopping.signal.aborted) return this.release(stream);
      const endpoint = await db.selectFrom('webhook_endpoints').select(['id', 'url', 'secret', 'enabled']).where('id', '=', stream.endpointId).executeTakeFirst();
      // A deleted endpoint took its deliveries with it; a disabled one keeps them until it is enabled again.
      if (!endpoint || !endpoint.enabled) return;
      const head = await this.head(stream);
      if (!head) return;
      if (head.next_attempt_at && head.next_attempt_at.getTime() > Date.now()) {
        await queueStream(this.deps.jobs, db, stream, head.next_attempt_at);
        return;
      }
      const firstAttemptAt = head.first_attempt_at ?? new Date();
      const result = await this.limitFor(endpoint.id)(() => this.attempt(endpoint.url, endpoint.secret, head));
      if (result.status === null && this.#stopping.signal.aborted) return this.release(stream);
      const delivered = result.status !== null && result.status >= 200 && result.status < 300;
      const now = Date.now();
      const attempts = head.attempts + 1;
      const retryAt = delivered ? null : nextAttemptAt(this.deps.settings.retry, attempts, firstAttemptAt.getTime(), now);
      const status = delivered ? 'delivered' : retryAt === null ? 'failed' : 'pending';
      await db
        .updateTable('webhook_deliveries')
        .set({
          status,
          attempts,
          first_attempt_at: firstAttemptAt,
          last_status_code: result.status,
          last_error: result.status === null ? result.error.slice(0, 500) : delivered ? null : `HTTP ${result.status}`,
          next_attempt_at: retryAt === null ? null : new Date(retryAt),
          delivered_at: delivered ? new Date(now) : null,
        })
        .where('id', '=', head.id)
        .execute();
      this.deps.metrics?.attempted(endpoint.id, delivered ? 'delivered' : status === 'failed' ? 'failed' : 'retry');
      if (delivered) this.deps.metrics?.delivered(endpoint.id, (now - head.created_at.getTime()) / 1000);
      if (status === 'failed') this.deps.logger.warn({ endpointId: endpoint.id, eventId: head.event_id, attempts }, 'webhooks: a delivery failed for good; the call\u2019s next events go on');
      if (status === 'pending') {
        await queueStream(this.deps.jobs, db, stream, new Date(retryAt!));
        return;
      }
    }
  }

  /** The stream's first pending delivery, in the order its call's events were recorded. */
  private head(stream: DeliveryStream): Promise<Head | undefined> {
    return this.deps.db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhook_events as e', 'e.id', 'd.event_id')
      .select(['d.id', 'd.event_id', 'e.body', 'd.attempts', 'd.next_attempt_at', 'd.first_attempt_at', 'd.created_at'])
      .where('d.endpoint_id', '=', stream.endpointId)
      .where('d.call_id', '=', stream.callId)
      .where('d.status', '=', 'pending')
      .orderBy('d.seq')
      .limit(1)
      .executeTakeFirst();
  }

  /** Shutting down: the stream's job runs again at once in the next process (its deliveries stay pending). */
  private async release(stream: DeliveryStream): Promise<void> {
    await queueStream(this.deps.jobs, this.deps.db, stream);
  }

  private limitFor(endpointId: string): LimitFunction {
    let limit = this.#limits.get(endpointId);
    if (!limit) {
      limit = pLimit(this.deps.settings.concurrencyPerEndpoint);
      this.#limits.set(endpointId, limit);
    }
    return limit;
  }

  /** One signed POST; the body is the stored one, byte for byte, on every attempt. */
  async attempt(rawUrl: string, secret: string, head: Pick<Head, 'event_id' | 'body'>): Promise<AttemptResult> {
    const { settings } = this.deps;
    const url = new URL(rawUrl);
    const literal = refusedLiteral(url, settings.allowPrivateTargets);
    if (literal) return { status: null, error: `refused: ${literal}` };
    const sentAt = new Date();
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'callplane-webhooks',
      'webhook-id': head.event_id,
      'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(head.event_id, sentAt, head.body),
    };
    const signal = AbortSignal.any([this.#stopping.signal, AbortSignal.timeout(settings.attemptTimeoutMs)]);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const finish = (result: AttemptResult): void => {
        if (settled) return;
        settled = true;
        resolve(result);
      };
      const req = send(url, { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(head.body) }, lookup: guardedLookup(settings.allowPrivateTargets), signal }, (res: IncomingMessage) => {
        // Redirects are answers like any other non-2xx: never followed to another host.
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > settings.maxResponseBytes) res.destroy();
        });
        res.on('end', () => finish({ status: res.statusCode ?? 0 }));
        res.on('close', () => finish({ status: res.statusCode ?? 0 }));
        res.on('error', () => finish({ status: res.statusCode ?? 0 }));
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        const why = signal.aborted ? (this.#stopping.signal.aborted ? 'shutting down' : `no answer in ${settings.attemptTimeoutMs} ms`) : `${error.code ?? 'error'}: ${error.message}`;
        finish({ status: null, error: why });
      });
      req.end(head.body);
    });
  }
}
