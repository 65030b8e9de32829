/**
 * An SDP peer (docs/sdp.md): a plain RTCPeerConnection speaking the plain-WebRTC offer / answer /
 * ice_candidate, served as a client of the SFU's PeerConnection. It keeps the m-lines negotiated so
 * far (one per track, in order), turns the client's offers into one BUNDLE transport, producers and
 * consumers, and re-offers when the remote tracks change. It never touches a socket: it writes to
 * an SdpPeerOutput and hears the SFU's notifications through observe().
 */
import { randomInt } from 'node:crypto';
import type { types } from 'mediasoup';
import type { NotificationPayloads, NotificationType, ResponsePayloads, SdpServerPayloads } from '../../protocol/signaling.ts';
import { AppError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { PeerConnection } from '../../sfu/index.ts';
import { buildAnswer, buildOffer, connectParameters, parseOffer, restrictToRouterExtensionIds, sendableInAnswer, serverDtlsRole, type MediaKind, type OfferedMedia, type SectionPlan, type TransportDescription } from '../../sfu/sdp/index.ts';

export interface SdpPeerOutput {
  send<T extends keyof SdpServerPayloads>(type: T, payload: SdpServerPayloads[T]): void;
  /** SFU notifications an SDP client may also read (call_status, active_speaker, …), as they are. */
  forward<T extends NotificationType>(type: T, payload: NotificationPayloads[T]): void;
}

interface RemoteTrack {
  producerId: string;
  participantId: string;
  kind: MediaKind;
}

interface Sending {
  consumerId: string;
  producerId: string;
  participantId: string;
  rtpParameters: types.RtpParameters;
  /** Resumed once a description carrying it was applied by the client. */
  confirmed: boolean;
}

/** One m-line as negotiated (or proposed): what the client sends on it and what the server sends. */
interface Slot {
  mid: string;
  kind: MediaKind | 'application';
  rejected: boolean;
  protocol: string;
  payloads: string;
  /** The client's producer on this m-line and its parameters. */
  producerId?: string;
  receive?: types.RtpParameters;
  /** What the client can receive here (from its last description). */
  caps?: types.RtpCapabilities;
  sending?: Sending;
}

const FORWARDED: ReadonlySet<NotificationType> = new Set<NotificationType>(['call_status', 'active_speaker', 'permissions_changed', 'reconnect', 'error']);

export class SdpPeer {
  #conn: PeerConnection | null = null;
  readonly #out: SdpPeerOutput;
  readonly #logger: Logger;
  #routerCaps: types.RtpCapabilities | null = null;
  readonly #remote = new Map<string, RemoteTrack>();
  /** Display names of the other participants (peer_left names who left, as docs/sdp.md says). */
  readonly #names = new Map<string, string>();
  /** Participants the client was told about with peer_joined (by this peer, or as the SFU's own frame before the socket chose a dialect). */
  readonly #announced = new Set<string>();
  #transport: (TransportDescription & { id: string }) | null = null;
  #slots: Slot[] = [];
  /** A server offer waiting for the client's answer: the slots it proposes. */
  #pending: Slot[] | null = null;
  #unionCaps: types.RtpCapabilities = { codecs: [], headerExtensions: [] };
  readonly #sessionId = String(randomInt(1, 2 ** 47));
  #version = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #renegotiationQueued = false;
  #closed = false;

  /** Settles once the SFU connection is attached (or this peer closed): a client may offer before the welcome. */
  readonly #joined: Promise<void>;
  #resolveJoined!: () => void;

  constructor(out: SdpPeerOutput, logger: Logger) {
    this.#out = out;
    this.#logger = logger;
    this.#joined = new Promise((resolve) => (this.#resolveJoined = resolve));
  }

  /** The SFU connection, once joined. */
  attach(conn: PeerConnection): void {
    this.#conn = conn;
    this.#resolveJoined();
  }

  close(): void {
    this.#closed = true;
    this.#resolveJoined();
  }

  /** Every SFU notification of this participant (from the welcome on), whether or not it speaks SDP. */
  observe<T extends NotificationType>(type: T, payload: NotificationPayloads[T], speaksSdp: boolean): void {
    let changed = false;
    if (type === 'welcome') {
      const welcome = payload as NotificationPayloads['welcome'];
      this.#routerCaps = welcome.routerRtpCapabilities as types.RtpCapabilities;
      for (const peer of welcome.peers) this.#names.set(peer.participantId, peer.displayName);
      for (const peer of welcome.peers) for (const p of peer.producers) this.#remote.set(p.producerId, { producerId: p.producerId, participantId: peer.participantId, kind: p.kind });
    } else if (type === 'new_producer') {
      const p = payload as NotificationPayloads['new_producer'];
      this.#remote.set(p.producerId, { producerId: p.producerId, participantId: p.participantId, kind: p.kind });
      changed = true;
    } else if (type === 'producer_closed') {
      changed = this.#remote.delete((payload as NotificationPayloads['producer_closed']).producerId);
    } else if (type === 'consumer_closed') {
      const { consumerId } = payload as NotificationPayloads['consumer_closed'];
      for (const slot of [...this.#slots, ...(this.#pending ?? [])]) if (slot.sending?.consumerId === consumerId) delete slot.sending;
      changed = true;
    } else if (type === 'peer_left') {
      const left = payload as NotificationPayloads['peer_left'];
      for (const [id, track] of this.#remote) if (track.participantId === left.participantId) this.#remote.delete(id);
      if (speaksSdp) this.#out.send('peer_left', { participantId: left.participantId, displayName: this.#names.get(left.participantId) ?? '' });
      this.#names.delete(left.participantId);
      this.#announced.delete(left.participantId);
      changed = true;
    } else if (type === 'peer_joined') {
      const joined = payload as NotificationPayloads['peer_joined'];
      this.#names.set(joined.participantId, joined.displayName);
      this.#announced.add(joined.participantId);
      if (speaksSdp) this.#out.send('peer_joined', { participantId: joined.participantId, displayName: joined.displayName });
    } else if (speaksSdp && FORWARDED.has(type)) {
      this.#out.forward(type, payload);
    }
    if (speaksSdp) this.#announcePresent();
    if (changed && speaksSdp && this.#transport) this.#queueRenegotiation();
  }

  /**
   * Seed 000 tells both sides `peer_joined`: who was already in the call when this participant
   * arrived (the welcome's peers) is announced once the socket speaks SDP.
   */
  #announcePresent(): void {
    for (const [participantId, displayName] of this.#names) {
      if (this.#announced.has(participantId)) continue;
      this.#announced.add(participantId);
      this.#out.send('peer_joined', { participantId, displayName });
    }
  }

  /** A client offer: answered (with the answer frame), or rejected with an AppError. */
  offer(sdp: string): Promise<void> {
    this.#announcePresent();
    return this.#enqueue(() => this.#onOffer(sdp));
  }

  /** The client's answer to the server's pending offer. */
  answer(sdp: string): Promise<void> {
    return this.#enqueue(() => this.#onAnswer(sdp));
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(() => this.#joined).then(() => (this.#closed ? undefined : task()));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #request<T extends Parameters<PeerConnection['request']>[0]>(type: T, payload: Parameters<PeerConnection['request']>[1] & object): Promise<ResponsePayloads[T]> {
    if (!this.#conn) throw new AppError('invalid_state', 'offer received before the server welcomed this socket: wait for it');
    return this.#conn.request(type, payload as never) as Promise<ResponsePayloads[T]>;
  }

  async #onOffer(sdp: string): Promise<void> {
    if (!this.#conn || !this.#routerCaps) throw new AppError('invalid_state', 'offer received before the server welcomed this socket: wait for it');
    const offer = restrictToRouterExtensionIds(parseOffer(sdp, this.#routerCaps), this.#routerCaps);
    if (this.#pending) {
      // Collision: the client's offer wins; the server's offer is dropped and made again afterwards.
      this.#dropPending();
    }
    for (const [index, slot] of this.#slots.entries()) {
      const m = offer.media[index];
      if (!m || m.mid !== slot.mid) throw new AppError('validation_failed', `m-line ${index} must stay mid ${slot.mid} (m-lines keep their order; new ones go at the end)`);
    }
    const first = !this.#transport;
    if (first) {
      const created = await this.#request('createTransport', { direction: 'both' });
      this.#transport = {
        id: created.id,
        iceParameters: created.iceParameters as types.IceParameters,
        iceCandidates: created.iceCandidates as types.IceCandidate[],
        dtlsParameters: created.dtlsParameters as types.DtlsParameters,
      };
      await this.#request('connectTransport', { transportId: created.id, dtlsParameters: connectParameters(offer) as unknown as Record<string, unknown> });
    }
    this.#unionCaps = offer.rtpCapabilities;
    const slots = offer.media.map((m, index) => this.#slots[index] ?? slotOf(m));
    for (const [index, m] of offer.media.entries()) await this.#applyClientMedia(slots[index]!, m);
    this.#slots = slots;
    // Fill the client's receiving m-lines with remote tracks not yet sent.
    for (const slot of slots) if (!slot.rejected && !slot.sending && slot.caps && receivesOn(offer.media, slot.mid)) await this.#fill(slot);
    const answer = buildAnswer({
      transport: this.#transport!,
      dtlsRole: serverDtlsRole(offer),
      origin: this.#nextOrigin(),
      extmapAllowMixed: offer.extmapAllowMixed,
      sections: slots.map((slot) => sectionOf(slot, (s) => sendableInAnswer(s.rtpParameters, slot.caps))),
    });
    this.#out.send('answer', { type: 'answer', sdp: answer });
    if (first) this.#sendCandidates(slots);
    for (const slot of slots) if (slot.sending && sendableInAnswer(slot.sending.rtpParameters, slot.caps)) await this.#confirm(slot.sending);
    this.#queueRenegotiation();
  }

  async #applyClientMedia(slot: Slot, m: OfferedMedia): Promise<void> {
    slot.rejected = m.rejected;
    if (m.rtpCapabilities) slot.caps = m.rtpCapabilities;
    if (m.rejected) {
      if (slot.producerId) await this.#request('closeProducer', { producerId: slot.producerId }).catch(() => undefined);
      delete slot.producerId;
      delete slot.receive;
      if (slot.sending) await this.#request('pauseConsumer', { consumerId: slot.sending.consumerId }).catch(() => undefined);
      delete slot.sending;
      return;
    }
    if (m.rtpParameters && !slot.producerId) {
      const kind = m.kind as MediaKind;
      const source = kind === 'audio' ? 'microphone' : this.#slots.some((s) => s.producerId && s.kind === 'video') || slot.kind !== 'video' ? 'screen' : 'camera';
      const produced = await this.#request('produce', { transportId: this.#transport!.id, kind, rtpParameters: m.rtpParameters as unknown as Record<string, unknown>, source });
      slot.producerId = produced.id;
      slot.receive = m.rtpParameters;
    } else if (!m.rtpParameters && slot.producerId) {
      await this.#request('closeProducer', { producerId: slot.producerId }).catch(() => undefined);
      delete slot.producerId;
      delete slot.receive;
    }
  }

  /** Puts one remote track not yet sent to this client on `slot` (a consumer on the slot's mid). */
  async #fill(slot: Slot): Promise<void> {
    const sent = new Set([...this.#slots, ...(this.#pending ?? [])].map((s) => s.sending?.producerId).filter(Boolean));
    for (const track of this.#remote.values()) {
      if (track.kind !== slot.kind || sent.has(track.producerId)) continue;
      try {
        const consumed = await this.#request('consume', { producerId: track.producerId, rtpCapabilities: slot.caps as unknown as Record<string, unknown>, mid: slot.mid, enableRtx: false });
        slot.sending = { consumerId: consumed.id, producerId: track.producerId, participantId: track.participantId, rtpParameters: consumed.rtpParameters as types.RtpParameters, confirmed: false };
        return;
      } catch (error) {
        this.#logger.debug({ err: error, producerId: track.producerId }, 'SDP peer: could not consume a remote track');
      }
    }
  }

  async #confirm(sending: Sending): Promise<void> {
    if (sending.confirmed) return;
    sending.confirmed = true;
    await this.#request('resumeConsumer', { consumerId: sending.consumerId }).catch((error: unknown) => this.#logger.debug({ err: error }, 'SDP peer: resume failed'));
  }

  #sendCandidates(slots: Slot[]): void {
    const index = slots.findIndex((s) => !s.rejected);
    if (index < 0 || !this.#transport) return;
    const { usernameFragment } = this.#transport.iceParameters;
    for (const c of this.#transport.iceCandidates) {
      const candidate = `candidate:${c.foundation} 1 ${c.protocol} ${c.priority} ${c.ip} ${c.port} typ ${c.type}${c.tcpType ? ` tcptype ${c.tcpType}` : ''}`;
      this.#out.send('ice_candidate', { candidate, sdpMid: slots[index]!.mid, sdpMLineIndex: index, usernameFragment });
    }
  }

  #nextOrigin(): { sessionId: string; version: number } {
    return { sessionId: this.#sessionId, version: ++this.#version };
  }

  #queueRenegotiation(): void {
    if (this.#renegotiationQueued) return;
    this.#renegotiationQueued = true;
    this.#enqueue(async () => {
      this.#renegotiationQueued = false;
      await this.#renegotiate();
    }).catch((error: unknown) => this.#logger.warn({ err: error }, 'SDP peer: renegotiation failed'));
  }

  /** Sends a server offer when the client should receive something it does not (or stop receiving). */
  async #renegotiate(): Promise<void> {
    if (this.#pending || !this.#transport) return;
    const proposed = this.#slots.map((slot) => ({ ...slot }));
    let changed = proposed.some((slot) => slot.sending && !slot.sending.confirmed);
    // Slots whose track went away are idle now: the client learns it from the offer's direction.
    for (const [index, slot] of proposed.entries()) if (this.#slots[index]!.sending === undefined && this.#negotiatedSending.has(slot.mid)) changed = true;
    const sent = new Set(proposed.map((s) => s.sending?.producerId).filter(Boolean));
    for (const track of this.#remote.values()) {
      if (sent.has(track.producerId)) continue;
      let slot = proposed.find((s) => !s.rejected && s.kind === track.kind && !s.sending && s.caps);
      if (!slot) {
        slot = { mid: this.#newMid(proposed), kind: track.kind, rejected: false, protocol: 'UDP/TLS/RTP/SAVPF', payloads: '', caps: kindCaps(this.#unionCaps, track.kind) };
        if ((slot.caps?.codecs ?? []).length === 0) continue; // the client never said it can receive this kind
        proposed.push(slot);
      }
      this.#pending = proposed; // #fill skips tracks already proposed
      await this.#fill(slot);
      if (slot.sending) {
        sent.add(slot.sending.producerId);
        changed = true;
      } else if (!this.#slots.includes(slot)) {
        proposed.splice(proposed.indexOf(slot), 1);
      }
    }
    this.#negotiatedSending = new Set(proposed.filter((s) => s.sending).map((s) => s.mid));
    if (!changed) {
      this.#pending = null;
      return;
    }
    this.#pending = proposed;
    const offer = buildOffer({ transport: this.#transport, origin: this.#nextOrigin(), sections: proposed.map((slot) => sectionOf(slot, () => true)) });
    this.#out.send('offer', { type: 'offer', sdp: offer });
  }

  /** Mids that carried a server track in the last description sent (to notice tracks that ended). */
  #negotiatedSending = new Set<string>();

  async #onAnswer(sdp: string): Promise<void> {
    const pending = this.#pending;
    if (!pending || !this.#routerCaps) throw new AppError('invalid_state', 'answer received but no server offer is pending (after a collision the server re-offers)');
    const answer = restrictToRouterExtensionIds(parseOffer(sdp, this.#routerCaps), this.#routerCaps);
    if (answer.media.length !== pending.length || answer.media.some((m, i) => m.mid !== pending[i]!.mid)) {
      throw new AppError('validation_failed', `the answer must have the offer's ${pending.length} m-lines in order (mids ${pending.map((s) => s.mid).join(' ')})`);
    }
    this.#pending = null;
    for (const [index, m] of answer.media.entries()) {
      const slot = pending[index]!;
      if (m.rtpCapabilities) slot.caps = m.rtpCapabilities;
      if (m.rejected && !slot.rejected) await this.#applyClientMedia(slot, m);
    }
    this.#slots = pending;
    for (const slot of pending) if (slot.sending) await this.#confirm(slot.sending);
    this.#queueRenegotiation();
  }

  /** A collision: the proposed consumers of the dropped offer that no negotiated slot holds are closed. */
  #dropPending(): void {
    const kept = new Set(this.#slots.map((s) => s.sending?.consumerId));
    for (const slot of this.#pending ?? []) if (slot.sending && !kept.has(slot.sending.consumerId)) void this.#request('pauseConsumer', { consumerId: slot.sending.consumerId }).catch(() => undefined);
    this.#pending = null;
    this.#negotiatedSending = new Set(this.#slots.filter((s) => s.sending).map((s) => s.mid));
  }

  #newMid(slots: Slot[]): string {
    let n = slots.length;
    while (slots.some((s) => s.mid === String(n))) n++;
    return String(n);
  }
}

function slotOf(m: OfferedMedia): Slot {
  return { mid: m.mid, kind: m.kind, rejected: m.rejected, protocol: m.protocol, payloads: m.payloads };
}

function receivesOn(media: OfferedMedia[], mid: string): boolean {
  const m = media.find((x) => x.mid === mid);
  return !!m && !m.rejected && (m.direction === 'sendrecv' || m.direction === 'recvonly');
}

function kindCaps(caps: types.RtpCapabilities, kind: MediaKind): types.RtpCapabilities {
  return { codecs: (caps.codecs ?? []).filter((c) => c.kind === kind), headerExtensions: (caps.headerExtensions ?? []).filter((e) => e.kind === kind) };
}

function sectionOf(slot: Slot, includeSending: (s: Sending) => boolean): SectionPlan {
  if (slot.rejected || slot.kind === 'application') return { mid: slot.mid, kind: slot.kind, rejected: true, protocol: slot.protocol, payloads: slot.payloads };
  const send = slot.sending && includeSending(slot.sending) ? { rtpParameters: slot.sending.rtpParameters, streamId: slot.sending.participantId, trackId: slot.sending.consumerId } : undefined;
  return { mid: slot.mid, kind: slot.kind, ...(slot.receive ? { receive: slot.receive } : {}), ...(send ? { send } : {}), ...(slot.caps ? { idle: slot.caps } : {}) };
}
