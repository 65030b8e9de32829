/**
 * One participant's side of a call: the signaling socket, the mediasoup-client Device, a send and a
 * receive transport, local producers and one consumer per remote producer. It follows the wire
 * contract of src/protocol/signaling.ts and reconnects (fresh token, same identity) when the
 * server asks or the socket drops.
 */
import type { types } from 'mediasoup-client';
import { deviceFor } from './device.ts';
import type { MediaKind, MediaSource, NotificationPayloads, PeerInfo, ProducerInfo, ResponsePayloads } from '../protocol/signaling.ts';
import type { Api, SignalingTicket } from './api.ts';
import { CloseCode, SignalingClient, type Notification } from './signaling.ts';
import { decryptReceiver, encryptSender } from './e2ee.ts';
import type { PlainCallSession } from './plain-call.ts';

/** The page's call: through the SDK (CallSession) or plain WebRTC (`?mode=sdp`, PlainCallSession). */
export type PageSession = CallSession | PlainCallSession;

export type FinishReason = 'left' | 'ended' | 'replaced' | 'error';

export interface PeerState {
  participantId: string;
  userId: string;
  displayName: string;
  /** The peer's producers as announced by the server (producerId → info). */
  producers: Map<string, ProducerInfo>;
}

/** A remote track on screen: a mediasoup-client Consumer, or a plain RTCPeerConnection's track (plain-call.ts). */
export interface RemoteTrack {
  id: string;
  kind: 'audio' | 'video';
  track: MediaStreamTrack;
}

/** What the page shows; the session calls these as the call changes. */
export interface CallView {
  status(text: string): void;
  localStream(stream: MediaStream | null): void;
  peerAdded(peer: PeerState): void;
  peerUpdated(peer: PeerState): void;
  peerRemoved(participantId: string): void;
  trackAdded(participantId: string, consumer: RemoteTrack): void;
  trackRemoved(participantId: string, consumer: RemoteTrack): void;
  activeSpeaker(participantId: string | null): void;
  localMediaChanged(): void;
  /** Every `call_status` notification (paid calls: state changes and billing warnings). */
  callStatus?(payload: NotificationPayloads['call_status']): void;
  finished(reason: FinishReason, message: string): void;
}

export interface ReceivedNotification {
  type: string;
  payload: unknown;
  /** performance.now() at arrival. */
  at: number;
}

/**
 * What a session starts from: a signaling ticket and the call it belongs to. Room calls say their
 * type; paid link calls have none and are video calls.
 */
export interface SessionTicket extends SignalingTicket {
  call: { id: string; type?: 'audio' | 'video' };
}

export interface CallSessionOptions {
  /** getUserMedia video constraints for video calls. */
  video: MediaTrackConstraints;
  /** Shared list every notification is appended to (window.callplane.notifications). */
  notifications: ReceivedNotification[];
  /** The call's sharedSecret when end-to-end encryption is on: every frame sent and received goes through it. */
  e2eeSecret?: string | null;
}

const ENDED_STATUSES = new Set(['ended', 'completed', 'cancelled', 'failed']);
const RECONNECT_ATTEMPTS = 6;

/** mediasoup-client's parameter shapes cross the wire as plain JSON objects. */
const asJson = (value: unknown): Record<string, unknown> => value as Record<string, unknown>;

export class CallSession {
  readonly callId: string;
  readonly type: 'audio' | 'video';
  device: types.Device | null = null;
  sendTransport: types.Transport | null = null;
  recvTransport: types.Transport | null = null;
  participantId: string | null = null;
  welcome: NotificationPayloads['welcome'] | null = null;
  lastCallStatus: NotificationPayloads['call_status'] | null = null;
  readonly peers = new Map<string, PeerState>();
  /** Local producers by source. */
  readonly producers = new Map<MediaSource, types.Producer>();
  /** Remote consumers by consumer id. */
  readonly consumers = new Map<string, types.Consumer>();
  localStream: MediaStream | null = null;
  micMuted = false;
  camMuted = false;
  finishedReason: FinishReason | null = null;
  /**
   * performance.now() marks of the first connection: start (join began), welcome, device loaded,
   * receive transport created and connected, first consume answered and first resume answered,
   * and firstFrame per participant (set by the view). scripts/bench/join-to-frame.mjs reads them.
   */
  readonly timings: {
    start: number;
    welcome?: number;
    deviceLoaded?: number;
    recvCreated?: number;
    consumeAnswered?: number;
    recvConnected?: number;
    resumeAnswered?: number;
    sendConnected?: number;
    firstFrame: Record<string, number>;
  } = {
    start: performance.now(),
    firstFrame: {},
  };
  /** How many times the session reconnected. */
  reconnects = 0;

  private signal: SignalingClient | null = null;
  /** Bumped on every (re)connection: async work started for an older one is dropped. */
  private epoch = 0;
  private recvReady: Promise<types.Transport> | null = null;
  private readonly consuming = new Set<string>();
  private reconnecting: Promise<void> | null = null;
  private readonly mediaReady: Promise<MediaStream | null>;
  private markFinished: () => void = () => undefined;
  private readonly whenFinished = new Promise<void>((resolve) => {
    this.markFinished = resolve;
  });

  constructor(
    private readonly api: Api,
    private ticket: SessionTicket,
    private readonly view: CallView,
    private readonly options: CallSessionOptions,
  ) {
    this.callId = ticket.call.id;
    this.type = ticket.call.type ?? 'video';
    // Ask for the camera and microphone while signaling connects.
    this.mediaReady = this.acquireMedia();
  }

  get finished(): boolean {
    return this.finishedReason !== null;
  }

  /** Remote consumers grouped by the participant they come from. */
  get consumersByPeer(): Record<string, types.Consumer[]> {
    const byPeer: Record<string, types.Consumer[]> = {};
    for (const consumer of this.consumers.values()) {
      const participantId = String(consumer.appData.participantId);
      (byPeer[participantId] ??= []).push(consumer);
    }
    return byPeer;
  }

  start(): void {
    this.view.status('Connecting…');
    this.connect(this.ticket);
  }

  async toggleMic(): Promise<void> {
    this.micMuted = !this.micMuted;
    await this.applyMute('microphone', this.micMuted);
  }

  async toggleCam(): Promise<void> {
    this.camMuted = !this.camMuted;
    await this.applyMute('camera', this.camMuted);
  }

  /** Leaves the call (the others stay). */
  async leave(): Promise<void> {
    if (this.finished) return;
    try {
      await this.api.leaveCall(this.callId);
    } catch (error) {
      // The REST call is the record; if it failed, at least tell the SFU over signaling.
      console.warn('POST leave failed', error);
      await this.signal?.request('leave', {}).catch(() => undefined);
    } finally {
      this.finish('left', 'You left the call');
    }
  }

  /**
   * Ends the call for everyone (room calls: initiator or power ≥ 50, the server answers 403 otherwise;
   * paid calls: either participant). Returns the server's answer (a paid call's billing summary), or
   * null when the session had already finished. `onAnswer` gets the answer as soon as it arrives,
   * before the session has wound down.
   */
  async end<C = unknown>(onAnswer?: (call: C) => void): Promise<C | null> {
    if (this.finished) return null;
    const call = await this.api.endCall<C>(this.callId);
    onAnswer?.(call);
    // The server tells every participant (call_status ended, then close 4010): give ours a moment
    // to arrive so this page ends the way the others do, then end locally regardless.
    await Promise.race([this.whenFinished, new Promise((resolve) => setTimeout(resolve, 3000))]);
    this.finish('ended', 'You ended the call');
    return call;
  }

  // ---------------------------------------------------------------------------------------------

  private async acquireMedia(): Promise<MediaStream | null> {
    const attempts: MediaStreamConstraints[] =
      this.type === 'video' ? [{ audio: true, video: this.options.video }, { audio: true }, { video: this.options.video }] : [{ audio: true }];
    for (const constraints of attempts) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia(constraints);
        this.localStream = stream;
        this.view.localStream(stream);
        return stream;
      } catch (error) {
        console.warn('getUserMedia failed', constraints, error);
      }
    }
    this.view.status('No camera or microphone available: receiving only');
    return null;
  }

  private connect(ticket: SignalingTicket): void {
    const epoch = ++this.epoch;
    const separator = ticket.signaling_url.includes('?') ? '&' : '?';
    const url = `${ticket.signaling_url}${separator}token=${encodeURIComponent(ticket.signaling_token)}`;
    this.signal = new SignalingClient(
      url,
      (notification) => {
        if (epoch === this.epoch) this.onNotification(notification);
      },
      (code, reason) => {
        if (epoch === this.epoch) this.onSocketClosed(code, reason);
      },
    );
  }

  private onSocketClosed(code: number, reason: string): void {
    if (this.finished) return;
    switch (code) {
      case CloseCode.callEnded:
        this.finish('ended', 'The call ended');
        return;
      case CloseCode.left:
        this.finish('left', 'You left the call');
        return;
      case CloseCode.replaced:
        this.finish('replaced', 'This call was opened in another window');
        return;
      case CloseCode.unauthorized:
      case CloseCode.forbidden:
      case CloseCode.flooding:
        this.finish('error', `Signaling refused (${code}${reason ? `: ${reason}` : ''})`);
        return;
      default:
        // reconnect (4011), going away (1001), a dropped connection (1006): fresh token, same identity.
        void this.reconnect(`signaling closed (${code})`);
    }
  }

  private onNotification(notification: Notification): void {
    this.options.notifications.push({ type: notification.type, payload: notification.payload, at: performance.now() });
    switch (notification.type) {
      case 'welcome':
        void this.onWelcome(notification.payload).catch((error: unknown) => this.fail(error));
        return;
      case 'peer_joined': {
        const { participantId, userId, displayName } = notification.payload;
        if (participantId === this.participantId) return;
        const existing = this.peers.get(participantId);
        if (existing) {
          existing.displayName = displayName;
          this.view.peerUpdated(existing);
        } else {
          const peer: PeerState = { participantId, userId, displayName, producers: new Map() };
          this.peers.set(participantId, peer);
          this.view.peerAdded(peer);
        }
        return;
      }
      case 'peer_left':
        this.removePeer(notification.payload.participantId);
        return;
      case 'new_producer': {
        const { participantId, producerId, kind, source } = notification.payload;
        if (participantId === this.participantId) return;
        const peer = this.ensurePeer(participantId);
        peer.producers.set(producerId, { producerId, kind, source, paused: false });
        this.view.peerUpdated(peer);
        void this.consume(participantId, producerId, kind, source);
        return;
      }
      case 'producer_closed': {
        const { participantId, producerId } = notification.payload;
        const peer = this.peers.get(participantId);
        peer?.producers.delete(producerId);
        for (const consumer of this.consumers.values()) if (consumer.producerId === producerId) this.dropConsumer(consumer);
        if (peer) this.view.peerUpdated(peer);
        return;
      }
      case 'producer_paused':
      case 'producer_resumed': {
        const { participantId, producerId } = notification.payload;
        const peer = this.peers.get(participantId);
        const producer = peer?.producers.get(producerId);
        if (peer && producer) {
          producer.paused = notification.type === 'producer_paused';
          this.view.peerUpdated(peer);
        }
        return;
      }
      case 'consumer_closed': {
        const { consumerId, producerId } = notification.payload;
        const consumer = this.consumers.get(consumerId);
        if (consumer) this.dropConsumer(consumer);
        // Its producer may still exist (the consumer moved worker): subscribe again.
        for (const peer of this.peers.values()) {
          const producer = peer.producers.get(producerId);
          if (producer) void this.consume(peer.participantId, producerId, producer.kind, producer.source);
        }
        return;
      }
      case 'active_speaker':
        this.view.activeSpeaker(notification.payload.participantId);
        return;
      case 'call_status': {
        this.lastCallStatus = notification.payload;
        this.view.callStatus?.(notification.payload);
        const { status, warning, reason } = notification.payload;
        if (ENDED_STATUSES.has(status)) this.finish('ended', `The call ended${reason ? ` (${reason})` : ''}`);
        else if (warning) this.view.status(`Warning: ${warning}`);
        return;
      }
      case 'reconnect':
        void this.reconnect(notification.payload.reason);
        return;
      case 'error':
        console.warn('signaling error', notification.payload);
        this.view.status(`Server: ${notification.payload.message}`);
        return;
      default:
        return;
    }
  }

  private async onWelcome(welcome: NotificationPayloads['welcome']): Promise<void> {
    const epoch = this.epoch;
    this.timings.welcome ??= performance.now();
    this.welcome = welcome;
    this.participantId = welcome.participantId;
    this.resetMedia();

    // The peers already in the call, recorded before the first await: notifications that arrive
    // while the device loads (new_producer, peer_left...) then apply on top of this list.
    const seen = new Set<string>();
    for (const info of welcome.peers) {
      if (info.participantId === welcome.participantId) continue;
      seen.add(info.participantId);
      this.upsertPeer(info);
    }
    for (const participantId of [...this.peers.keys()]) if (!seen.has(participantId)) this.removePeer(participantId);
    const others = seen.size;
    this.view.status(others ? `In call with ${others} other${others === 1 ? '' : 's'}` : 'In call, waiting for others');

    // The receive transport is asked for while the device loads: the request needs nothing from it.
    const subscribe = welcome.permissions.canSubscribe !== false;
    const recvAnswer = subscribe ? this.signal!.request('createTransport', { direction: 'recv' }) : null;
    recvAnswer?.catch(() => undefined);
    const device = await deviceFor(welcome.routerRtpCapabilities as types.RtpCapabilities);
    if (epoch !== this.epoch) return;
    this.timings.deviceLoaded ??= performance.now();
    this.device = device;

    const turn = this.ticket.turn_credentials;
    const iceServers: RTCIceServer[] = welcome.iceServers?.length
      ? welcome.iceServers
      : turn?.urls.length
        ? [{ urls: turn.urls, username: turn.username, credential: turn.credential }]
        : [];

    if (recvAnswer) {
      this.recvReady = this.createTransport('recv', device, iceServers, epoch, recvAnswer);
      this.recvReady.catch(() => undefined);
      for (const peer of this.peers.values()) {
        for (const producer of peer.producers.values()) void this.consume(peer.participantId, producer.producerId, producer.kind, producer.source);
      }
    }

    if (welcome.permissions.canPublish === false) return;
    const stream = await this.mediaReady;
    if (epoch !== this.epoch || !stream) return;
    const send = await this.createTransport('send', device, iceServers, epoch);
    if (epoch !== this.epoch) return;
    for (const track of stream.getTracks()) {
      const source: MediaSource = track.kind === 'audio' ? 'microphone' : 'camera';
      if (!device.canProduce(track.kind as MediaKind)) continue;
      const secret = this.options.e2eeSecret;
      const producer = await send.produce({ track, stopTracks: false, appData: { source }, ...(secret ? { onRtpSender: (sender: RTCRtpSender) => encryptSender(sender, track.kind, secret) } : {}) });
      if (epoch !== this.epoch) {
        producer.close();
        return;
      }
      this.producers.set(source, producer);
      producer.on('trackended', () => this.view.status(`Your ${source} stopped`));
      // Muted before a reconnection: stay muted.
      if ((source === 'microphone' && this.micMuted) || (source === 'camera' && this.camMuted)) await this.applyMute(source, true);
    }
    this.view.localMediaChanged();
  }

  private async createTransport(
    direction: 'send' | 'recv',
    device: types.Device,
    iceServers: RTCIceServer[],
    epoch: number,
    requested?: Promise<ResponsePayloads['createTransport']>,
  ): Promise<types.Transport> {
    const signal = this.signal!;
    const answer = await (requested ?? signal.request('createTransport', { direction }));
    if (epoch !== this.epoch) throw new Error('stale connection');
    const options: types.TransportOptions = {
      id: answer.id,
      iceParameters: answer.iceParameters as types.IceParameters,
      iceCandidates: answer.iceCandidates as types.IceCandidate[],
      dtlsParameters: answer.dtlsParameters as types.DtlsParameters,
      ...(answer.sctpParameters ? { sctpParameters: answer.sctpParameters as types.SctpParameters } : {}),
      iceServers,
      // ?ice=relay: relay candidates only, through the TURN server (docs/turn.md; the TURN browser test)
      ...(new URLSearchParams(location.search).get('ice') === 'relay' ? { iceTransportPolicy: 'relay' as const } : {}),
    };
    const transport = direction === 'send' ? device.createSendTransport(options) : device.createRecvTransport(options);
    if (direction === 'recv') this.timings.recvCreated ??= performance.now();
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      signal.request('connectTransport', { transportId: transport.id, dtlsParameters: asJson(dtlsParameters) }).then(() => callback(), errback);
    });
    if (direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
        signal
          .request('produce', { transportId: transport.id, kind, rtpParameters: asJson(rtpParameters), source: appData.source as MediaSource })
          .then(({ id }) => callback({ id }), errback);
      });
    }
    let restarted = false;
    transport.on('connectionstatechange', (state) => {
      if (state === 'connected') {
        if (direction === 'send') this.timings.sendConnected ??= performance.now();
        else this.timings.recvConnected ??= performance.now();
      }
      if (state !== 'failed' || epoch !== this.epoch || this.finished) return;
      if (restarted) {
        void this.reconnect(`${direction} transport failed`);
        return;
      }
      restarted = true;
      signal
        .request('restartIce', { transportId: transport.id })
        .then(({ iceParameters }) => transport.restartIce({ iceParameters: iceParameters as types.IceParameters }))
        .catch(() => this.reconnect(`${direction} transport failed`));
    });
    if (direction === 'send') this.sendTransport = transport;
    else this.recvTransport = transport;
    return transport;
  }

  private async consume(participantId: string, producerId: string, kind: MediaKind, source: MediaSource): Promise<void> {
    const epoch = this.epoch;
    if (!this.recvReady || this.consuming.has(producerId)) return;
    for (const consumer of this.consumers.values()) if (consumer.producerId === producerId) return;
    this.consuming.add(producerId);
    try {
      const transport = await this.recvReady;
      const device = this.device;
      const signal = this.signal;
      if (epoch !== this.epoch || !device || !signal) return;
      const answer = await signal.request('consume', { producerId, rtpCapabilities: asJson(device.rtpCapabilities) });
      if (epoch !== this.epoch) return;
      this.timings.consumeAnswered ??= performance.now();
      const consumer = await transport.consume({
        id: answer.id,
        producerId: answer.producerId,
        kind: answer.kind,
        rtpParameters: answer.rtpParameters as types.RtpParameters,
        appData: { participantId, source },
        ...(this.options.e2eeSecret ? { onRtpReceiver: (receiver: RTCRtpReceiver) => decryptReceiver(receiver, kind, this.options.e2eeSecret!) } : {}),
      });
      if (epoch !== this.epoch || !this.peers.has(participantId)) {
        consumer.close();
        return;
      }
      this.consumers.set(consumer.id, consumer);
      consumer.on('transportclose', () => this.dropConsumer(consumer));
      consumer.on('trackended', () => this.dropConsumer(consumer));
      const producer = this.peers.get(participantId)?.producers.get(producerId);
      if (producer && answer.producerPaused !== undefined) producer.paused = answer.producerPaused;
      this.view.trackAdded(participantId, consumer);
      // Resumed at once, also while the transport is still connecting: the SFU asks the publisher
      // for a key frame when the consumer becomes active, which is when DTLS completes if it has
      // not yet, so the first key frame is never sent into a transport that cannot carry it.
      await signal.request('resumeConsumer', { consumerId: consumer.id });
      this.timings.resumeAnswered ??= performance.now();
    } catch (error) {
      if (epoch === this.epoch && !this.finished) console.warn(`could not consume ${kind} ${producerId} of ${participantId}`, error);
    } finally {
      this.consuming.delete(producerId);
    }
  }

  private async applyMute(source: MediaSource, muted: boolean): Promise<void> {
    const producer = this.producers.get(source);
    this.view.localMediaChanged();
    if (!producer || producer.closed) return;
    const signal = this.signal;
    if (muted) {
      producer.pause();
      await signal?.request('pauseProducer', { producerId: producer.id });
    } else {
      await signal?.request('resumeProducer', { producerId: producer.id });
      producer.resume();
    }
  }

  private async reconnect(reason: string): Promise<void> {
    if (this.finished || this.reconnecting) return;
    this.reconnecting = (async () => {
      const old = this.signal;
      this.epoch++; // whatever the old socket still says is ignored from here on
      old?.close(1000, 'reconnecting');
      this.resetMedia();
      for (let attempt = 1; attempt <= RECONNECT_ATTEMPTS && !this.finished; attempt++) {
        this.view.status(`Reconnecting (${reason})…`);
        try {
          const ticket = await this.api.signalingToken(this.callId);
          if (this.finished) return;
          this.reconnects++;
          this.connect(ticket);
          await this.signal!.opened;
          return;
        } catch (error) {
          const code = (error as { code?: string }).code;
          if (code === 'call_ended' || code === 'not_found' || code === 'forbidden') {
            this.finish('ended', 'The call ended');
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** (attempt - 1), 8000)));
        }
      }
      if (!this.finished) this.finish('error', `Lost the connection to the call (${reason})`);
    })().finally(() => {
      this.reconnecting = null;
    });
    return this.reconnecting;
  }

  /** Closes transports (and with them producers and consumers); local tracks are kept for the next connection. */
  private resetMedia(): void {
    this.sendTransport?.close();
    this.recvTransport?.close();
    this.sendTransport = null;
    this.recvTransport = null;
    this.recvReady = null;
    for (const producer of this.producers.values()) producer.close();
    this.producers.clear();
    for (const consumer of [...this.consumers.values()]) this.dropConsumer(consumer);
    this.consuming.clear();
  }

  private ensurePeer(participantId: string): PeerState {
    let peer = this.peers.get(participantId);
    if (!peer) {
      peer = { participantId, userId: '', displayName: participantId, producers: new Map() };
      this.peers.set(participantId, peer);
      this.view.peerAdded(peer);
    }
    return peer;
  }

  private upsertPeer(info: PeerInfo): void {
    const existing = this.peers.get(info.participantId);
    const producers = new Map(info.producers.map((p) => [p.producerId, { ...p }]));
    if (existing) {
      existing.displayName = info.displayName;
      existing.userId = info.userId;
      existing.producers = producers;
      this.view.peerUpdated(existing);
    } else {
      const peer: PeerState = { participantId: info.participantId, userId: info.userId, displayName: info.displayName, producers };
      this.peers.set(info.participantId, peer);
      this.view.peerAdded(peer);
    }
  }

  private removePeer(participantId: string): void {
    for (const consumer of [...this.consumers.values()]) if (consumer.appData.participantId === participantId) this.dropConsumer(consumer);
    if (this.peers.delete(participantId)) this.view.peerRemoved(participantId);
  }

  private dropConsumer(consumer: types.Consumer): void {
    if (!this.consumers.delete(consumer.id)) {
      if (!consumer.closed) consumer.close();
      return;
    }
    if (!consumer.closed) consumer.close();
    this.view.trackRemoved(String(consumer.appData.participantId), consumer);
  }

  private fail(error: unknown): void {
    if (this.finished) return;
    console.error('call setup failed', error);
    this.view.status(`Call error: ${(error as Error).message ?? String(error)}`);
  }

  private finish(reason: FinishReason, message: string): void {
    if (this.finished) return;
    this.finishedReason = reason;
    this.epoch++;
    this.signal?.close(1000, 'finished');
    this.resetMedia();
    for (const participantId of [...this.peers.keys()]) this.removePeer(participantId);
    for (const track of this.localStream?.getTracks() ?? []) track.stop();
    this.view.localStream(null);
    this.view.finished(reason, message);
    this.markFinished();
  }
}
