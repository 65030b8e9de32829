/**
 * What a receiver measures per track, from the RTP headers it receives (RFC 3550, appendix A.1 and
 * A.8): packets, bytes, loss from the extended highest sequence number (16-bit wrap counted), and
 * interarrival jitter in the codec's clock. The wrtc engine fills the same shape from libwebrtc's
 * inbound-rtp stats instead (`fromInboundRtp`).
 */
import type { MediaKind } from '../protocol/signaling.ts';

export interface TrackSnapshot {
  kind: MediaKind;
  packets: number;
  bytes: number;
  /** Packets expected from the first to the highest sequence number seen. */
  expected: number;
  lost: number;
  jitterMs: number;
  /** Milliseconds between the first and the last packet. */
  spanMs: number;
}

export interface TrackCounter {
  readonly kind: MediaKind;
  snapshot(): TrackSnapshot;
}

const SEQ_MOD = 1 << 16;
/** A jump this large backwards or forwards is a restarted stream, not reordering (RFC 3550 A.1's MAX_DROPOUT). */
const MAX_DROPOUT = 3000;

export class RtpTrackCounter implements TrackCounter {
  packets = 0;
  bytes = 0;
  #baseSeq = 0;
  /** Extended (cycles × 2^16 + seq) highest sequence number. */
  #maxExtended = -1;
  #cycles = 0;
  #maxSeq = 0;
  #jitter = 0; // in RTP clock units
  #lastTransit: number | null = null;
  #firstAtMs = 0;
  #lastAtMs = 0;

  constructor(
    readonly kind: MediaKind,
    private readonly clockRate: number,
  ) {}

  /** One received RTP packet: its sequence number, RTP timestamp, size, and arrival time (ms, monotonic). */
  onPacket(sequenceNumber: number, rtpTimestamp: number, size: number, arrivalMs: number): void {
    this.packets += 1;
    this.bytes += size;
    if (this.#maxExtended < 0) {
      this.#baseSeq = sequenceNumber;
      this.#maxSeq = sequenceNumber;
      this.#maxExtended = sequenceNumber;
      this.#firstAtMs = arrivalMs;
    } else {
      const delta = (sequenceNumber - this.#maxSeq + SEQ_MOD) % SEQ_MOD;
      if (delta > 0 && delta < MAX_DROPOUT) {
        if (sequenceNumber < this.#maxSeq) this.#cycles += SEQ_MOD; // wrapped
        this.#maxSeq = sequenceNumber;
        this.#maxExtended = this.#cycles + sequenceNumber;
      }
      // else: a duplicate or a reordered (late) packet; it counts as received, not as progress.
    }
    this.#lastAtMs = arrivalMs;
    const arrival = (arrivalMs * this.clockRate) / 1000;
    const transit = arrival - rtpTimestamp;
    if (this.#lastTransit !== null) {
      let d = Math.abs(transit - this.#lastTransit);
      // RTP timestamps are 32-bit: a wrap shows as a jump of ~2^32 in transit.
      if (d > 2 ** 31) d = Math.abs(d - 2 ** 32);
      this.#jitter += (d - this.#jitter) / 16;
    }
    this.#lastTransit = transit;
  }

  snapshot(): TrackSnapshot {
    const expected = this.#maxExtended < 0 ? 0 : this.#maxExtended - this.#baseSeq + 1;
    return {
      kind: this.kind,
      packets: this.packets,
      bytes: this.bytes,
      expected,
      lost: Math.max(0, expected - this.packets),
      jitterMs: (this.#jitter / this.clockRate) * 1000,
      spanMs: this.#lastAtMs - this.#firstAtMs,
    };
  }
}

/** A track measured by libwebrtc: the latest inbound-rtp stats are pushed in by the engine. */
export class InboundRtpTrackCounter implements TrackCounter {
  #latest: TrackSnapshot;
  #firstAtMs: number | null = null;

  constructor(readonly kind: MediaKind) {
    this.#latest = { kind, packets: 0, bytes: 0, expected: 0, lost: 0, jitterMs: 0, spanMs: 0 };
  }

  /** libwebrtc's inbound-rtp: packetsReceived, packetsLost, bytesReceived, jitter (seconds). */
  update(stat: { packetsReceived?: number; packetsLost?: number; bytesReceived?: number; jitter?: number }, nowMs: number): void {
    const packets = stat.packetsReceived ?? 0;
    if (packets > 0 && this.#firstAtMs === null) this.#firstAtMs = nowMs;
    const lost = Math.max(0, stat.packetsLost ?? 0);
    this.#latest = {
      kind: this.kind,
      packets,
      bytes: stat.bytesReceived ?? 0,
      expected: packets + lost,
      lost,
      jitterMs: (stat.jitter ?? 0) * 1000,
      spanMs: this.#firstAtMs === null ? 0 : nowMs - this.#firstAtMs,
    };
  }

  snapshot(): TrackSnapshot {
    return this.#latest;
  }
}
