// Types of the parts of node-turn 0.0.6 (as patched in patches/node-turn+0.0.6.patch) callplane uses.
declare module 'node-turn' {
  import { EventEmitter } from 'node:events';

  export interface NodeTurnStats {
    allocationsTotal: number;
    authFailures: number;
    quotaRefusals: number;
    peerRefusals: number;
    packetsToPeer: number;
    bytesToPeer: number;
    packetsToClient: number;
    bytesToClient: number;
    dropped: number;
  }

  export interface NodeTurnOptions {
    listeningIps: string[];
    listeningPort: number;
    relayIps: string[];
    externalIps?: string | Record<string, string> | null;
    minPort: number;
    maxPort: number;
    authMech: 'none' | 'short-term' | 'long-term';
    realm: string;
    debugLevel?: 'ALL' | 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL' | 'OFF';
    log?: (message: unknown) => void;
    passwordFor?: (username: string) => string | null;
    peerAllowed?: (address: string, port: number) => boolean;
    quotaKey?: (username: string) => string;
    userQuota?: number;
    defaultAllocatetLifetime?: number;
    maxAllocateLifetime?: number;
  }

  export default class NodeTurn extends EventEmitter {
    constructor(options: NodeTurnOptions);
    software: string;
    stats: NodeTurnStats;
    allocations: Record<string, unknown>;
    start(): Promise<unknown>;
    stop(): void;
  }
}
