import { Type } from '@sinclair/typebox';
import { CreateEndpointBody, DeliverySchema, EndpointSchema, PatchEndpointBody, type WebhookEndpointService } from '../../webhooks/index.ts';
import { ListEnvelope, PageQuery, Strict, Ulid, paginate } from '../../shared/schema.ts';
import { defineRoute, ok, type AnyRoute } from '../types.ts';

const EndpointEnvelope = Type.Object({ endpoint: EndpointSchema });
const EndpointParams = Strict({ id: Ulid });
const DeliveryParams = Strict({ id: Ulid, delivery_id: Ulid });
const DeliveryStatus = Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]);

/** The webhook admin API (docs/webhooks.md, "Endpoints"): the API key or an admin token. */
export function webhookEndpointRoutes(deps: { endpoints: WebhookEndpointService }): AnyRoute[] {
  const { endpoints } = deps;
  return [
    defineRoute({
      method: 'post', path: '/v1/webhook-endpoints', summary: 'Add a webhook endpoint; the answer carries its signing secret, shown only this once', tags: ['webhooks'], auth: 'admin',
      body: CreateEndpointBody,
      responses: { 201: { description: 'Created', schema: EndpointEnvelope } },
      handler: async ({ body }) => ok({ endpoint: await endpoints.create(body) }, 201),
    }),
    defineRoute({
      method: 'get', path: '/v1/webhook-endpoints', summary: 'Webhook endpoints, oldest first (without secrets)', tags: ['webhooks'], auth: 'admin',
      query: Strict({ ...PageQuery }),
      responses: { 200: { description: 'A page of endpoints', schema: ListEnvelope(EndpointSchema) } },
      handler: async ({ query }) => {
        const page = query.page ?? 1;
        const perPage = query.per_page ?? 20;
        const { rows, total } = await endpoints.list(page, perPage);
        return ok(paginate(rows, page, perPage, total));
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/webhook-endpoints/{id}', summary: 'One webhook endpoint (without its secret)', tags: ['webhooks'], auth: 'admin',
      params: EndpointParams,
      responses: { 200: { description: 'The endpoint', schema: EndpointEnvelope } },
      handler: async ({ params }) => ok({ endpoint: await endpoints.get(params.id) }),
    }),
    defineRoute({
      method: 'patch', path: '/v1/webhook-endpoints/{id}', summary: 'Change an endpoint: url, events (null: all), description, enabled', tags: ['webhooks'], auth: 'admin',
      params: EndpointParams,
      body: PatchEndpointBody,
      responses: { 200: { description: 'The endpoint', schema: EndpointEnvelope } },
      handler: async ({ params, body }) => ok({ endpoint: await endpoints.patch(params.id, body) }),
    }),
    defineRoute({
      method: 'delete', path: '/v1/webhook-endpoints/{id}', summary: 'Delete an endpoint with its deliveries', tags: ['webhooks'], auth: 'admin',
      params: EndpointParams,
      responses: { 204: { description: 'Deleted' } },
      handler: async ({ params }) => {
        await endpoints.delete(params.id);
        return { status: 204 };
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/webhook-endpoints/{id}/deliveries', summary: 'The endpoint\u2019s deliveries, newest first', tags: ['webhooks'], auth: 'admin',
      params: EndpointParams,
      query: Strict({ ...PageQuery, status: Type.Optional(DeliveryStatus) }),
      responses: { 200: { description: 'A page of deliveries', schema: ListEnvelope(DeliverySchema) } },
      handler: async ({ params, query }) => {
        const page = query.page ?? 1;
        const perPage = query.per_page ?? 20;
        const { rows, total } = await endpoints.deliveries(params.id, page, perPage, query.status);
        return ok(paginate(rows, page, perPage, total));
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/replay', summary: 'Send a delivery again (same event id and body, freshly signed)', tags: ['webhooks'], auth: 'admin',
      params: DeliveryParams,
      responses: { 202: { description: 'Queued', schema: Type.Object({ delivery: DeliverySchema }) } },
      handler: async ({ params }) => ok({ delivery: await endpoints.replay(params.id, params.delivery_id) }, 202),
    }),
  ];
}
