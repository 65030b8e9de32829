/**
 * A simulated WebRTC participant for Node tests: the browser's mediasoup-client (handler
 * Chrome111) on libwebrtc through @roamhq/wrtc, so media goes through the SFU for real (ICE,
 * DTLS, SRTP), the same way a browser's does. It speaks the signaling protocol of
 * src/protocol/signaling.ts (SPEC §7) like the demo client in src/web/call.ts:
 *
 *   socket ?token= → welcome → Device.load(routerRtpCapabilities) → createTransport recv/send
 *   → produce (a 440 Hz tone from RTCAudioSource, optionally a synthetic I420 video) → consume
 *   every other participant's producer → resumeConsumer once the receive transport is connected.
 *
 * It does not reconnect by itself: `reconnect` notifications and close codes are recorded for
 * the test to act on. Close every peer (`t.teardown(() => peer.close())`): a live libwebrtc
 * track keeps the process from exiting. A socket the server closes releases the media too.
 */
import { performance } from 'node:perf_hooks';
import wrtc from '@roamhq/wrtc';
import { Device, type types } from 'mediasoup-client';
import WebSocket from 'ws';
import type {
  MediaKind,
  MediaSource,
  NotificationPayloads,
  NotificationType,
  RequestPayload,
  RequestType,
  ResponsePayloads,
} from '../../src/protocol/signaling.ts';
import { pictureTrack, toneTrack, type SyntheticTrack } from '../../src/loadtest/wrtc-sources.ts';

// mediasoup-client's handlers use the browser's globals: give them libwebrtc's.
const globals = globalThis as Record<string, unknown>;
for (const name of ['RTCPeerConnection', 'RTCSessionDescription', 'RTCIceCandidate', 'MediaStream', 'MediaStreamTrack'] as const) {
  globals[name] ??= (wrtc as unknown as Record<string, unknown>)[name];
}

/**
 * @roamhq/wrtc 0.10.0 crashes (SIGSEGV or SIGABRT) when Node tears the process down if an
 * RTCAudioSource, an RTCVideoSource or a peer connection is still unfinalized then: its finalizer releases the PeerConnectionFactory through a napi
 * reference that the environment's cleanup already deleted (napi_reference_unref from
 * PeerConnectionFactory::Release, under node::Environment::RunCleanup). A process that ends with
 * process.exit() skips that cleanup. So once a peer connects, the last thing the process
 * does on 'exit' is process.exit(code), after running the 'exit' listeners added after this one
 * (an exit() inside 'exit' would skip them).
 */
let exitGuardInstalled = false;
function exitBeforeNativeTeardown(code: number): void {
  const listeners = process.listeners('exit');
  for (const listener of listeners.slice(listeners.indexOf(exitBeforeNativeTeardown) + 1)) listener.call(process, code);
  process.exit(code);
}
function installExitGuard(): void {
  if (exitGuardInstalled) return;
  exitGuardInstalled = true;
  process.on('exit', exitBeforeNativeTeardown);
}

const REQUEST_TIMEOUT_MS = 15_000;
const DEFAULT_WAIT_MS = 10_000;
const VIDEO = { width: 320, height: 180, fps: 15 };

export interface NodePeerOptions {
  /** `signaling_url` from POST /v1/calls/initiate or /join (ws://host:port/v1/signal). */
  signalingUrl: string;
  /** `signaling_token` from the same answer (single use). */
  token: string;
  /** What to publish: audio defaults to true, video to false. Nothing (`{ audio: false }`): no send transport. */
  produce?: { audio?: boolean; video?: boolean };
  /** Consume the other participants' producers (and those announced later); default true. */
  consume?: boolean;
  /** How long connect() waits for the welcome; default 15 s (each request has 15 s of its own). */
  timeoutMs?: number;
}

export interface ReceivedNotification<T extends NotificationType = NotificationType> {
  type: T;
  payload: NotificationPayloads[T];
  /** performance.now() at arrival. */
  at: number;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/** One consumer's inbound RTP (libwebrtc's inbound-rtp stats of the consumer's SSRC). */
export interface InboundRtpStats {
  consumerId: string;
  producerId: string;
  participantId: string;
  kind: MediaKind;
  bytesReceived: number;
  packetsReceived: number;
}

export interface RtpWaitOptions {
  /** The remote participant whose media counts (any when omitted). */
  from?: string;
  kind?: MediaKind;
  /** Packets the consumer must have received; default 1. */
  minPackets?: number;
  timeoutMs?: number;
}

export class SignalingRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SignalingRequestError';
  }
}

interface Pending {
  type: string;
  resolve: (payload: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

interface Waiter {
  match: (n: ReceivedNotification) => boolean;
  resolve: (n: ReceivedNotification) => void;
  reject: (error: Error) => void;
}

type ConnectionState = types.ConnectionState;

/** mediasoup-client's parameter shapes cross the wire as plain JSON objects. */
const asJson = (value: unknown): Record<string, unknown> => value as Record<string, unknown>;

export class NodePeer {
  /** Every server notification received so far (welcome included), in arrival order. */
  readonly notifications: ReceivedNotification[] = [];
  /** Resolves once, when the signaling socket has closed (server or client side), with its close code. */
  readonly closed: Promise<CloseInfo>;
  /** performance.now() marks: start (connect() called), welcome, sendConnected, recvConnected. */
  readonly timings: { start: number; welcome?: number; sendConnected?: number; recvConnected?: number };
  readonly producers = new Map<MediaSource, types.Producer>();
  /** Consumers by consumer id (appData.participantId names the remote participant). */
  readonly consumers = new Map<string, types.Consumer>();
  device: types.Device | null = null;
  sendTransport: types.Transport | null = null;
  recvTransport: types.Transport | null = null;
  welcome: NotificationPayloads['welcome'] | null = null;
  /** Set when the socket closed. */
  closeInfo: CloseInfo | null = null;
  /** Failures of background work (consuming a producer announced by the server). */
  readonly errors: Error[] = [];

  readonly #ws: WebSocket;
  readonly #options: Required<Pick<NodePeerOptions, 'consume' | 'timeoutMs'>> & { produce: { audio: boolean; video: boolean } };
  readonly #pending = new Map<number, Pending>();
  readonly #waiters: Waiter[] = [];
  readonly #consuming = new Set<string>();
  /** Remote participants' producers we know of (producerId → participantId), from welcome and new_producer. */
  readonly #remoteProducers = new Map<string, string>();
  readonly #media: SyntheticTrack[] = [];
  #recvReady: Promise<types.Transport> | null = null;
  #nextId = 1;
  #closing: Promise<CloseInfo> | null = null;
  #resolveClosed!: (info: CloseInfo) => void;

  private constructor(options: NodePeerOptions) {
    this.timings = { start: performance.now() };
    this.#options = {
      consume: options.consume ?? true,
      timeoutMs: options.timeoutMs ?? 15_000,
      produce: { audio: options.produce?.audio ?? true, video: options.produce?.video ?? false },
    };
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    const separator = options.signalingUrl.includes('?') ? '&' : '?';
    this.#ws = new WebSocket(`${options.signalingUrl}${separator}token=${encodeURIComponent(options.token)}`);
    this.#ws.on('message', (data) => this.#onMessage(String(data)));
    this.#ws.on('error', () => undefined); // a close always follows
    this.#ws.on('close', (code, reason) => this.#onSocketClosed({ code, reason: String(reason) }));
  }

  /**
   * Opens the signaling socket and sets the participant up: welcome, Device, transports, its
   * producers (the server has answered `produce`), consumers for the producers already in the call.
   * Rejects (and cleans up) when the server refuses the token or set-up fails.
   */
  static async connect(options: NodePeerOptions): Promise<NodePeer> {
    installExitGuard();
    const peer = new NodePeer(options);
    try {
      await peer.#setUp();
      return peer;
    } catch (error) {
      await peer.close({ leave: false });
      throw error;
    }
  }

  get participantId(): string {
    if (!this.welcome) throw new Error('no welcome yet');
    return this.welcome.participantId;
  }

  get callId(): string {
    if (!this.welcome) throw new Error('no welcome yet');
    return this.welcome.callId;
  }

  /**
   * The first notification of `type` (already received or future) that `predicate` accepts.
   * Rejects after `timeoutMs`, or when the socket closes before one arrives.
   */
  waitFor<T extends NotificationType>(
    type: T,
    predicate: (payload: NotificationPayloads[T]) => boolean = () => true,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<NotificationPayloads[T]> {
    const match = (n: ReceivedNotification): boolean => n.type === type && predicate(n.payload as NotificationPayloads[T]);
    const seen = this.notifications.find(match);
    if (seen) return Promise.resolve(seen.payload as NotificationPayloads[T]);
    if (this.closeInfo) return Promise.reject(new Error(`no ${type} notification before the socket closed (${this.closeInfo.code})`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (n) => {
          clearTimeout(timer);
          resolve(n.payload as NotificationPayloads[T]);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`no ${type} notification within ${timeoutMs} ms (got: ${this.notifications.map((n) => n.type).join(', ')})`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Sends a signaling request; resolves with the response payload, rejects with a SignalingRequestError. */
  request<T extends RequestType>(type: T, payload: RequestPayload<T>): Promise<ResponsePayloads[T]> {
    if (this.#ws.readyState !== WebSocket.OPEN) return Promise.reject(new SignalingRequestError('closed', `signaling is not open (${type})`));
    const id = this.#nextId++;
    return new Promise<ResponsePayloads[T]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new SignalingRequestError('timeout', `${type} was not answered within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.#pending.set(id, { type, resolve: resolve as (payload: unknown) => void, reject, timer });
      this.#ws.send(JSON.stringify({ type, id, payload }));
    });
  }

  /** Resolves when the send transport's connectionState (client side: ICE + DTLS) is 'connected'. */
  sendConnected(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    if (!this.sendTransport) return Promise.reject(new Error('this peer has no send transport (it produces nothing)'));
    return transportConnected(this.sendTransport, 'send', timeoutMs);
  }

  /** Resolves when the receive transport's connectionState is 'connected' (it connects on the first consume). */
  recvConnected(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    if (!this.recvTransport) return Promise.reject(new Error('this peer has no receive transport (consume: false)'));
    return transportConnected(this.recvTransport, 'recv', timeoutMs);
  }

  /**
   * Inbound RTP of every live consumer. libwebrtc's stats of the receive transport's peer
   * connection, matched to consumers by SSRC (node-webrtc has no RTCRtpReceiver.getStats(); the
   * SFU's bandwidth probation stream has an SSRC of no consumer, so it is left out by this too).
   */
  async inboundStats(): Promise<InboundRtpStats[]> {
    const consumers = [...this.consumers.values()].filter((c) => !c.closed);
    const transport = this.recvTransport;
    if (!transport || transport.closed || consumers.length === 0) return [];
    const bySsrc = new Map<number, { bytesReceived: number; packetsReceived: number }>();
    const report = await transport.getStats();
    report.forEach((stat: { type?: string; ssrc?: number; bytesReceived?: number; packetsReceived?: number }) => {
      if (stat.type !== 'inbound-rtp' || stat.ssrc === undefined) return;
      bySsrc.set(stat.ssrc, { bytesReceived: stat.bytesReceived ?? 0, packetsReceived: stat.packetsReceived ?? 0 });
    });
    return consumers.map((consumer) => {
      const ssrcs = consumer.rtpParameters.encodings?.map((e) => e.ssrc).filter((ssrc): ssrc is number => ssrc !== undefined) ?? [];
      const counts = ssrcs.map((ssrc) => bySsrc.get(ssrc));
      return {
        consumerId: consumer.id,
        producerId: consumer.producerId,
        participantId: String(consumer.appData.participantId),
        kind: consumer.kind,
        bytesReceived: counts.reduce((sum, c) => sum + (c?.bytesReceived ?? 0), 0),
        packetsReceived: counts.reduce((sum, c) => sum + (c?.packetsReceived ?? 0), 0),
      };
    });
  }

  /**
   * Polls getStats() until a consumer of `from`'s media (any participant when omitted; of `kind`,
   * when given) has received RTP: at least one byte and `minPackets` packets (default 1).
   * Resolves with its stats; rejects after `timeoutMs` (default 10 s) with what was last seen.
   */
  async waitForRtp(opts: RtpWaitOptions = {}): Promise<InboundRtpStats> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_WAIT_MS;
    const minPackets = opts.minPackets ?? 1;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const last = (await this.inboundStats()).filter((s) => (!opts.from || s.participantId === opts.from) && (!opts.kind || s.kind === opts.kind));
      const flowing = last.find((s) => s.bytesReceived > 0 && s.packetsReceived >= minPackets);
      if (flowing) return flowing;
      if (this.closeInfo) throw new Error(`the peer closed (${this.closeInfo.code}) before RTP arrived`);
      if (performance.now() > deadline) {
        const errors = this.errors.map((e) => e.message).join('; ');
        const what = `${minPackets} RTP packet(s)${opts.kind ? ` of ${opts.kind}` : ''}${opts.from ? ` from ${opts.from}` : ''}`;
        throw new Error(`not ${what} within ${timeoutMs} ms; consumers: ${JSON.stringify(last)}${errors ? `; errors: ${errors}` : ''}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100)); // stats have no event: poll them
    }
  }

  /** Whether RTP from `from` (any participant when omitted) arrives within the timeout. */
  async receivedRtp(opts: RtpWaitOptions = {}): Promise<boolean> {
    return this.waitForRtp(opts).then(
      () => true,
      () => false,
    );
  }

  /**
   * Closes the peer: with `leave` (the default) it sends the `leave` request first so the others
   * get `peer_left` at once (the server closes the socket with 4012); without, the socket just
   * drops (1000) and the server keeps the participant for its reconnect grace period.
   * Stops the media sources, closes producers, consumers and transports. Idempotent.
   */
  close(opts: { leave?: boolean } = {}): Promise<CloseInfo> {
    this.#closing ??= (async () => {
      if (opts.leave !== false && this.#ws.readyState === WebSocket.OPEN) {
        // The server answers, then closes the socket with 4012.
        await this.request('leave', {}).catch(() => undefined);
        await Promise.race([this.closed, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      }
      this.#releaseMedia();
      if (this.#ws.readyState === WebSocket.CONNECTING || this.#ws.readyState === WebSocket.OPEN) this.#ws.close(1000, 'client closed');
      const info = await Promise.race([this.closed, new Promise<null>((resolve) => setTimeout(() => resolve(null), 2000).unref())]);
      if (!info) this.#ws.terminate();
      return this.closed;
    })();
    return this.#closing;
  }

  // ---------------------------------------------------------------------------------------------

  async #setUp(): Promise<void> {
    const timeoutMs = this.#options.timeoutMs;
    const welcome = await this.waitFor('welcome', () => true, timeoutMs).catch((error: Error) => {
      throw new Error(`no welcome: ${error.message}${this.closeInfo ? ` (closed ${this.closeInfo.code} ${this.closeInfo.reason})` : ''}`);
    });
    this.timings.welcome = performance.now();
    this.welcome = welcome;
    for (const peer of welcome.peers) {
      for (const producer of peer.producers) this.#remoteProducers.set(producer.producerId, peer.participantId);
    }

    const device = await Device.factory({ handlerName: 'Chrome111' });
    await device.load({ routerRtpCapabilities: welcome.routerRtpCapabilities as types.RtpCapabilities });
    this.device = device;
    const iceServers: RTCIceServer[] = welcome.iceServers ?? [];

    if (this.#options.consume && welcome.permissions.canSubscribe !== false) {
      this.#recvReady = this.#createTransport('recv', device, iceServers);
      this.#recvReady.catch(() => undefined);
      await this.#recvReady;
      for (const [producerId, participantId] of this.#remoteProducers) void this.#consume(participantId, producerId);
    }

    const { audio, video } = this.#options.produce;
    if ((audio || video) && welcome.permissions.canPublish !== false) {
      const send = await this.#createTransport('send', device, iceServers);
      if (audio) await this.#produce(send, this.#toneTrack(), 'microphone');
      if (video) await this.#produce(send, this.#videoTrack(), 'camera');
    }
  }

  async #produce(transport: types.Transport, track: MediaStreamTrack, source: MediaSource): Promise<void> {
    const producer = await transport.produce({ track, stopTracks: false, appData: { source } });
    this.producers.set(source, producer);
  }

  async #createTransport(direction: 'send' | 'recv', device: types.Device, iceServers: RTCIceServer[]): Promise<types.Transport> {
    const answer = await this.request('createTransport', { direction });
    const options: types.TransportOptions = {
      id: answer.id,
      iceParameters: answer.iceParameters as types.IceParameters,
      iceCandidates: answer.iceCandidates as types.IceCandidate[],
      dtlsParameters: answer.dtlsParameters as types.DtlsParameters,
      ...(answer.sctpParameters ? { sctpParameters: answer.sctpParameters as types.SctpParameters } : {}),
      iceServers,
    };
    const transport = direction === 'send' ? device.createSendTransport(options) : device.createRecvTransport(options);
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.request('connectTransport', { transportId: transport.id, dtlsParameters: asJson(dtlsParameters) }).then(() => callback(), errback);
    });
    if (direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
        this.request('produce', { transportId: transport.id, kind, rtpParameters: asJson(rtpParameters), source: appData.source as MediaSource }).then(
          ({ id }) => callback({ id }),
          errback,
        );
      });
    }
    transport.on('connectionstatechange', (state: ConnectionState) => {
      if (state !== 'connected') return;
      if (direction === 'send') this.timings.sendConnected ??= performance.now();
      else this.timings.recvConnected ??= performance.now();
    });
    if (direction === 'send') this.sendTransport = transport;
    else this.recvTransport = transport;
    return transport;
  }

  async #consume(participantId: string, producerId: string): Promise<void> {
    if (!this.#recvReady || this.#consuming.has(producerId) || participantId === this.welcome?.participantId) return;
    if ([...this.consumers.values()].some((c) => c.producerId === producerId && !c.closed)) return;
    this.#consuming.add(producerId);
    try {
      const transport = await this.#recvReady;
      const device = this.device!;
      const answer = await this.request('consume', { producerId, rtpCapabilities: asJson(device.rtpCapabilities) });
      const consumer = await transport.consume({
        id: answer.id,
        producerId: answer.producerId,
        kind: answer.kind,
        rtpParameters: answer.rtpParameters as types.RtpParameters,
        appData: { participantId },
      });
      if (this.#closing || !this.#remoteProducers.has(producerId)) {
        consumer.close();
        return;
      }
      this.consumers.set(consumer.id, consumer);
      consumer.observer.once('close', () => this.consumers.delete(consumer.id));
      // Consumers start paused: resume once the transport is up, so the key frame the SFU asks
      // for on resume reaches us (as the browser client does).
      await transportConnected(transport, 'recv', DEFAULT_WAIT_MS);
      if (consumer.closed) return;
      await this.request('resumeConsumer', { consumerId: consumer.id });
    } catch (error) {
      if (!this.#closing && !this.closeInfo) this.errors.push(new Error(`consuming ${producerId} of ${participantId} failed: ${(error as Error).message}`));
    } finally {
      this.#consuming.delete(producerId);
    }
  }

  #dropConsumersOf(match: (c: types.Consumer) => boolean): void {
    for (const consumer of [...this.consumers.values()]) {
      if (!match(consumer)) continue;
      this.consumers.delete(consumer.id);
      if (!consumer.closed) consumer.close();
    }
  }

  #onMessage(text: string): void {
    let frame: { type?: string; id?: number | string; payload?: unknown };
    try {
      frame = JSON.parse(text) as typeof frame;
    } catch {
      return;
    }
    if ((frame.type === 'response' || frame.type === 'error') && frame.id !== undefined) {
      const pending = this.#pending.get(Number(frame.id));
      if (!pending) return;
      this.#pending.delete(Number(frame.id));
      clearTimeout(pending.timer);
      if (frame.type === 'response') pending.resolve(frame.payload ?? {});
      else {
        const error = (frame.payload ?? {}) as { code?: string; message?: string };
        pending.reject(new SignalingRequestError(error.code ?? 'error', `${pending.type}: ${error.message ?? 'failed'}`));
      }
      return;
    }
    if (typeof frame.type !== 'string') return;
    const notification = { type: frame.type, payload: frame.payload ?? {}, at: performance.now() } as ReceivedNotification;
    this.notifications.push(notification);
    this.#handle(notification);
    for (const waiter of this.#waiters.splice(0)) {
      if (waiter.match(notification)) waiter.resolve(notification);
      else this.#waiters.push(waiter);
    }
  }

  #handle(n: ReceivedNotification): void {
    switch (n.type) {
      case 'new_producer': {
        const { participantId, producerId } = n.payload as NotificationPayloads['new_producer'];
        if (participantId === this.welcome?.participantId) return;
        this.#remoteProducers.set(producerId, participantId);
        if (this.#recvReady) void this.#consume(participantId, producerId);
        return;
      }
      case 'producer_closed': {
        const { producerId } = n.payload as NotificationPayloads['producer_closed'];
        this.#remoteProducers.delete(producerId);
        this.#dropConsumersOf((c) => c.producerId === producerId);
        return;
      }
      case 'consumer_closed': {
        const { consumerId, producerId } = n.payload as NotificationPayloads['consumer_closed'];
        this.#dropConsumersOf((c) => c.id === consumerId);
        // The producer may still be there (its consumer moved worker): subscribe again.
        const participantId = this.#remoteProducers.get(producerId);
        if (participantId) void this.#consume(participantId, producerId);
        return;
      }
      case 'peer_left': {
        const { participantId } = n.payload as NotificationPayloads['peer_left'];
        for (const [producerId, owner] of this.#remoteProducers) if (owner === participantId) this.#remoteProducers.delete(producerId);
        this.#dropConsumersOf((c) => c.appData.participantId === participantId);
        return;
      }
      default:
        return;
    }
  }

  #onSocketClosed(info: CloseInfo): void {
    if (this.closeInfo) return;
    this.closeInfo = info;
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new SignalingRequestError('closed', `signaling closed (${info.code}) before ${pending.type} was answered`));
      this.#pending.delete(id);
    }
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error(`the signaling socket closed (${info.code} ${info.reason})`));
    // The server's media for this connection is gone: release ours (timers, peer connections).
    this.#releaseMedia();
    this.#resolveClosed(info);
  }

  #releaseMedia(): void {
    for (const producer of this.producers.values()) if (!producer.closed) producer.close();
    for (const consumer of this.consumers.values()) if (!consumer.closed) consumer.close();
    this.consumers.clear();
    if (this.sendTransport && !this.sendTransport.closed) this.sendTransport.close();
    if (this.recvTransport && !this.recvTransport.closed) this.recvTransport.close();
    for (const media of this.#media.splice(0)) media.stop();
  }

  /** A 440 Hz tone (src/loadtest/wrtc-sources.ts). */
  #toneTrack(): MediaStreamTrack {
    installExitGuard();
    const tone = toneTrack();
    this.#media.push(tone);
    return tone.track;
  }

  /** A moving gradient, I420 at 320×180 and 15 fps. */
  #videoTrack(): MediaStreamTrack {
    const picture = pictureTrack({ ...VIDEO, noise: false });
    this.#media.push(picture);
    return picture.track;
  }
}

function transportConnected(transport: types.Transport, what: string, timeoutMs: number): Promise<void> {
  if (transport.connectionState === 'connected') return Promise.resolve();
  if (transport.closed) return Promise.reject(new Error(`${what} transport is closed`));
  return new Promise((resolve, reject) => {
    const done = (error?: Error): void => {
      clearTimeout(timer);
      transport.off('connectionstatechange', onState);
      transport.observer.off('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    const onState = (state: ConnectionState): void => {
      if (state === 'connected') done();
      else if (state === 'failed' || state === 'closed') done(new Error(`${what} transport ${state}`));
    };
    const onClose = (): void => done(new Error(`${what} transport closed`));
    const timer = setTimeout(() => done(new Error(`${what} transport not connected within ${timeoutMs} ms (state ${transport.connectionState})`)), timeoutMs);
    transport.on('connectionstatechange', onState);
    transport.observer.on('close', onClose);
  });
}
