/**
 * The webhook outbox (docs/webhooks.md): an event is recorded in the transaction of the change it
 * reports, together with one delivery row per subscribed endpoint and the job that delivers them.
 * Nothing is sent from here; a crash after the commit leaves rows and a job that the next process runs.
 */
import type { DbHandle, Tx } from '../db/database.ts';
import { taskKind, type JobQueue } from '../jobs/index.ts';
import type { RecordedEvent } from '../protocol/webhooks.ts';
import type { Clock } from '../shared/clock.ts';
import { newId } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';

/** One stream: the pending deliveries of one call to one endpoint, sent one at a time in order. */
export interface DeliveryStream {
  endpointId: string;
  callId: string;
}

export const WEBHOOK_DELIVER = taskKind<DeliveryStream>('webhook_deliver');

/** The job key and queue name of a stream: graphile-worker runs a named queue's jobs one at a time. */
export function streamKey(stream: DeliveryStream): string {
  return `webhook:${stream.endpointId}:${stream.callId}`;
}

/** Queues the stream's job now (or at `runAt`); a job already waiting keeps its earlier run time. */
export async function queueStream(jobs: JobQueue, db: DbHandle, stream: DeliveryStream, runAt?: Date): Promise<void> {
  const key = streamKey(stream);
  await jobs.add(db, WEBHOOK_DELIVER, stream, { jobKey: key, queueName: key, jobKeyMode: 'preserve_run_at', ...(runAt ? { runAt } : {}) });
}

export interface RecordOptions {
  /** Record only if the call has no event of this type yet (call.active). */
  once?: boolean;
}

/** Where domain modules record call events (the EventOutbox port of calls/ports.ts). */
export class WebhookOutbox {
  constructor(private readonly deps: { clock: Clock; jobs: JobQueue; logger: Logger; maxBodyBytes: number }) {}

  /** Records `event` inside `tx`; false when `once` found one already. */
  async record(tx: Tx, event: RecordedEvent, options: RecordOptions = {}): Promise<boolean> {
    const callId = event.data.call_id;
    // Numbering locks the call row until the commit: a call's events commit in the order of their numbers.
    const counted = await tx
      .updateTable('calls')
      .set((eb) => ({ event_seq: eb('event_seq', '+', 1) }))
      .where('id', '=', callId)
      .returning('event_seq')
      .executeTakeFirst();
    if (!counted) throw new Error(`webhooks: cannot record ${event.type} for unknown call ${callId}`);
    if (options.once) {
      const earlier = await tx.selectFrom('webhook_events').select('id').where('call_id', '=', callId).where('type', '=', event.type).executeTakeFirst();
      if (earlier) return false;
    }
    const recordedAt = this.deps.clock.now();
    const body = JSON.stringify({ type: event.type, timestamp: recordedAt.toISOString(), data: event.data });
    if (Buffer.byteLength(body) > this.deps.maxBodyBytes) {
      // Bodies are bounded by construction; a larger one is a bug to fix, still delivered rather than lost.
      this.deps.logger.error({ callId, type: event.type, bytes: Buffer.byteLength(body) }, 'webhooks: an event body exceeds webhooks.max_body_bytes');
    }
    const eventId = `evt_${newId()}`;
    await tx.insertInto('webhook_events').values({ id: eventId, call_id: callId, seq: counted.event_seq, type: event.type, body, recorded_at: recordedAt }).execute();

    const endpoints = await tx.selectFrom('webhook_endpoints').select(['id', 'events']).where('enabled', '=', true).execute();
    const subscribed = endpoints.filter((endpoint) => endpoint.events === null || endpoint.events.includes(event.type));
    if (subscribed.length === 0) return true;
    await tx
      .insertInto('webhook_deliveries')
      .values(subscribed.map((endpoint) => ({ id: newId(), endpoint_id: endpoint.id, event_id: eventId, call_id: callId, seq: counted.event_seq, status: 'pending' as const })))
      .execute();
    for (const endpoint of subscribed) await queueStream(this.deps.jobs, tx, { endpointId: endpoint.id, callId });
    return true;
  }
}
