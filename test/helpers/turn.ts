import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { Test } from 'tap';
import { loadConfig } from '../../src/config/load.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { TurnService, createTurnMetrics, restCredential } from '../../src/turn/index.ts';
import { freePortBase } from './ports.ts';

export const TEST_TURN_SECRET = 'test-turn-secret-0123456789';

/**
 * A real TurnService (the embedded engine unless `turn.engine` says otherwise) on loopback, on free
 * ports, with media ports as given (relays may reach them), stopped at teardown.
 */
export async function startTurn(t: Test, settings: { turn?: Record<string, unknown>; media?: Record<string, unknown> } = {}): Promise<{ service: TurnService; port: number; registry: Registry; creds(participant: string, expiry?: number, secret?: string): { username: string; password: string } }> {
  const relayBase = await freePortBase(40);
  const config = loadConfig({
    env: {},
    overrides: {
      media: { workers: 1, listen_ip: '127.0.0.1', port_base: 30999, ...settings.media },
      turn: { engine: 'embedded', secret: TEST_TURN_SECRET, listen_ip: '127.0.0.1', port: await freePortBase(1), relay_port_min: relayBase, relay_port_max: relayBase + 39, ...settings.turn },
    },
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'callplane-turn-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const registry = new Registry();
  const service = new TurnService(config, { secret: TEST_TURN_SECRET, clock: systemClock, logger: createLogger({ level: 'silent', pretty: false }), metrics: createTurnMetrics(registry), dataDir });
  await service.start();
  t.teardown(() => service.stop());
  return {
    service,
    port: config.turn.port,
    registry,
    creds(participant, expiry = Math.floor(Date.now() / 1000) + 3600, secret = TEST_TURN_SECRET) {
      const username = `${expiry}:${participant}`;
      return { username, password: restCredential(secret, username) };
    },
  };
}

/** The value of one sample of a metric in the registry's text output. */
export async function metricValue(registry: Registry, name: string, labels = ''): Promise<number> {
  const text = await registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ').pop()) : NaN;
}
