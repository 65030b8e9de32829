import { Counter, Gauge, type Registry } from 'prom-client';

/** What one socket kind reports; every series carries `socket` (its declaration's name). */
export interface SocketMetrics {
  opened(): void;
  closed(code: number): void;
  /** A client frame, by the request it named (`invalid` for anything not a known request). */
  message(request: string | undefined): void;
  /** An error frame or refusal sent to a client, by error code. */
  error(code: string): void;
}

const noop = (): void => undefined;
export const noSocketMetrics: SocketMetrics = { opened: noop, closed: noop, message: noop, error: noop };

interface Families {
  sockets: Gauge<'socket'>;
  messages: Counter<'socket' | 'type'>;
  errors: Counter<'socket' | 'code'>;
  closes: Counter<'socket' | 'code'>;
}

/** One set of families per registry: every socket kind shares them, told apart by the label. */
const familiesByRegistry = new WeakMap<Registry, Families>();

function families(registry: Registry): Families {
  let found = familiesByRegistry.get(registry);
  if (!found) {
    const registers = [registry];
    found = {
      sockets: new Gauge({ name: 'callplane_websockets', help: 'Open WebSockets, by socket', labelNames: ['socket'] as const, registers }),
      messages: new Counter({
        name: 'callplane_websocket_messages_total',
        help: 'Client frames received, by socket and request ("invalid" for anything not a known request)',
        labelNames: ['socket', 'type'] as const,
        registers,
      }),
      errors: new Counter({ name: 'callplane_websocket_errors_total', help: 'Errors sent to clients (and refused tokens), by socket and code', labelNames: ['socket', 'code'] as const, registers }),
      closes: new Counter({ name: 'callplane_websocket_closes_total', help: 'Closed WebSockets, by socket and close code (1006: dropped without a close frame)', labelNames: ['socket', 'code'] as const, registers }),
    };
    familiesByRegistry.set(registry, found);
  }
  return found;
}

/**
 * Series of the names used before the socket label existed (`<prefix>_sockets`,
 * `<prefix>_messages_total{type}`, `<prefix>_errors_total{code}`), kept so dashboards and
 * test/integration/signaling-robustness.test.ts keep reading them.
 */
interface LegacyFamilies {
  sockets: Gauge;
  messages: Counter<'type'>;
  errors: Counter<'code'>;
}

function legacy(registry: Registry, prefix: string): LegacyFamilies {
  const registers = [registry];
  return {
    sockets: new Gauge({ name: `${prefix}_sockets`, help: 'Open WebSockets (as callplane_websockets for this socket)', registers }),
    messages: new Counter({ name: `${prefix}_messages_total`, help: 'Client frames received, by request type', labelNames: ['type'] as const, registers }),
    errors: new Counter({ name: `${prefix}_errors_total`, help: 'Errors sent to clients, by code', labelNames: ['code'] as const, registers }),
  };
}

/**
 * Metrics of one socket kind. Label values never come from client strings: request names outside
 * `known` become `invalid`, and close codes other than the standard ones or `serverCodes` become `other`.
 */
export function createSocketMetrics(
  registry: Registry | undefined,
  socket: string,
  known: (request: string) => boolean,
  serverCodes: ReadonlySet<number>,
  legacyPrefix?: string,
): SocketMetrics {
  if (!registry) return noSocketMetrics;
  const f = families(registry);
  const old = legacyPrefix ? legacy(registry, legacyPrefix) : null;
  return {
    opened: () => {
      f.sockets.inc({ socket });
      old?.sockets.inc();
    },
    closed: (code) => {
      f.sockets.dec({ socket });
      old?.sockets.dec();
      f.closes.inc({ socket, code: code <= 1015 || serverCodes.has(code) ? String(code) : 'other' });
    },
    message: (request) => {
      const type = request !== undefined && known(request) ? request : 'invalid';
      f.messages.inc({ socket, type });
      old?.messages.inc({ type });
    },
    error: (code) => {
      f.errors.inc({ socket, code });
      old?.errors.inc({ code });
    },
  };
}
