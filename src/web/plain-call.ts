/**
 * A call with nothing but the browser's RTCPeerConnection and a WebSocket: the plain-WebRTC messages of docs/sdp.md
 * (docs/sdp.md), no mediasoup-client. The demo uses it with `?mode=sdp`; it is written to be read
 * and copied by client developers.
 *
 *   1. open `signaling_url?token=<signaling_token>` (from POST /v1/calls/initiate or /join);
 *   2. add the camera and microphone as `sendrecv` transceivers, send `offer`, apply the `answer`;
 *   3. answer every server `offer` (the server re-offers when the remote tracks change);
 *   4. a remote track's stream id is the participant it comes from (`peer_joined` names them).
 *
 * It plugs into the same call screen as CallSession (a CallView). Not done here: reconnecting after
 * a dropped socket (the call just ends on this page), telling the others about mute (a muted track
 * sends silence or black frames), end-to-end encryption.
 */
import type { NotificationPayloads } from '../protocol/signaling.ts';
import type { Api } from './api.ts';
import type { CallView, FinishReason, ReceivedNotification, SessionTicket } from './call.ts';

export interface PlainCallOptions {
  video: MediaTrackConstraints;
  notifications: ReceivedNotification[];
}

const ENDED_STATUSES = new Set(['ended', 'completed', 'cancelled', 'failed']);

export class PlainCallSession {
  readonly mode = 'sdp';
  readonly callId: string;
  readonly type: 'audio' | 'video';
  /** Only known when the server's welcome came before this page's first offer. */
  participantId: string | null = null;
  lastCallStatus: NotificationPayloads['call_status'] | null = null;
  localStream: MediaStream | null = null;
  pc: RTCPeerConnection | null = null;
  micMuted = false;
  camMuted = false;
  finishedReason: FinishReason | null = null;
  /** performance.now() marks (scripts/bench/join-to-frame.mjs reads them), firstFrame per participant set by the view. */
  readonly timings: { start: number; socketOpen?: number; offerSent?: number; answerApplied?: number; connected?: number; firstFrame: Record<string, number> } = { start: performance.now(), firstFrame: {} };

  #ws: WebSocket | null = null;
  readonly #peers = new Set<string>();
  #markFinished: () => void = () => undefined;
  readonly #whenFinished = new Promise<void>((resolve) => (this.#markFinished = resolve));

  constructor(
    private readonly api: Api,
    private readonly ticket: SessionTicket,
    private readonly view: CallView,
    private readonly options: PlainCallOptions,
  ) {
    this.callId = ticket.call.id;
    this.type = ticket.call.type ?? 'video';
  }

  get finished(): boolean {
    return this.finishedReason !== null;
  }

  start(): void {
    this.view.status('Connecting (plain WebRTC)…');
    this.#run().catch((error: unknown) => {
      console.error('plain call failed', error);
      this.view.status(`Call error: ${(error as Error).message ?? String(error)}`);
    });
  }

  async #run(): Promise<void> {
    // Camera and microphone while the socket connects.
    const media = navigator.mediaDevices
      .getUserMedia(this.type === 'video' ? { audio: true, video: this.options.video } : { audio: true })
      .catch((error: unknown) => (console.warn('getUserMedia failed', error), null));
    const url = `${this.ticket.signaling_url}${this.ticket.signaling_url.includes('?') ? '&' : '?'}token=${encodeURIComponent(this.ticket.signaling_token)}`;
    const ws = new WebSocket(url);
    this.#ws = ws;
    ws.onmessage = (event) => void this.#onMessage(JSON.parse(String(event.data))).catch((error: unknown) => console.warn('signaling message failed', error));
    ws.onclose = (event) => this.#onClose(event.code, event.reason);

    const turn = this.ticket.turn_credentials;
    const pc = new RTCPeerConnection({ iceServers: turn?.urls.length ? [{ urls: turn.urls, username: turn.username, credential: turn.credential }] : [] });
    this.pc = pc;
    pc.onicecandidate = (event) => this.#send('ice_candidate', event.candidate ? event.candidate.toJSON() : null);
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'connected') this.timings.connected ??= performance.now();
      if (pc.connectionState === 'failed' && !this.finished) this.#finish('error', 'The media connection failed');
    };
    // The server puts each remote track in a stream whose id is the participant it comes from.
    pc.ontrack = ({ track, streams, transceiver }) => {
      const participantId = streams[0]?.id;
      if (!participantId) return;
      const remote = { id: `${transceiver.mid ?? ''}:${track.id}`, kind: track.kind as 'audio' | 'video', track };
      this.view.trackAdded(participantId, remote);
      // An m-line the server stops using (the track ended) removes the track from its stream.
      streams[0]!.addEventListener('removetrack', (event) => {
        if (event.track === track) this.view.trackRemoved(participantId, remote);
      });
    };

    const stream = await media;
    if (this.finished) return;
    this.localStream = stream;
    this.view.localStream(stream);
    for (const track of stream?.getTracks() ?? []) pc.addTransceiver(track, { direction: 'sendrecv', streams: [stream!] });
    // Receive even without a camera or microphone.
    if (!stream?.getAudioTracks().length) pc.addTransceiver('audio', { direction: 'recvonly' });
    if (this.type === 'video' && !stream?.getVideoTracks().length) pc.addTransceiver('video', { direction: 'recvonly' });
    this.view.localMediaChanged();

    if (ws.readyState !== WebSocket.OPEN) await new Promise((resolve) => ws.addEventListener('open', resolve, { once: true }));
    this.timings.socketOpen ??= performance.now();
    await pc.setLocalDescription(await pc.createOffer());
    this.#send('offer', pc.localDescription);
    this.timings.offerSent ??= performance.now();
  }

  async #onMessage({ type, payload }: { type: string; payload: any }): Promise<void> { // eslint-disable-line @typescript-eslint/no-explicit-any
    this.options.notifications.push({ type, payload, at: performance.now() });
    const pc = this.pc;
    switch (type) {
      case 'welcome': // sent when the socket has not spoken yet; a plain client may ignore it
        this.participantId = payload.participantId;
        this.view.localMediaChanged();
        return;
      case 'answer':
        await pc!.setRemoteDescription(payload);
        this.timings.answerApplied ??= performance.now();
        return;
      case 'offer': // renegotiation: remote tracks came or went
        await pc!.setRemoteDescription(payload);
        await pc!.setLocalDescription(await pc!.createAnswer());
        this.#send('answer', pc!.localDescription);
        return;
      case 'ice_candidate':
        if (payload) await pc!.addIceCandidate(payload).catch(() => undefined);
        return;
      case 'peer_joined':
        if (this.#peers.has(payload.participantId) || payload.participantId === this.participantId) return;
        this.#peers.add(payload.participantId);
        this.view.peerAdded({ participantId: payload.participantId, userId: '', displayName: payload.displayName, producers: new Map() });
        this.view.status('In call');
        return;
      case 'peer_left':
        if (this.#peers.delete(payload.participantId)) this.view.peerRemoved(payload.participantId);
        return;
      case 'call_status':
        this.lastCallStatus = payload;
        this.view.callStatus?.(payload);
        if (ENDED_STATUSES.has(payload.status)) this.#finish('ended', `The call ended${payload.reason ? ` (${payload.reason})` : ''}`);
        else if (payload.warning) this.view.status(`Warning: ${payload.warning}`);
        return;
      case 'error':
        console.warn('signaling error', payload);
        this.view.status(`Server: ${payload.message}`);
        return;
      default:
        return;
    }
  }

  #send(type: string, payload: unknown): void {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify({ type, payload }));
  }

  #onClose(code: number, reason: string): void {
    if (this.finished) return;
    if (code === 4010) this.#finish('ended', 'The call ended');
    else if (code === 4012) this.#finish('left', 'You left the call');
    else if (code === 4009) this.#finish('replaced', 'This call was opened in another window');
    else this.#finish('error', `Signaling closed (${code}${reason ? `: ${reason}` : ''})`);
  }

  async toggleMic(): Promise<void> {
    this.micMuted = !this.micMuted;
    for (const track of this.localStream?.getAudioTracks() ?? []) track.enabled = !this.micMuted;
    this.view.localMediaChanged();
  }

  async toggleCam(): Promise<void> {
    this.camMuted = !this.camMuted;
    for (const track of this.localStream?.getVideoTracks() ?? []) track.enabled = !this.camMuted;
    this.view.localMediaChanged();
  }

  async leave(): Promise<void> {
    if (this.finished) return;
    try {
      await this.api.leaveCall(this.callId);
    } finally {
      this.#finish('left', 'You left the call');
    }
  }

  async end<C = unknown>(onAnswer?: (call: C) => void): Promise<C | null> {
    if (this.finished) return null;
    const call = await this.api.endCall<C>(this.callId);
    onAnswer?.(call);
    // The server tells every participant (call_status, then close 4010): give ours a moment.
    await Promise.race([this.#whenFinished, new Promise((resolve) => setTimeout(resolve, 3000))]);
    this.#finish('ended', 'You ended the call');
    return call;
  }

  #finish(reason: FinishReason, message: string): void {
    if (this.finished) return;
    this.finishedReason = reason;
    this.#ws?.close(1000, 'finished');
    this.pc?.close();
    for (const participantId of this.#peers) this.view.peerRemoved(participantId);
    this.#peers.clear();
    for (const track of this.localStream?.getTracks() ?? []) track.stop();
    this.view.localStream(null);
    this.view.finished(reason, message);
    this.#markFinished();
  }
}
