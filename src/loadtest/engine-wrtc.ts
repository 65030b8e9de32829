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
import { pictureTrack, toneTrack } from './wrtc-sources.ts';

// mediasoup-client's handlers use the browser's globals: give them libwebrtc's.
const globals = globalThis as Record<string, unknown>;
for (const name of ['RTCPeerConnection', 'RTCSessionDescription', 'RTCIceCandidate', 'MediaStream', 'MediaStreamTrack'] as const) {
  globals[name] ??= (wrtc as unknown as Record<string, unknown>)[name];
}

const FPS = 30;

function sizeFor(kbps: number): { width: number; height: number } {
  if (kbps <= 300) return { width: 320, height: 180 };
  if (kbps <= 1200) return { width: 640, height: 360 };
  return { width: 1280, height: 720 };
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
        const { track, stop } = toneTrack();
        tracks.push({ kind: 'audio', source: 'microphone', produceOptions: { track }, stop });
      }
      if (publish.video) {
        const { track, stop } = pictureTrack({ ...sizeFor(options.videoKbps), fps: FPS, noise: true });
        tracks.push({ kind: 'video', source: 'camera', produceOptions: { track, encodings }, stop });
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
