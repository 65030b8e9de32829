import { join } from 'node:path';
import type { MediaConfig, TurnConfig } from '../config/schema.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { checkTurnUsername, TurnCredentialMinter } from './credentials.ts';
import { EmbeddedTurn } from './embedded.ts';
import { CoturnSupervisor } from './coturn.ts';
import type { TurnMetrics } from './metrics.ts';
import { PeerPolicy } from './peer-policy.ts';

export { TurnCredentialMinter, checkTurnUsername, restCredential, TurnCredentialsSchema, type TurnCredentials } from './credentials.ts';
export { createTurnMetrics, type TurnMetrics } from './metrics.ts';

/** The private ranges coturn is told to refuse (what PeerPolicy refuses for the embedded engine). */
const PRIVATE_RANGES = ['0.0.0.0-0.255.255.255', '10.0.0.0-10.255.255.255', '100.64.0.0-100.127.255.255', '127.0.0.0-127.255.255.255', '169.254.0.0-169.254.255.255', '172.16.0.0-172.31.255.255', '192.168.0.0-192.168.255.255', '::1', 'fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff'];

export interface TurnServiceDeps {
  secret: string;
  clock: Clock;
  logger: Logger;
  metrics: TurnMetrics;
  dataDir: string;
}

const unspecified = (ip: string) => ip === '0.0.0.0' || ip === '::';

/**
 * TURN for this node (docs/turn.md): the configured engine (embedded, coturn, or none when
 * `turn.external` names the operator's servers or the engine is off), its URLs, and the minter of
 * the credentials every signaling token comes with.
 */
export class TurnService {
  readonly minter: TurnCredentialMinter;
  readonly engine: EmbeddedTurn | CoturnSupervisor | null;
  readonly kind: 'embedded' | 'coturn' | 'external' | 'off';
  /** Where clients reach this node's TURN server (null for external or off). */
  readonly address: { host: string; port: number } | null;
  private readonly urlList: string[];

  constructor(config: { turn: TurnConfig; media: MediaConfig }, deps: TurnServiceDeps) {
    const turn = config.turn;
    this.kind = turn.external.length > 0 ? 'external' : turn.engine;
    const announced = turn.announced_address ?? config.media.announced_address ?? (unspecified(turn.listen_ip) ? '127.0.0.1' : turn.listen_ip);
    const relayIp = turn.relay_ip ?? turn.listen_ip;
    const host = announced.includes(':') ? `[${announced}]` : announced;
    this.address = this.kind === 'embedded' || this.kind === 'coturn' ? { host: announced, port: turn.port } : null;
    this.urlList =
      this.kind === 'external'
        ? [...turn.external]
        : this.kind === 'embedded'
          ? [`turn:${host}:${turn.port}?transport=udp`]
          : this.kind === 'coturn'
            ? [`turn:${host}:${turn.port}?transport=udp`, `turn:${host}:${turn.port}?transport=tcp`, ...(turn.tls_cert_file ? [`turns:${host}:${turn.tls_port}?transport=tcp`] : [])]
            : [];
    this.minter = new TurnCredentialMinter(() => this.urlList, turn.credential_ttl_seconds, deps.secret, deps.clock);

    const mediaPorts = { first: config.media.port_base, count: Math.max(config.media.workers, 1) };
    const ownMedia = [config.media.announced_address, unspecified(config.media.listen_ip) ? null : config.media.listen_ip];
    const relayPorts = { min: turn.relay_port_min, max: turn.relay_port_max };
    if (this.kind === 'embedded') {
      const policy = new PeerPolicy(mediaPorts, turn.allow_private_peers, ownMedia);
      this.engine = new EmbeddedTurn({
        listenIp: turn.listen_ip,
        port: turn.port,
        relayIp,
        announcedAddress: announced,
        relayPorts,
        realm: turn.realm,
        userQuota: turn.user_quota,
        passwordFor: (username) => {
          const check = checkTurnUsername(deps.secret, username, deps.clock.nowMs());
          return check.ok ? check.password : null;
        },
        quotaKey: (username) => username.slice(username.indexOf(':') + 1),
        peerAllowed: (address, port) => policy.allowed(address, port),
        logger: deps.logger,
      });
    } else if (this.kind === 'coturn') {
      // the SFU announces 127.0.0.1 when it has no address of its own (docs/turn.md)
      const named = ownMedia.filter((a): a is string => a !== null);
      const mediaHosts = named.length > 0 ? named : ['127.0.0.1'];
      const loopbackMedia = mediaHosts.some((a) => a.startsWith('127.') || a === '::1');
      this.engine = new CoturnSupervisor({
        bin: turn.coturn_bin,
        listenIp: turn.listen_ip,
        port: turn.port,
        relayIp: unspecified(relayIp) ? announced : relayIp,
        announcedAddress: announced,
        relayPorts,
        realm: turn.realm,
        secret: deps.secret,
        userQuota: turn.user_quota,
        tls: turn.tls_cert_file && turn.tls_key_file ? { port: turn.tls_port, cert: turn.tls_cert_file, key: turn.tls_key_file } : null,
        deniedPeerRanges: turn.allow_private_peers ? [] : PRIVATE_RANGES,
        allowedPeerIps: turn.allow_private_peers ? [] : mediaHosts,
        allowLoopbackPeers: turn.allow_private_peers || loopbackMedia,
        workDir: join(deps.dataDir, 'coturn'),
        logger: deps.logger,
        metrics: deps.metrics,
      });
    } else {
      this.engine = null;
    }
    if (this.engine instanceof EmbeddedTurn) deps.metrics.attach(this.engine);
  }

  /** The TURN URLs clients get with their credentials. */
  urls(): string[] {
    return [...this.urlList];
  }

  async start(): Promise<void> {
    await this.engine?.start();
  }

  async stop(): Promise<void> {
    await this.engine?.stop();
  }
}
