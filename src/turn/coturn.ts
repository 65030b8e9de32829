import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../shared/logger.ts';
import { AppError } from '../shared/errors.ts';
import { stunBinding } from './probe.ts';
import type { TurnMetrics } from './metrics.ts';

export interface CoturnOptions {
  bin: string;
  listenIp: string;
  port: number;
  relayIp: string;
  announcedAddress: string;
  relayPorts: { min: number; max: number };
  realm: string;
  secret: string;
  userQuota: number;
  tls: { port: number; cert: string; key: string } | null;
  /** Private ranges coturn must refuse as peers (none with allow_private_peers). */
  deniedPeerRanges: string[];
  /** Addresses allowed although inside a denied range: this node's media addresses. */
  allowedPeerIps: string[];
  allowLoopbackPeers: boolean;
  workDir: string;
  logger: Logger;
  metrics: TurnMetrics;
}

const RESTART_DELAYS_MS = [500, 1000, 2000, 5000, 10000];
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5000;

/** turnserver's command line: no config file, the TURN REST API secret, and the same limits as the embedded engine. */
export function coturnArgs(o: Omit<CoturnOptions, 'logger' | 'metrics' | 'bin'>): string[] {
  const args = [
    '-n',
    '--listening-ip', o.listenIp,
    '--listening-port', String(o.port),
    '--relay-ip', o.relayIp,
    '--min-port', String(o.relayPorts.min),
    '--max-port', String(o.relayPorts.max),
    '--realm', o.realm,
    '--use-auth-secret',
    `--static-auth-secret=${o.secret}`,
    '--user-quota', String(o.userQuota),
    '--fingerprint',
    '--no-cli',
    '--no-multicast-peers',
    '--log-file=stdout',
    '--simple-log',
    '--pidfile', join(o.workDir, 'turnserver.pid'),
    '--db', join(o.workDir, 'turndb'),
  ];
  if (o.announcedAddress !== o.relayIp) args.push('--external-ip', `${o.announcedAddress}/${o.relayIp}`);
  if (o.tls) args.push('--tls-listening-port', String(o.tls.port), '--cert', o.tls.cert, '--pkey', o.tls.key, '--no-dtls');
  else args.push('--no-tls', '--no-dtls');
  if (o.allowLoopbackPeers) args.push('--allow-loopback-peers');
  for (const range of o.deniedPeerRanges) args.push('--denied-peer-ip', range);
  for (const ip of o.allowedPeerIps) args.push('--allowed-peer-ip', ip);
  return args;
}

/**
 * Debian's coturn as a child process that callplane supervises (docs/turn.md, "coturn"): started
 * and awaited until it answers a STUN Binding, restarted with a growing delay when it dies,
 * stopped (SIGTERM, then SIGKILL) on shutdown. The secret is passed on its command line, which
 * local users can read in /proc: run callplane on a host of its own.
 */
export class CoturnSupervisor {
  private child: ChildProcess | null = null;
  private stopping = false;
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private readonly log: Logger;

  constructor(private readonly options: CoturnOptions) {
    this.log = options.logger.child({ component: 'coturn' });
  }

  /** The running child's pid (tests kill it to see the restart). */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  async start(): Promise<void> {
    mkdirSync(this.options.workDir, { recursive: true });
    this.killStale();
    this.spawnChild();
    if (!(await this.waitReady())) {
      await this.stop();
      throw new AppError('service_unavailable', `coturn (${this.options.bin}) did not answer on ${this.options.listenIp}:${this.options.port}/udp within ${READY_TIMEOUT_MS / 1000} s (see its log lines)`);
    }
  }

  /** Resolves true once the server answers a Binding request on its port. */
  async waitReady(timeoutMs = READY_TIMEOUT_MS): Promise<boolean> {
    const host = this.options.listenIp === '0.0.0.0' ? '127.0.0.1' : this.options.listenIp;
    const deadline = Date.now() + timeoutMs;
    // between a death and its restart there is no child: keep asking until the deadline
    while (Date.now() < deadline && !this.stopping) {
      if (await stunBinding(host, this.options.port, 500)) return true;
    }
    return false;
  }

  /**
   * A coturn left behind by a callplane that was killed (SIGKILL leaves its child running) still
   * holds the ports: its pidfile names it, and it is ended before a new one starts.
   */
  private killStale(): void {
    try {
      const pid = Number(readFileSync(join(this.options.workDir, 'turnserver.pid'), 'utf8').trim());
      if (pid > 1 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('turnserver')) {
        process.kill(pid, 'SIGKILL');
        this.log.warn({ pid }, 'ended a coturn left running by an earlier callplane');
      }
    } catch {
      /* no pidfile, or no such process */
    }
  }

  private spawnChild(): void {
    const { bin, logger: _logger, metrics: _metrics, ...rest } = this.options;
    const child = spawn(bin, coturnArgs(rest), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) this.log.debug({ line: line.trim() }, 'coturn');
    };
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    child.on('error', (error) => this.log.error({ err: error }, `coturn could not be started (${bin}; apt-get install coturn)`));
    this.options.metrics.engineUp(true);
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = null;
      this.options.metrics.engineUp(false);
      if (this.stopping) return;
      const delay = RESTART_DELAYS_MS[Math.min(this.restarts, RESTART_DELAYS_MS.length - 1)]!;
      this.restarts += 1;
      this.log.error({ code, signal, restartInMs: delay }, 'coturn exited; restarting it');
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        if (this.stopping) return;
        this.options.metrics.engineRestarted();
        this.spawnChild();
        // a restart that stays up resets the back-off
        void this.waitReady().then((ok) => {
          if (ok) this.restarts = 0;
        });
      }, delay);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(killer);
  }
}
