/**
 * The light receive path of the werift engine (`--receiver light`, docs/loadtest.md): a
 * subscriber's receive transport still does werift's real ICE and DTLS and gets the SFU's SRTP
 * packets on its real socket, but each packet is counted from the RTP header that SRTP leaves in
 * clear text (RFC 3711 §3.1: only the payload is encrypted) — SSRC, sequence number, timestamp,
 * size — instead of going through werift's SRTP decryption, RtpPacket parsing and RTCRtpReceiver
 * (statistics, NACKs, receiver reports, the track's event). The payload is never decrypted and no
 * packet is authenticated (neither does werift's full path: its SRTP decrypt checks no tag).
 * SRTCP packets are ignored. For measuring what the SFU forwards, not media quality.
 */
import { performance } from 'node:perf_hooks';
import type { RtpTrackCounter } from './track-stats.ts';

/** The fields the light path reads from an RTP header (RFC 3550 §5.1). */
export interface RtpHeaderFields {
  ssrc: number;
  sequenceNumber: number;
  timestamp: number;
  /** Fixed header, CSRCs and the header extension, in bytes: where the (encrypted) payload starts. */
  headerLength: number;
}

const RTP_VERSION = 2;
const FIXED_HEADER_BYTES = 12;

/** True for an RTCP packet multiplexed on the RTP port (RFC 5761 §4: packet types 192–223 where RTP has M + PT). */
export function isRtcpPacket(packet: Uint8Array): boolean {
  return packet.length >= 2 && packet[0]! >> 6 === RTP_VERSION && packet[1]! >= 192 && packet[1]! <= 223;
}

/** The header of an RTP packet, or null for anything else (RTCP, STUN, DTLS, a truncated packet). */
export function parseRtpHeader(packet: Buffer): RtpHeaderFields | null {
  if (packet.length < FIXED_HEADER_BYTES || packet[0]! >> 6 !== RTP_VERSION || isRtcpPacket(packet)) return null;
  const first = packet[0]!;
  let headerLength = FIXED_HEADER_BYTES + 4 * (first & 0x0f); // CSRC count
  if (first & 0x10) {
    // Header extension (RFC 3550 §5.3.1, RFC 8285): 16-bit profile, 16-bit length in 32-bit words.
    if (packet.length < headerLength + 4) return null;
    headerLength += 4 + 4 * packet.readUInt16BE(headerLength + 2);
  }
  if (headerLength > packet.length) return null;
  return { ssrc: packet.readUInt32BE(8), sequenceNumber: packet.readUInt16BE(2), timestamp: packet.readUInt32BE(4), headerLength };
}

/** SRTP protection profiles werift negotiates (RFC 5764 §4.1.2, RFC 7714 §14.2) and their authentication tag sizes. */
const AUTH_TAG_BYTES: Record<number, number> = { 0x0001: 10 /* AES_CM_128_HMAC_SHA1_80 */, 0x0007: 16 /* AEAD_AES_128_GCM */ };

export function authTagBytes(profile: number): number {
  const bytes = AUTH_TAG_BYTES[profile];
  if (bytes === undefined) throw new Error(`light receiver: unknown SRTP protection profile 0x${profile.toString(16)}`);
  return bytes;
}

/**
 * Routes a transport's SRTP packets to their tracks' counters by SSRC. Sizes are counted as the
 * full path counts them (track-stats: RTP payload plus the 12-byte fixed header): the packet minus
 * its header (CSRCs, extension) and the SRTP tag. Padding, if any, is encrypted and so counted
 * as payload; mediasoup's padding-only probes come on SSRCs no consumer has, and are ignored.
 */
export class LightRtpDemux {
  readonly #tracks = new Map<number, RtpTrackCounter>();
  readonly #rtx = new Set<number>();
  /** Set from the negotiated SRTP profile when DTLS completes; 10 (AES_CM_128_HMAC_SHA1_80) until then. */
  authTagBytes = 10;
  /** Packets counted to a track. */
  counted = 0;
  /** What was not counted to a track. */
  readonly ignored = { rtcp: 0, rtx: 0, unknownSsrc: 0, notRtp: 0 };

  /** Counts `ssrc`'s packets into `counter`; packets of `rtxSsrc` (retransmissions) are ignored, tallied apart. */
  addTrack(ssrc: number, counter: RtpTrackCounter, rtxSsrc?: number): void {
    this.#tracks.set(ssrc, counter);
    if (rtxSsrc !== undefined) this.#rtx.add(rtxSsrc);
  }

  onPacket(packet: Buffer, arrivalMs: number): void {
    const header = parseRtpHeader(packet);
    if (!header) {
      if (isRtcpPacket(packet)) this.ignored.rtcp += 1;
      else this.ignored.notRtp += 1;
      return;
    }
    const counter = this.#tracks.get(header.ssrc);
    if (!counter) {
      if (this.#rtx.has(header.ssrc)) this.ignored.rtx += 1;
      else this.ignored.unknownSsrc += 1;
      return;
    }
    this.counted += 1;
    const payload = Math.max(0, packet.length - header.headerLength - this.authTagBytes);
    counter.onPacket(header.sequenceNumber, header.timestamp, payload + FIXED_HEADER_BYTES, arrivalMs);
  }
}

// The werift objects reached (msc-node's Transport exposes its RTCPeerConnection as `pc`), typed as far as used.
interface WeriftEvent<T extends unknown[]> {
  subscribe(listener: (...args: T) => void): unknown;
}
interface WeriftDtlsTransport {
  srtpStarted: boolean;
  startSrtp(): void;
  updateSrtpSession(): void;
  dtls?: { srtp: { srtpProfile?: number } };
  iceTransport: { connection: { onData: WeriftEvent<[Buffer]> } };
}
interface WeriftPeerConnection {
  createTransport(...args: unknown[]): WeriftDtlsTransport;
  dtlsTransports: WeriftDtlsTransport[];
}

const lightened = new WeakSet<WeriftDtlsTransport>();

/**
 * Replaces `startSrtp` of a DTLS transport that has not started SRTP yet: werift calls it once
 * DTLS completes, and its own version subscribes the per-packet decrypt-and-route handler to the
 * ICE connection. This one keeps the SRTP/SRTCP sessions (werift may still send RTCP on them) and
 * subscribes the demux instead.
 */
function lighten(dtls: WeriftDtlsTransport, demux: LightRtpDemux): void {
  if (lightened.has(dtls)) return;
  if (dtls.srtpStarted) throw new Error('light receiver: SRTP already started on this transport (hook it before DTLS completes)');
  lightened.add(dtls);
  dtls.startSrtp = function startLightSrtp(this: WeriftDtlsTransport): void {
    if (this.srtpStarted) return;
    this.srtpStarted = true;
    this.updateSrtpSession();
    const profile = this.dtls?.srtp.srtpProfile;
    if (profile !== undefined) demux.authTagBytes = authTagBytes(profile);
    this.iceTransport.connection.onData.subscribe((data) => demux.onPacket(data, performance.now()));
  };
}

/**
 * Makes a werift RTCPeerConnection's DTLS transports (present and to come: the receive transport
 * creates its one bundled transport on the first consume) feed `demux` instead of werift's
 * receive path. Call it before anything is consumed on that connection.
 */
export function attachLightReceiver(pc: unknown, demux = new LightRtpDemux()): LightRtpDemux {
  const connection = pc as WeriftPeerConnection;
  if (typeof connection?.createTransport !== 'function') throw new Error('light receiver: not a werift RTCPeerConnection');
  for (const dtls of connection.dtlsTransports) lighten(dtls, demux);
  const create = connection.createTransport;
  connection.createTransport = function createLightTransport(this: WeriftPeerConnection, ...args: unknown[]): WeriftDtlsTransport {
    const dtls = create.apply(this, args);
    lighten(dtls, demux);
    return dtls;
  };
  return demux;
}
