import { Gauge, type Registry } from 'prom-client';
import type { IngressKind } from './session.ts';

/** What the gauge reads at scrape time (IngressSessions implements it). */
export interface IngressMetricsSource {
  count(kind: IngressKind): number;
}

/** Registers `callplane_ingress_sessions{kind="whip"|"whep"}`, filled from `source` at scrape time. */
export function createIngressMetrics(registry: Registry, source: IngressMetricsSource): void {
  new Gauge({
    name: 'callplane_ingress_sessions',
    help: 'Open WHIP (publish) and WHEP (playback) sessions, by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      for (const kind of ['whip', 'whep'] as const) this.set({ kind }, source.count(kind));
    },
  });
}
