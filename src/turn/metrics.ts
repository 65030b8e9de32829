import { Counter, Gauge, type Registry } from 'prom-client';

/** What the TURN metrics read at scrape time (the embedded engine's counters). */
export interface TurnStatsSource {
  activeAllocations(): number;
  stats(): {
    allocationsTotal: number;
    authFailures: number;
    quotaRefusals: number;
    peerRefusals: number;
    packetsToPeer: number;
    bytesToPeer: number;
    packetsToClient: number;
    bytesToClient: number;
  };
}

export interface TurnMetrics {
  attach(source: TurnStatsSource): void;
  detach(source: TurnStatsSource): void;
  /** Counts one restart of a supervised coturn. */
  engineRestarted(): void;
  engineUp(up: boolean): void;
}

/**
 * TURN metrics (docs/turn.md, "Metrics"). The relay path keeps plain counters; they are copied
 * into these at scrape time, so relaying a packet costs no metrics call.
 */
export function createTurnMetrics(registry: Registry): TurnMetrics {
  let source: TurnStatsSource | null = null;
  const registers = [registry];
  const counterFrom = (name: string, help: string, pick: (s: ReturnType<TurnStatsSource['stats']>) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        if (!source) return;
        this.reset();
        this.inc(pick(source.stats()));
      },
    });
  const directional = (name: string, help: string, toPeer: (s: ReturnType<TurnStatsSource['stats']>) => number, toClient: (s: ReturnType<TurnStatsSource['stats']>) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['direction'] as const,
      registers,
      collect() {
        if (!source) return;
        this.reset();
        const s = source.stats();
        this.inc({ direction: 'to_peer' }, toPeer(s));
        this.inc({ direction: 'to_client' }, toClient(s));
      },
    });

  new Gauge({
    name: 'callplane_turn_allocations',
    help: 'Live TURN allocations on the embedded engine',
    registers,
    collect() {
      this.set(source ? source.activeAllocations() : 0);
    },
  });
  counterFrom('callplane_turn_allocations_total', 'TURN allocations granted', (s) => s.allocationsTotal);
  directional('callplane_turn_relayed_packets_total', 'Datagrams relayed by TURN, by direction', (s) => s.packetsToPeer, (s) => s.packetsToClient);
  directional('callplane_turn_relayed_bytes_total', 'Payload bytes relayed by TURN, by direction', (s) => s.bytesToPeer, (s) => s.bytesToClient);
  counterFrom('callplane_turn_auth_failures_total', 'TURN requests refused for unknown, expired or wrong credentials', (s) => s.authFailures);
  counterFrom('callplane_turn_quota_refusals_total', 'TURN allocations refused by the per-user quota (486)', (s) => s.quotaRefusals);
  counterFrom('callplane_turn_peer_refusals_total', 'TURN permissions and channels refused by the peer policy (403)', (s) => s.peerRefusals);
  const restarts = new Counter({ name: 'callplane_turn_engine_restarts_total', help: 'Restarts of the supervised coturn after it died', registers });
  const up = new Gauge({ name: 'callplane_turn_engine_up', help: '1 while the configured TURN engine is running', registers });

  return {
    attach: (s) => void (source = s),
    detach: (s) => void (source === s ? (source = null) : undefined),
    engineRestarted: () => restarts.inc(),
    engineUp: (value) => up.set(value ? 1 : 0),
  };
}
