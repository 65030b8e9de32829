/**
 * Pre-encoded publishers for the werift engine: VP8 frames from an IVF file and Opus packets from
 * an Ogg file, packetized into RTP (RFC 7741 for VP8; one Opus packet per RTP packet, RFC 7587) and
 * written to werift tracks, which encrypt and send them. One pacer drives every source, so a few
 * hundred publishers cost one timer, not one each. A PLI restarts the VP8 file from its first
 * frame, a key frame. There is no congestion control: the files' bitrate is what is sent.
 */
import { performance } from 'node:perf_hooks';
import { MediaStreamTrack, RtpHeader, RtpPacket } from 'msc-node';
import { AUDIO_FRAME_MS, VIDEO_FPS, readIvf, readOggOpus, type EncodedFrame } from './media-files.ts';

/** Payload bytes per RTP packet: under a 1200-byte MTU with SRTP and header extensions. */
const MAX_PAYLOAD = 1100;
const VP8_DESCRIPTOR = 4;
const PACER_TICK_MS = 5;

interface PacedSource {
  nextDueMs: number;
  periodMs: number;
  emit(): void;
}

class Pacer {
  readonly #sources = new Set<PacedSource>();
  #timer: NodeJS.Timeout | null = null;

  add(source: PacedSource): void {
    this.#sources.add(source);
    this.#timer ??= setInterval(() => this.#tick(), PACER_TICK_MS);
  }

  remove(source: PacedSource): void {
    this.#sources.delete(source);
    if (this.#sources.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  #tick(): void {
    const now = performance.now();
    for (const source of this.#sources) {
      // A late tick sends what fell due, but never a burst of more than two periods' worth.
      if (source.nextDueMs < now - 2 * source.periodMs) source.nextDueMs = now - source.periodMs;
      while (source.nextDueMs <= now) {
        source.emit();
        source.nextDueMs += source.periodMs;
      }
    }
  }
}

const pacer = new Pacer();
const fileCache = new Map<string, EncodedFrame[] | Buffer[]>();

function randomUint(bits: number): number {
  return Math.floor(Math.random() * 2 ** bits);
}

abstract class RtpSource implements PacedSource {
  readonly track: MediaStreamTrack;
  nextDueMs = performance.now();
  abstract readonly periodMs: number;
  protected sequenceNumber = randomUint(16);
  protected timestamp = randomUint(32);
  #running = false;

  constructor(kind: 'audio' | 'video') {
    this.track = new MediaStreamTrack({ kind });
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.nextDueMs = performance.now();
    pacer.add(this);
  }

  stop(): void {
    this.#running = false;
    pacer.remove(this);
    this.track.stop();
  }

  abstract emit(): void;

  protected write(payload: Buffer, marker: boolean): void {
    const header = new RtpHeader({ sequenceNumber: this.sequenceNumber, timestamp: this.timestamp, marker, payloadType: 96 });
    this.sequenceNumber = (this.sequenceNumber + 1) & 0xffff;
    this.track.writeRtp(new RtpPacket(header, payload));
  }
}

export class Vp8FileSource extends RtpSource {
  readonly periodMs = 1000 / VIDEO_FPS;
  readonly #frames: EncodedFrame[];
  #index = 0;
  #pictureId = randomUint(15);
  keyFrameRequests = 0;

  constructor(path: string) {
    super('video');
    let frames = fileCache.get(path) as EncodedFrame[] | undefined;
    if (!frames) fileCache.set(path, (frames = readIvf(path)));
    this.#frames = frames;
  }

  /** A PLI or FIR from the SFU: the next frame sent is the file's first, a key frame. */
  requestKeyFrame(): void {
    this.keyFrameRequests += 1;
    this.#index = 0;
  }

  emit(): void {
    const frame = this.#frames[this.#index]!.data;
    this.#index = (this.#index + 1) % this.#frames.length;
    const chunk = MAX_PAYLOAD - VP8_DESCRIPTOR;
    for (let offset = 0; offset < frame.length; offset += chunk) {
      const end = Math.min(frame.length, offset + chunk);
      const payload = Buffer.allocUnsafe(VP8_DESCRIPTOR + end - offset);
      // X=1 (extensions follow), S=1 on the first packet of the frame, partition 0; I=1: a 15-bit picture id.
      payload[0] = 0x80 | (offset === 0 ? 0x10 : 0);
      payload[1] = 0x80;
      payload[2] = 0x80 | (this.#pictureId >> 8);
      payload[3] = this.#pictureId & 0xff;
      frame.copy(payload, VP8_DESCRIPTOR, offset, end);
      this.write(payload, end === frame.length);
    }
    this.#pictureId = (this.#pictureId + 1) & 0x7fff;
    this.timestamp = (this.timestamp + 90_000 / VIDEO_FPS) >>> 0;
  }
}

export class OpusFileSource extends RtpSource {
  readonly periodMs = AUDIO_FRAME_MS;
  readonly #packets: Buffer[];
  #index = 0;

  constructor(path: string) {
    super('audio');
    let packets = fileCache.get(path) as Buffer[] | undefined;
    if (!packets) fileCache.set(path, (packets = readOggOpus(path)));
    this.#packets = packets;
  }

  emit(): void {
    this.write(this.#packets[this.#index]!, false);
    this.#index = (this.#index + 1) % this.#packets.length;
    this.timestamp = (this.timestamp + 48 * AUDIO_FRAME_MS) >>> 0;
  }
}
