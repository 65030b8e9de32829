/**
 * Webhook endpoints (docs/webhooks.md, "Endpoints"): the receivers of the config file and of the
 * admin API, their deliveries, and replay. A secret is shown once, when the endpoint is created.
 */
import { randomBytes } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { WebhookDeliveryRow, WebhookDeliveryStatus, WebhookEndpointRow } from '../db/schema.ts';
import type { JobQueue } from '../jobs/index.ts';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from '../protocol/webhooks.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';
import { Strict } from '../shared/schema.ts';
import { queueStream } from './outbox.ts';
import { checkEndpointUrl } from './targets.ts';

const EventName = Type.Union(WEBHOOK_EVENT_TYPES.map((name) => Type.Literal(name)));
const Url = Type.String({ minLength: 1, maxLength: 2048, format: 'uri' });
const Description = Type.String({ maxLength: 500 });
const Time = Type.String({ format: 'date-time' });
const NullableTime = Type.Union([Time, Type.Null()]);

export const CreateEndpointBody = Strict({
  url: Url,
  /** Default: every event. */
  events: Type.Optional(Type.Array(EventName, { minItems: 1, uniqueItems: true })),
  description: Type.Optional(Description),
});
export const PatchEndpointBody = Strict({
  url: Type.Optional(Url),
  events: Type.Optional(Type.Union([Type.Array(EventName, { minItems: 1, uniqueItems: true }), Type.Null()])),
  description: Type.Optional(Type.Union([Description, Type.Null()])),
  enabled: Type.Optional(Type.Boolean()),
});
export type CreateEndpointInput = Static<typeof CreateEndpointBody>;
export type PatchEndpointInput = Static<typeof PatchEndpointBody>;

export const EndpointSchema = Type.Object(
  {
    id: Type.String(),
    url: Type.String(),
    events: Type.Array(Type.String()),
    description: Type.Union([Type.String(), Type.Null()]),
    enabled: Type.Boolean(),
    source: Type.Union([Type.Literal('api'), Type.Literal('config')]),
    created_at: Time,
    updated_at: Time,
    /** Only in the answer to POST /v1/webhook-endpoints. */
    secret: Type.Optional(Type.String()),
  },
  { title: 'WebhookEndpoint' },
);
export type EndpointDto = Static<typeof EndpointSchema>;

export const DeliverySchema = Type.Object(
  {
    id: Type.String(),
    event_id: Type.String(),
    type: Type.String(),
    call_id: Type.String(),
    status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
    attempts: Type.Integer(),
    last_status_code: Type.Union([Type.Integer(), Type.Null()]),
    last_error: Type.Union([Type.String(), Type.Null()]),
    next_attempt_at: NullableTime,
    delivered_at: NullableTime,
    created_at: Time,
  },
  { title: 'WebhookDelivery' },
);
export type DeliveryDto = Static<typeof DeliverySchema>;

/** A config-file endpoint: its secret is the operator's (whsec_ + base64). */
export interface ConfiguredEndpoint {
  url: string;
  secret: string;
  events?: string[] | null;
  description?: string | null;
}

/** Standard Webhooks secrets: whsec_ + base64 of 24 random bytes. */
export function newEndpointSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

function toEndpointDto(row: WebhookEndpointRow, withSecret = false): EndpointDto {
  return {
    id: row.id,
    url: row.url,
    events: row.events ?? [...WEBHOOK_EVENT_TYPES],
    description: row.description,
    enabled: row.enabled,
    source: row.source,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    ...(withSecret ? { secret: row.secret } : {}),
  };
}

function toDeliveryDto(row: WebhookDeliveryRow & { type: string }): DeliveryDto {
  return {
    id: row.id,
    event_id: row.event_id,
    type: row.type,
    call_id: row.call_id,
    status: row.status,
    attempts: row.attempts,
    last_status_code: row.last_status_code,
    last_error: row.last_error,
    next_attempt_at: row.next_attempt_at?.toISOString() ?? null,
    delivered_at: row.delivered_at?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
  };
}

export class WebhookEndpointService {
  constructor(private readonly deps: { db: Database; jobs: JobQueue; logger: Logger; allowPrivateTargets: boolean }) {}

  async create(input: CreateEndpointInput): Promise<EndpointDto> {
    await checkEndpointUrl(input.url, this.deps.allowPrivateTargets);
    const row = await this.deps.db
      .insertInto('webhook_endpoints')
      .values({ id: newId(), url: input.url, secret: newEndpointSecret(), events: input.events ? JSON.stringify(input.events) : null, description: input.description ?? null, source: 'api', updated_at: new Date() })
      .returningAll()
      .executeTakeFirstOrThrow();
    this.deps.logger.info({ endpointId: row.id, url: row.url }, 'webhooks: endpoint created');
    return toEndpointDto(row, true);
  }

  async list(page: number, perPage: number): Promise<{ rows: EndpointDto[]; total: number }> {
    const [rows, count] = await Promise.all([
      this.deps.db.selectFrom('webhook_endpoints').selectAll().orderBy('created_at').orderBy('id').limit(perPage).offset((page - 1) * perPage).execute(),
      this.deps.db.selectFrom('webhook_endpoints').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { rows: rows.map((row) => toEndpointDto(row)), total: Number(count.n) };
  }

  async get(id: string): Promise<EndpointDto> {
    return toEndpointDto(await this.find(id));
  }

  async patch(id: string, input: PatchEndpointInput): Promise<EndpointDto> {
    const current = await this.find(id);
    if (current.source === 'config') throw new AppError('invalid_state', 'This endpoint comes from the config file (webhooks.endpoints); change it there');
    if (input.url !== undefined) await checkEndpointUrl(input.url, this.deps.allowPrivateTargets);
    const row = await this.deps.db
      .updateTable('webhook_endpoints')
      .set({
        ...(input.url !== undefined ? { url: input.url } : {}),
        ...(input.events !== undefined ? { events: input.events === null ? null : JSON.stringify(input.events) } : {}),
        ...(input.description !== undefined ? { description: input.description } : {}),
        ...(input.enabled !== undefined ? { enabled: input.enabled } : {}),
        updated_at: new Date(),
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    if (input.enabled === true && !current.enabled) await this.resume(id);
    return toEndpointDto(row);
  }

  async delete(id: string): Promise<void> {
    const current = await this.find(id);
    if (current.source === 'config') throw new AppError('invalid_state', 'This endpoint comes from the config file (webhooks.endpoints); remove it there');
    await this.deps.db.deleteFrom('webhook_endpoints').where('id', '=', id).execute();
    this.deps.logger.info({ endpointId: id }, 'webhooks: endpoint deleted with its deliveries');
  }

  /** Newest first; `status` narrows the list. */
  async deliveries(id: string, page: number, perPage: number, status?: WebhookDeliveryStatus): Promise<{ rows: DeliveryDto[]; total: number }> {
    await this.find(id);
    let query = this.deps.db.selectFrom('webhook_deliveries as d').innerJoin('webhook_events as e', 'e.id', 'd.event_id').where('d.endpoint_id', '=', id);
    if (status) query = query.where('d.status', '=', status);
    const [rows, count] = await Promise.all([
      query.selectAll('d').select('e.type').orderBy('d.id', 'desc').limit(perPage).offset((page - 1) * perPage).execute(),
      query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { rows: rows.map(toDeliveryDto), total: Number(count.n) };
  }

  /**
   * Sends a delivery again, whatever its state: it becomes pending (attempts and 24 h restart) and
   * its stream's job is queued. It goes out before its call's later pending events, as recorded.
   */
  async replay(id: string, deliveryId: string): Promise<DeliveryDto> {
    await this.find(id);
    const row = await this.deps.db.transaction().execute(async (tx) => {
      const updated = await tx
        .updateTable('webhook_deliveries')
        .set({ status: 'pending', attempts: 0, first_attempt_at: null, next_attempt_at: null, delivered_at: null, last_error: null, last_status_code: null })
        .where('id', '=', deliveryId)
        .where('endpoint_id', '=', id)
        .returningAll()
        .executeTakeFirst();
      if (!updated) throw new AppError('not_found', `Delivery ${deliveryId} of endpoint ${id} not found`);
      await queueStream(this.deps.jobs, tx, { endpointId: id, callId: updated.call_id });
      const event = await tx.selectFrom('webhook_events').select('type').where('id', '=', updated.event_id).executeTakeFirstOrThrow();
      return { ...updated, type: event.type };
    });
    return toDeliveryDto(row);
  }

  /**
   * The config file's endpoints become rows (matched by URL): secrets and filters follow the file on
   * every start; one removed from the file is disabled, keeping its history.
   */
  async syncConfigured(configured: readonly ConfiguredEndpoint[]): Promise<void> {
    for (const endpoint of configured) await checkEndpointUrl(endpoint.url, this.deps.allowPrivateTargets);
    const urls = configured.map((e) => e.url);
    await this.deps.db.transaction().execute(async (tx) => {
      for (const endpoint of configured) {
        const events = endpoint.events && endpoint.events.length > 0 ? JSON.stringify(endpoint.events) : null;
        await tx
          .insertInto('webhook_endpoints')
          .values({ id: newId(), url: endpoint.url, secret: endpoint.secret, events, description: endpoint.description ?? null, source: 'config', updated_at: new Date() })
          .onConflict((oc) =>
            oc
              .column('url')
              .where('source', '=', 'config')
              .doUpdateSet({ secret: endpoint.secret, events, description: endpoint.description ?? null, enabled: true, updated_at: new Date() }),
          )
          .execute();
      }
      let removed = tx.updateTable('webhook_endpoints').set({ enabled: false, updated_at: new Date() }).where('source', '=', 'config').where('enabled', '=', true);
      if (urls.length > 0) removed = removed.where('url', 'not in', urls);
      await removed.execute();
    });
    const rows = await this.deps.db.selectFrom('webhook_endpoints').select('id').where('source', '=', 'config').where('enabled', '=', true).execute();
    for (const row of rows) await this.resume(row.id);
  }

  /** Endpoints with their backlog (pending deliveries), for `callplane doctor` and the metrics. */
  async backlog(): Promise<Array<{ id: string; url: string; enabled: boolean; pending: number; oldestPendingAt: Date | null }>> {
    const rows = await this.deps.db
      .selectFrom('webhook_endpoints as w')
      .leftJoin('webhook_deliveries as d', (join) => join.onRef('d.endpoint_id', '=', 'w.id').on('d.status', '=', 'pending'))
      .select(['w.id', 'w.url', 'w.enabled', sql<number>`count(d.id)`.as('pending'), sql<Date | null>`min(d.created_at)`.as('oldest')])
      .groupBy(['w.id', 'w.url', 'w.enabled'])
      .orderBy('w.created_at')
      .execute();
    return rows.map((r) => ({ id: r.id, url: r.url, enabled: r.enabled, pending: Number(r.pending), oldestPendingAt: r.oldest ? new Date(r.oldest) : null }));
  }

  /** Queues every stream of the endpoint that has pending deliveries (enabled again, or started). */
  private async resume(id: string): Promise<void> {
    const streams = await this.deps.db.selectFrom('webhook_deliveries').select('call_id').distinct().where('endpoint_id', '=', id).where('status', '=', 'pending').execute();
    for (const { call_id: callId } of streams) await queueStream(this.deps.jobs, this.deps.db, { endpointId: id, callId });
  }

  private async find(id: string): Promise<WebhookEndpointRow> {
    const row = await this.deps.db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new AppError('not_found', `Webhook endpoint ${id} not found`);
    return row;
  }
}

export type { WebhookEventType };
