/**
 * One simulated participant, whatever its WebRTC stack: it joins with a signaling token, loads a
 * mediasoup-client Device (msc-node's for werift, the browser library's Chrome111 handler for
 * wrtc), publishes what its plan says, consumes every other participant's producers (also those
 * announced later) and counts what arrives per consumer. The engine supplies the stack-specific parts.
 */
import { performance } from 'node:perf_hooks';
import type { MediaKind, MediaSource, NotificationPayloads } from '../protocol/signaling.ts';
import { SignalingClient, type AnyNotification } from './signaling.ts';
import type { TrackCounter } from './track-stats.ts';

const CONNECT_TIMEOUT_MS = 20_000;

/* eslint-disable @typescript-eslint/no-explicit-any -- the two mediasoup-client libraries share these shapes but not their types */
export interface ClientTransport {
  id: string;
  closed: boolean;
  connectionState: string;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
  produce(options: any): Promise<any>;
  consume(options: any): Promise<any>;
  getStats(): Promise<any>;
  close(): void;
}
export interface ClientDevice {
  load(options: { routerRtpCapabilities: any }): Promise<void>;
  rtpCapabilities: any;
  createSendTransport(options: any): ClientTransport;
  createRecvTransport(options: any): ClientTransport;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

export interface OutgoingTrack {
  kind: MediaKind;
  source: MediaSource;
  /** What `transport.produce()` takes: the track, encodings, codec options. */
  produceOptions: Record<string, unknown>;
  /** Called with the created producer (the werift engine listens for PLIs on its sender). */
  onProducer?(producer: unknown): void;
  stop(): void;
}

export interface Engine {
  readonly name: 'werift' | 'wrtc';
  createDevice(): ClientDevice;
  /** Extra RTCPeerConnection settings for every transport (werift: loopback host candidates). */
  readonly transportSettings: Record<string, unknown>;
  createTracks(publish: { audio: boolean; video: boolean }): OutgoingTrack[];
  /** Called with the receive transport as soon as it exists, before anything is consumed (werift: the light receivers hook in). */
  prepareRecv?(recv: ClientTransport, peer: { publishes: boolean }): void;
  /** Starts counting a consumer's packets; the returned counter is read at every progress tick. */
  watchConsumer(consumer: { kind: MediaKind; track: unknown; rtpParameters: unknown }, recv: ClientTransport): TrackCounter;
  /** A line for stderr once the run is over, about the engine's own receiving (werift light receivers), or null. */
  summary?(): string | null;
  /** Refreshes counters that come from stats (wrtc); nothing for werift, which counts packets as they arrive. */
  refresh?(recv: ClientTransport): Promise<void>;
}

export interface PeerPlan {
  signalingUrl: string;
  token: string;
  publish: { audio: boolean; video: boolean };
  label: string;
}

export class SimulatedPeer {
  /** Counters of the consumers this peer holds, by consumer id. */
  readonly received = new Map<string, TrackCounter>();
  readonly errors: string[] = [];
  joinMs: number | null = null;
  welcome: NotificationPayloads['welcome'] | null = null;
  readonly #signaling: SignalingClient;
  readonly #tracks: OutgoingTrack[] = [];
  readonly #remoteProducers = new Map<string, MediaKind>();
  readonly #consuming = new Set<string>();
  #device: ClientDevice | null = null;
  #send: ClientTransport | null = null;
  #recv: ClientTransport | null = null;
  #closing = false;

  private constructor(
    private readonly engine: Engine,
    private readonly plan: PeerPlan,
  ) {
    this.#signaling = new SignalingClient(plan.signalingUrl, plan.token);
    this.#signaling.onNotification = (n) => this.#onNotification(n);
  }

  static async join(engine: Engine, plan: PeerPlan): Promise<SimulatedPeer> {
    const peer = new SimulatedPeer(engine, plan);
    const started = performance.now();
    try {
      await withTimeout(peer.#setUp(), CONNECT_TIMEOUT_MS, `${plan.label} did not join within ${CONNECT_TIMEOUT_MS / 1000} s`);
      peer.joinMs = performance.now() - started;
      return peer;
    } catch (error) {
      const closed = peer.#signaling.closeInfo;
      await peer.close();
      throw closed ? new Error(`${plan.label}: the server closed its signaling socket (${closed}): ${(error as Error).message}`, { cause: error }) : error;
    }
  }

  get signalingClosed(): boolean {
    return this.#signaling.isClosed;
  }

  async refresh(): Promise<void> {
    if (this.engine.refresh && this.#recv && !this.#recv.closed) await this.engine.refresh(this.#recv);
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const track of this.#tracks) track.stop();
    await this.#signaling.close();
    this.#send?.close();
    this.#recv?.close();
  }

  async #setUp(): Promise<void> {
    const welcome = await this.#signaling.welcome;
    this.welcome = welcome;
    const device = this.engine.createDevice();
    await device.load({ routerRtpCapabilities: welcome.routerRtpCapabilities });
    this.#device = device;
    const iceServers = welcome.iceServers;
    for (const peer of welcome.peers) for (const p of peer.producers) this.#remoteProducers.set(p.producerId, p.kind);

    this.#recv = await this.#transport(device, 'recv', iceServers);
    const consumed = [...this.#remoteProducers.keys()].map((id) => this.#consume(id));

    const tracks = this.engine.createTracks(this.plan.publish);
    if (tracks.length > 0) {
      const send = await this.#transport(device, 'send', iceServers);
      this.#send = send;
      send.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
        const source = (appData as { source: MediaSource }).source;
        this.#signaling.request('produce', { transportId: send.id, kind, rtpParameters, source }).then(({ id }) => callback({ id }), errback);
      });
      for (const track of tracks) {
        this.#tracks.push(track);
        const producer = await send.produce({ ...track.produceOptions, appData: { source: track.source } });
        track.onProducer?.(producer);
      }
      await transportConnected(send, 'send');
    }
    await Promise.all(consumed);
    if (this.#remoteProducers.size > 0) await transportConnected(this.#recv, 'recv');
  }

  async #transport(device: ClientDevice, direction: 'send' | 'recv', iceServers: unknown): Promise<ClientTransport> {
    const params = await this.#signaling.request('createTransport', { direction });
    const options = { ...params, iceServers, additionalSettings: this.engine.transportSettings };
    const transport = direction === 'send' ? device.createSendTransport(options) : device.createRecvTransport(options);
    if (direction === 'recv') this.engine.prepareRecv?.(transport, { publishes: this.plan.publish.audio || this.plan.publish.video });
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.#signaling.request('connectTransport', { transportId: transport.id, dtlsParameters }).then(() => callback(), errback);
    });
    return transport;
  }

  async #consume(producerId: string): Promise<void> {
    const device = this.#device;
    const recv = this.#recv;
    if (!device || !recv || this.#consuming.has(producerId) || this.#closing) return;
    this.#consuming.add(producerId);
    try {
      const answer = await this.#signaling.request('consume', { producerId, rtpCapabilities: device.rtpCapabilities });
      const consumer = await recv.consume({ id: answer.id, producerId: answer.producerId, kind: answer.kind, rtpParameters: answer.rtpParameters });
      this.received.set(answer.id, this.engine.watchConsumer({ kind: answer.kind, track: consumer.track, rtpParameters: answer.rtpParameters }, recv));
      // Consumers start paused; resume once the transport is up, so the key frame asked on resume arrives.
      await transportConnected(recv, 'recv');
      await this.#signaling.request('resumeConsumer', { consumerId: answer.id });
    } catch (error) {
      if (!this.#closing) this.errors.push(`consume ${producerId}: ${(error as Error).message}`);
    }
  }

  #onNotification(n: AnyNotification): void {
    if (n.type === 'new_producer') {
      if (n.payload.participantId === this.welcome?.participantId) return;
      this.#remoteProducers.set(n.payload.producerId, n.payload.kind);
      if (this.#recv) void this.#consume(n.payload.producerId);
    } else if (n.type === 'producer_closed') {
      this.#remoteProducers.delete(n.payload.producerId);
    } else if (n.type === 'error') {
      this.errors.push(`server: ${n.payload.code}: ${n.payload.message}`);
    }
  }
}

export function transportConnected(transport: ClientTransport, what: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<void> {
  if (transport.connectionState === 'connected') return Promise.resolve();
  if (transport.closed) return Promise.reject(new Error(`${what} transport is closed`));
  return new Promise((resolve, reject) => {
    const onState = (state: string): void => {
      if (state === 'connected') done();
      else if (state === 'failed' || state === 'closed') done(new Error(`${what} transport ${state}`));
    };
    const timer = setTimeout(() => done(new Error(`${what} transport not connected within ${timeoutMs} ms (${transport.connectionState})`)), timeoutMs);
    const done = (error?: Error): void => {
      clearTimeout(timer);
      transport.off('connectionstatechange', onState);
      if (error) reject(error);
      else resolve();
    };
    transport.on('connectionstatechange', onState);
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}
