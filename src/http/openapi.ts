import type { TSchema } from '@sinclair/typebox';
import { TypeGuard } from '@sinclair/typebox';
import { ErrorEnvelope } from '../shared/schema.ts';
import type { RouteDefinition } from './types.ts';

/** TypeBox schemas are JSON Schema; a JSON round trip drops TypeBox's symbol keys. */
function plain(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

function parametersOf(route: RouteDefinition): unknown[] {
  const parameters: unknown[] = [];
  const pathNames = [...route.path.matchAll(/\{([a-z_]+)\}/gi)].map((m) => m[1]!);
  for (const name of pathNames) {
    const schema = route.params && TypeGuard.IsObject(route.params) ? route.params.properties[name] : undefined;
    parameters.push({ name, in: 'path', required: true, schema: schema ? plain(schema) : { type: 'string' } });
  }
  if (route.query && TypeGuard.IsObject(route.query)) {
    const required = new Set(route.query.required ?? []);
    for (const [name, schema] of Object.entries(route.query.properties)) {
      parameters.push({ name, in: 'query', required: required.has(name), schema: plain(schema) });
    }
  }
  if (route.method === 'post') {
    parameters.push({
      name: 'X-Idempotency-Key',
      in: 'header',
      required: false,
      description: 'Replays the first response for 24 h; a different body with the same key gives 409 idempotency_conflict.',
      schema: { type: 'string', maxLength: 255 },
    });
  }
  return parameters;
}

export function buildOpenApi(routes: readonly RouteDefinition[], info: { version: string; serverUrl?: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.schema ? { content: { 'application/json': { schema: plain(response.schema) } } } : {}),
      };
    }
    responses.default = { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    paths[route.path] ??= {};
    paths[route.path]![route.method] = {
      operationId: `${route.method}${route.path.replace(/[{}]/g, '').replace(/[/_-](\w)/g, (_m, c: string) => c.toUpperCase())}`,
      summary: route.summary,
      tags: route.tags,
      security: route.auth === 'none' ? [] : route.auth === 'signaling' ? [{ signalingToken: [] }] : [{ bearerAuth: [] }, { apiKey: [] }],
      parameters: parametersOf(route),
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: plain(route.body) } } } } : {}),
      ...(route.rawBodyType ? { requestBody: { required: true, content: { [route.rawBodyType]: { schema: { type: 'string' } } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'callplane API', version: info.version, description: 'Self-hosted media plane: REST API. Errors use {"error": {"code", "message", "details"}}.' },
    ...(info.serverUrl ? { servers: [{ url: info.serverUrl }] } : {}),
    paths,
    components: {
      schemas: { Error: plain(ErrorEnvelope) },
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
        signalingToken: { type: 'http', scheme: 'bearer', description: 'A signaling token (st_…), single use: WHIP/WHEP (docs/whip-whep.md)' },
      },
    },
  };
}
