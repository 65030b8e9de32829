import { Type } from '@sinclair/typebox';
import type { Registry } from 'prom-client';
import { defineRoute, ok, type AnyRoute } from '../types.ts';

export interface ReadinessComponent {
  name: string;
  ok: boolean;
  detail?: string;
  [extra: string]: unknown;
}

/** Each check reports one or more components (the media pool reports one per worker). */
export type ReadinessCheck = () => Promise<ReadinessComponent[]>;

const CHECK_TIMEOUT_MS = 3000;

async function runCheck(name: string, check: ReadinessCheck): Promise<ReadinessComponent[]> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      check(),
      new Promise<ReadinessComponent[]>((resolve) => {
        timer = setTimeout(() => resolve([{ name, ok: false, detail: `no answer within ${CHECK_TIMEOUT_MS} ms` }]), CHECK_TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    return [{ name, ok: false, detail: (error as Error).message }];
  } finally {
    clearTimeout(timer);
  }
}

export function opsRoutes(deps: {
  registry: Registry;
  checks: Record<string, ReadinessCheck>;
  openapi: () => Record<string, unknown>;
  jwks: () => unknown;
  rtpCapabilities: () => unknown;
  isShuttingDown: () => boolean;
}): AnyRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/healthz',
      summary: 'Liveness: the process is up',
      tags: ['ops'],
      auth: 'none',
      responses: { 200: { description: 'Up', schema: Type.Object({ status: Type.Literal('ok') }) } },
      handler: async () => ok({ status: 'ok' }),
    }),
    defineRoute({
      method: 'get',
      path: '/readyz',
      summary: 'Readiness: database, every media worker and storage',
      tags: ['ops'],
      auth: 'none',
      responses: { 200: { description: 'Ready' }, 503: { description: 'Not ready; see components' } },
      handler: async () => {
        const entries = await Promise.all(Object.entries(deps.checks).map(async ([name, check]) => [name, await runCheck(name, check)] as const));
        const components = Object.fromEntries(entries);
        const ready = !deps.isShuttingDown() && entries.every(([, parts]) => parts.length > 0 && parts.every((p) => p.ok));
        return ok({ status: ready ? 'ready' : 'not_ready', shutting_down: deps.isShuttingDown(), components }, ready ? 200 : 503);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/metrics',
      summary: 'Prometheus metrics',
      tags: ['ops'],
      auth: 'none',
      responses: { 200: { description: 'Prometheus text exposition format' } },
      handler: async () => ({ status: 200, text: { contentType: deps.registry.contentType, content: await deps.registry.metrics() } }),
    }),
    defineRoute({
      method: 'get',
      path: '/v1/openapi.json',
      summary: 'This API as OpenAPI 3.1',
      tags: ['ops'],
      auth: 'none',
      responses: { 200: { description: 'OpenAPI document' } },
      handler: async () => ok(deps.openapi()),
    }),
    defineRoute({
      method: 'get',
      path: '/.well-known/jwks.json',
      summary: 'Public keys that verify this server\'s access tokens',
      tags: ['ops'],
      auth: 'none',
      responses: { 200: { description: 'JWK set' } },
      handler: async () => ok(deps.jwks()),
    }),
    defineRoute({
      method: 'get',
      path: '/v1/media/rtp-capabilities',
      // Public and the same for every call: a client may load its Device before it joins (docs/api.md).
      summary: 'The RTP capabilities every call router has (the same as in the signaling welcome)',
      tags: ['ops'],
      auth: 'none',
      responses: { 200: { description: 'mediasoup RtpCapabilities', schema: Type.Object({ rtp_capabilities: Type.Unknown() }) } },
      handler: async () => ok({ rtp_capabilities: deps.rtpCapabilities() }),
    }),
  ];
}
