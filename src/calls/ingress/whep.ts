import { randomInt } from 'node:crypto';
import type { types } from 'mediasoup';
import type { PeerInfo } from '../../protocol/signaling.ts';
import { AppError } from '../../shared/errors.ts';
import { buildAnswer, connectParameters, parseOffer, rejectedSection, sendableInAnswer, serverDtlsRole, type ParsedOffer, type SectionPlan } from '../../sfu/sdp/index.ts';
import { whepAnswer } from '../../sfu/sdp/whep-answer.ts';
import type { IngressNegotiator, IngressOptions } from './service.ts';
import type { IngressNotification, IngressSession } from './session.ts';

type Kind = 'audio' | 'video';

/** One recvonly m-line of the offer: what it can receive and what plays on it now. */
interface Slot {
  mid: string;
  kind: Kind;
  capabilities: types.RtpCapabilities;
  playing: string | null;
}

interface Track {
  kind: Kind;
  source: string;
}

const STREAM_ID = 'callplane-whep';
/** Which producer of a participant fills a slot: camera before screen for video. */
const SOURCE_ORDER: Record<Kind, readonly string[]> = { audio: ['microphone', 'screen'], video: ['camera', 'screen'] };

/**
 * Consumers see only codecs and no header extensions: a mediasoup consumer sends the router's
 * payload types and extension ids, so only what the answer can name the client's way is kept.
 */
function consumable(capabilities: types.RtpCapabilities): types.RtpCapabilities {
  return { codecs: (capabilities.codecs ?? []).filter((c) => !c.mimeType.toLowerCase().endsWith('/rtx')), headerExtensions: [] };
}

/**
 * Plays one participant's audio and video on a WHEP session's two m-lines: the active speaker
 * (before anyone spoke, the first publisher), or `?participant=` only. Switching pauses the consumer
 * on the m-line and resumes (or creates) the new participant's, which asks its producer for a key
 * frame; consumers are kept per producer, so switching back costs nothing.
 */
class WhepPlayer {
  readonly #session: IngressSession;
  readonly #slots: Slot[];
  readonly #fixed: string | null;
  readonly #tracks = new Map<string, Map<string, Track>>();
  readonly #consumers = new Map<string, { id: string; rtpParameters: types.RtpParameters }>();
  #speaker: string | null = null;
  #queue: Promise<void> = Promise.resolve();

  constructor(session: IngressSession, slots: Slot[], fixed: string | null, peers: PeerInfo[]) {
    this.#session = session;
    this.#slots = slots;
    this.#fixed = fixed;
    for (const peer of peers) this.#tracks.set(peer.participantId, new Map(peer.producers.map((p) => [p.producerId, { kind: p.kind, source: p.source }])));
    if (fixed && !this.#tracks.has(fixed)) throw new AppError('not_found', `Participant ${fixed} is not connected to this call`);
    session.on('notification', (n) => this.#notified(n));
  }

  /** Switches the slots to whom they should play now (runs one at a time). */
  follow(): Promise<void> {
    const run = this.#queue.then(() => this.#apply());
    this.#queue = run.catch((error: unknown) => {
      if (!this.#session.closed) this.#session.logger.warn({ err: error }, 'WHEP: switching the played participant failed');
    });
    return run;
  }

  /** The answer's sections, in the offer's order: a consumer's parameters where one plays. */
  sections(offer: ParsedOffer): SectionPlan[] {
    return offer.media.map((media) => {
      const slot = this.#slots.find((s) => s.mid === media.mid);
      if (!slot) return rejectedSection(media);
      const consumer = slot.playing ? this.#consumers.get(slot.playing) : undefined;
      if (consumer) return { mid: slot.mid, kind: slot.kind, send: { rtpParameters: consumer.rtpParameters, streamId: STREAM_ID, trackId: `${STREAM_ID}-${slot.kind}` } };
      return { mid: slot.mid, kind: slot.kind, idle: slot.capabilities };
    });
  }

  #notified(n: IngressNotification): void {
    switch (n.type) {
      case 'new_producer':
        (this.#tracks.get(n.payload.participantId) ?? this.#tracks.set(n.payload.participantId, new Map()).get(n.payload.participantId)!).set(n.payload.producerId, { kind: n.payload.kind, source: n.payload.source });
        break;
      case 'producer_closed':
        this.#tracks.get(n.payload.participantId)?.delete(n.payload.producerId);
        this.#forget(n.payload.producerId);
        break;
      case 'consumer_closed':
        this.#forget(n.payload.producerId);
        break;
      case 'peer_joined':
        if (!this.#tracks.has(n.payload.participantId)) this.#tracks.set(n.payload.participantId, new Map());
        break;
      case 'peer_left':
        for (const producerId of this.#tracks.get(n.payload.participantId)?.keys() ?? []) this.#forget(producerId);
        this.#tracks.delete(n.payload.participantId);
        break;
      case 'active_speaker':
        if (n.payload.participantId === null) return; // silence keeps the last speaker on screen
        this.#speaker = n.payload.participantId;
        break;
      default:
        return;
    }
    void this.follow();
  }

  #forget(producerId: string): void {
    this.#consumers.delete(producerId);
    for (const slot of this.#slots) if (slot.playing === producerId) slot.playing = null;
  }

  /** The participant to play: the fixed one, else the speaker while they publish, else the first publisher. */
  #target(): string | null {
    if (this.#fixed) return this.#fixed;
    const publishes = (pid: string | null): boolean => pid !== null && pid !== this.#session.participantId && (this.#tracks.get(pid)?.size ?? 0) > 0;
    if (publishes(this.#speaker)) return this.#speaker;
    for (const pid of this.#tracks.keys()) if (publishes(pid)) return pid;
    return null;
  }

  #producerFor(participantId: string | null, kind: Kind): string | null {
    const tracks = participantId ? this.#tracks.get(participantId) : undefined;
    if (!tracks) return null;
    for (const source of SOURCE_ORDER[kind]) for (const [producerId, track] of tracks) if (track.kind === kind && track.source === source) return producerId;
    return null;
  }

  async #apply(): Promise<void> {
    if (this.#session.closed) return;
    const target = this.#target();
    for (const slot of this.#slots) {
      const wanted = this.#producerFor(target, slot.kind);
      if (wanted === slot.playing) continue;
      const previous = slot.playing ? this.#consumers.get(slot.playing) : undefined;
      slot.playing = null;
      if (previous) await this.#session.request('pauseConsumer', { consumerId: previous.id }).catch(() => undefined);
      if (!wanted) continue;
      let consumer = this.#consumers.get(wanted);
      if (!consumer) {
        const made = await this.#session.request('consume', { producerId: wanted, rtpCapabilities: consumable(slot.capabilities) as unknown as Record<string, unknown> });
        consumer = { id: made.id, rtpParameters: made.rtpParameters as types.RtpParameters };
        this.#consumers.set(wanted, consumer);
      }
      if (!sendableInAnswer(consumer.rtpParameters, slot.capabilities)) {
        this.#session.logger.warn({ producerId: wanted, codec: consumer.rtpParameters.codecs[0]?.mimeType }, 'WHEP: this producer\'s codec cannot be sent on the client\'s m-line (payload types differ)');
        continue;
      }
      await this.#session.request('resumeConsumer', { consumerId: consumer.id }); // asks for a key frame
      slot.playing = wanted;
    }
  }
}

function slotsOf(offer: ParsedOffer): Slot[] {
  const slots: Slot[] = [];
  for (const media of offer.media) {
    if (media.rejected || media.kind === 'application' || !media.rtpCapabilities || (media.direction !== 'recvonly' && media.direction !== 'sendrecv')) continue;
    if (slots.some((s) => s.kind === media.kind)) throw new AppError('validation_failed', `m-line ${media.index} (${media.kind}, mid ${media.mid}): WHEP takes one audio and one video m-line`, { m_line: media.index, mid: media.mid });
    slots.push({ mid: media.mid, kind: media.kind, capabilities: media.rtpCapabilities, playing: null });
  }
  return slots;
}

/** WHEP playback (docs/whip-whep.md). */
export const whepNegotiator: IngressNegotiator<ParsedOffer> = {
  check(offer, _options: IngressOptions, router) {
    const parsed = parseOffer(offer, router);
    if (slotsOf(parsed).length === 0) throw new AppError('validation_failed', 'The offer receives nothing: WHEP needs a recvonly audio or video m-line with a codec the server sends');
    return parsed;
  },

  async apply(session, parsed, options) {
    const welcome = session.welcome;
    if (!welcome) throw new AppError('media_unavailable', 'The SFU did not welcome the session');
    const player = new WhepPlayer(session, slotsOf(parsed), options.participant ?? null, welcome.peers);
    const transport = await session.request('createTransport', { direction: 'recv' });
    session.transportIds.add(transport.id);
    await session.request('connectTransport', { transportId: transport.id, dtlsParameters: connectParameters(parsed) });
    await player.follow();
    const sections = player.sections(parsed);
    const answer = buildAnswer({
      transport: { iceParameters: transport.iceParameters, iceCandidates: transport.iceCandidates, dtlsParameters: transport.dtlsParameters } as never,
      dtlsRole: serverDtlsRole(parsed),
      origin: { sessionId: String(randomInt(1, 2 ** 47)), version: 1 },
      sections,
      extmapAllowMixed: parsed.extmapAllowMixed,
    });
    const sendingMids = new Set(sections.filter((s) => !s.rejected).map((s) => s.mid));
    return whepAnswer(answer, { sendingMids, streamId: STREAM_ID });
  },
};
