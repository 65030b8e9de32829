import NodeTurn from 'node-turn';
import type { Logger } from '../shared/logger.ts';
import { AppError } from '../shared/errors.ts';
import type { TurnStatsSource } from './metrics.ts';

export interface EmbeddedTurnOptions {
  listenIp: string;
  port: number;
  relayIp: string;
  announcedAddress: string;
  relayPorts: { min: number; max: number };
  realm: string;
  userQuota: number;
  /** Stateless credential check: the password of `username`, or null (unknown, malformed, expired). */
  passwordFor(username: string): string | null;
  /** The key the quota counts under (the participant id of a REST API username). */
  quotaKey(username: string): string;
  peerAllowed(address: string, port: number): boolean;
  logger: Logger;
}

/**
 * The embedded TURN engine: node-turn 0.0.6 with callplane's patch (patches/, docs/turn.md),
 * UDP on one port, long-term credentials checked statelessly on every request.
 */
export class EmbeddedTurn implements TurnStatsSource {
  private readonly server: NodeTurn;
  private started = false;

  constructor(private readonly options: EmbeddedTurnOptions) {
    const log = options.logger.child({ component: 'turn' });
    this.server = new NodeTurn({
      listeningIps: [options.listenIp],
      listeningPort: options.port,
      relayIps: [options.relayIp],
      externalIps: options.announcedAddress,
      minPort: options.relayPorts.min,
      maxPort: options.relayPorts.max,
      authMech: 'long-term',
      realm: options.realm,
      debugLevel: 'ERROR',
      log: (message) => log.warn({ detail: message instanceof Error ? message.message : String(message) }, 'turn engine'),
      passwordFor: options.passwordFor,
      quotaKey: options.quotaKey,
      userQuota: options.userQuota,
      peerAllowed: options.peerAllowed,
    });
    this.server.software = 'callplane';
    this.server.on('auth-failure', (event: { username?: string; reason: string }) => log.debug(event, 'TURN credential refused'));
    this.server.on('quota-refused', (event: { username?: string }) => log.info(event, 'TURN allocation quota reached'));
    this.server.on('peer-refused', (event: { peers: string[] }) => log.info(event, 'TURN peer refused by the peer policy'));
  }

  async start(): Promise<void> {
    try {
      await this.server.start();
      this.started = true;
    } catch (error) {
      this.server.stop();
      throw new AppError('service_unavailable', `TURN cannot listen on ${this.options.listenIp}:${this.options.port}/udp: ${(error as Error).message}`);
    }
  }

  stop(): void {
    if (!this.started) return;
    this.started = false;
    this.server.stop();
  }

  activeAllocations(): number {
    return Object.keys(this.server.allocations).length;
  }

  stats(): NodeTurn['stats'] {
    return this.server.stats;
  }
}
