import { Counter, Gauge, type Registry } from 'prom-client';
import { RequestSchemas } from '../protocol/signaling.ts';

export interface SignalingMetrics {
  socketOpened(): void;
  socketClosed(): void;
  message(type: string): void;
  error(code: string): void;
}

const noop = (): void => undefined;
export const noSignalingMetrics: SignalingMetrics = { socketOpened: noop, socketClosed: noop, message: noop, error: noop };

/** Registers the signaling metrics (README, "Operations": signaling sockets, errors) on `registry`. */
export function createSignalingMetrics(registry: Registry): SignalingMetrics {
  const registers = [registry];
  const sockets = new Gauge({ name: 'callplane_signaling_sockets', help: 'Open SFU signaling WebSockets', registers });
  const messages = new Counter({
    name: 'callplane_signaling_messages_total',
    help: 'Signaling messages received, by request type ("invalid" for anything not a known request)',
    labelNames: ['type'] as const,
    registers,
  });
  const errors = new Counter({ name: 'callplane_signaling_errors_total', help: 'Signaling errors sent to clients, by code', labelNames: ['code'] as const, registers });
  return {
    socketOpened: () => sockets.inc(),
    socketClosed: () => sockets.dec(),
    // Client-chosen strings never become label values: label cardinality stays bounded.
    message: (type) => messages.inc({ type: Object.hasOwn(RequestSchemas, type) ? type : 'invalid' }),
    error: (code) => errors.inc({ code }),
  };
}
