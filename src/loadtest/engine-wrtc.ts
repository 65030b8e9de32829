/**
 * The wrtc engine: libwebrtc through @roamhq/wrtc with the browser's mediasoup-client (handler
 * Chrome111), so publishers encode for real (a tone, a moving picture) with libwebrtc's
 * congestion control, and simulcast works. Costly: about a dozen publishers per core. libwebrtc
 * keeps the RTP to itself, so receivers are measured from getStats' inbound-rtp (packets, loss,
 * jitter), matched to consumers by SSRC. The command ends with process.exit(): @roamhq/wrtc
 * crashes when Node's own teardown finalizes a live audio source.
 */
import { performance } from 'node:perf_hooks';
import wrtc from '@roamhq/wrtc';
import { Device } from 'mediasoup-client';
import type { ClientDevice, ClientTransport, Engine, OutgoingTrack } from './peer.ts';
import { InboundRtpTrackCounter, type TrackCounter } from './track-stats.ts';

// mediasoup-client's handlers use the browser's globals: give them libwebrtc's.
const globals = globalThis as Record<string, unknown>;
for (const name of ['RTCPeerConnection', 'RTCSessionDescription', 'RTCIceCandidate', 'MediaStream', 'MediaStreamTrack'] as const) {
  globals[name] ??= (wrtc as unknown as Record<string, unknown>)[name];
}

const SAMPLE_RATE = 48_000;
const AUDIO_FRAME_MS = 10;
const FPS = 30;

function sizeFor(kbps: number): { width: number; height: number } {
  if (kbps <= 300) return { width: 320, height: 180 };
  if (kbps <= 1200) return { width: 640, height: 360 };
  return { width: 1280, height: 720 };
}

function toneTrack(): OutgoingTrack['produceOptions'] & { stop(): void } {
  const source = new wrtc.nonstandard.RTCAudioSource();
  const track = source.createTrack();
  const samplesPerFrame = (SAMPLE_RATE * AUDIO_FRAME_MS) / 1000;
  const step = (2 * Math.PI * 440) / SAMPLE_RATE;
  let phase = 0;
  const timer = setInterval(() => {
    const samples = new Int16Array(samplesPerFrame);
    for (let i = 0; i < samplesPerFrame; i++) {
      samples[i] = Math.round(Math.sin(phase) * 8000);
      phase += step;
    }
    phase %= 2 * Math.PI;
    source.onData({ samples, sampleRate: SAMPLE_RATE, bitsPerSample: 16, channelCount: 1, numberOfFrames: samplesPerFrame });
  }, AUDIO_FRAME_MS);
  return { track, stop: () => (clearInterval(timer), track.stop()) };
}

/** A moving gradient with a noisy band, so the encoder has something to spend its bitrate on. */
function pictureTrack(kbps: number): OutgoingTrack['produceOptions'] & { stop(): void } {
  const source = new wrtc.nonstandard.RTCVideoSource();
  const track = source.createTrack();
  const { width, height } = sizeFor(kbps);
  const data = new Uint8Array(width * height * 1.5);
  data.fill(128, width * height);
  let frame = 0;
  const timer = setInterval(() => {
    frame++;
    for (let y = 0; y < height; y++) data.fill((y + frame * 4) & 0xff, y * width, (y + 1) * width);
    const band = (frame * 7) % height;
    for (let i = band * width; i < Math.min(height, band + 16) * width; i++) data[i] = (Math.random() * 255) | 0;
    source.onFrame({ width, height, data });
  }, Math.round(1000 / FPS));
  return { track, stop: () => (clearInterval(timer), track.stop()) };
}

export function createWrtcEngine(options: { videoKbps: number; simulcast: boolean }): Engine {
  const countersByTransport = new WeakMap<ClientTransport, Map<number, InboundRtpTrackCounter>>();
  const maxBitrate = options.videoKbps * 1000;
  const encodings = options.simulcast
    ? [
        { rid: 'r0', scaleResolutionDownBy: 4, maxBitrate: Math.round(maxBitrate / 8) },
        { rid: 'r1', scaleResolutionDownBy: 2, maxBitrate: Math.round(maxBitrate / 4) },
        { rid: 'r2', scaleResolutionDownBy: 1, maxBitrate },
      ]
    : [{ maxBitrate }];
  return {
    name: 'wrtc',
    transportSettings: {},
    createDevice: () => new Device({ handlerName: 'Chrome111' }) as unknown as ClientDevice,
    createTracks(publish) {
      const tracks: OutgoingTrack[] = [];
      if (publish.audio) {
        const { stop, ...produceOptions } = toneTrack();
        tracks.push({ kind: 'audio', source: 'microphone', produceOptions, stop });
      }
      if (publish.video) {
        const { stop, ...produceOptions } = pictureTrack(options.videoKbps);
        tracks.push({ kind: 'video', source: 'camera', produceOptions: { ...produceOptions, encodings }, stop });
      }
      return tracks;
    },
    watchConsumer(consumer, recv): TrackCounter {
      const counter = new InboundRtpTrackCounter(consumer.kind);
      let bySsrc = countersByTransport.get(recv);
      if (!bySsrc) countersByTransport.set(recv, (bySsrc = new Map()));
      for (const encoding of (consumer.rtpParameters as { encodings?: Array<{ ssrc?: number }> }).encodings ?? []) {
        if (encoding.ssrc !== undefined) bySsrc.set(encoding.ssrc, counter);
      }
      return counter;
    },
    async refresh(recv) {
      const bySsrc = countersByTransport.get(recv);
      if (!bySsrc || bySsrc.size === 0) return;
      const report = (await recv.getStats()) as Map<string, { type?: string; ssrc?: number; packetsReceived?: number; packetsLost?: number; bytesReceived?: number; jitter?: number }>;
      const now = performance.now();
      report.forEach((stat) => {
        if (stat.type !== 'inbound-rtp' || stat.ssrc === undefined) return;
        bySsrc.get(stat.ssrc)?.update(stat, now);
      });
    },
  };
}
