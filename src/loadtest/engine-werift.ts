/**
 * The werift engine: msc-node (mediasoup-client on werift, a WebRTC stack in TypeScript) sending
 * pre-encoded VP8 and Opus (werift-media.ts) and counting received RTP without decoding it. Cheap
 * enough for a few hundred peers per core; no congestion control, so what it sends is the files'
 * bitrate whatever the network does. Receivers: `full` counts the RTP werift hands up (decrypted,
 * through its RTCRtpReceiver); `light` (subscribers only) counts the SRTP packets' clear headers
 * on the transport itself (light-receiver.ts).
 */
import { performance } from 'node:perf_hooks';
import { Device, RTCRtpCodecParameters, useAbsSendTime, useFIR, useNACK, usePLI, useREMB, useSdesMid } from 'msc-node';
import type { MediaKind } from '../protocol/signaling.ts';
import { audioFixturePath, videoFixturePath } from './media-files.ts';
import { attachLightReceiver, LightRtpDemux } from './light-receiver.ts';
import type { ClientDevice, ClientTransport, Engine, OutgoingTrack } from './peer.ts';
import { RtpTrackCounter, type TrackCounter } from './track-stats.ts';
import { OpusFileSource, Vp8FileSource } from './werift-media.ts';

interface RtpHeaderLike {
  sequenceNumber: number;
  timestamp: number;
}
interface ReceivedRtp {
  header: RtpHeaderLike;
  payload: Buffer;
}
interface WeriftTrack {
  onReceiveRtp: { subscribe(listener: (rtp: ReceivedRtp) => void): unknown };
}
interface WeriftSender {
  onPictureLossIndication: { subscribe(listener: () => void): unknown };
}

interface ConsumerEncoding {
  ssrc?: number;
  rtx?: { ssrc?: number };
}

/** The fixed RTP header is 12 bytes; counted so bitrates match what the SFU forwards. */
const RTP_HEADER_BYTES = 12;

/** `full`: werift's own receive path; `light`: subscribers count SRTP headers (docs/loadtest.md, "Receivers"). */
export type WeriftReceiver = 'full' | 'light';

export function createWeriftEngine(options: { videoKbps: number; receiver?: WeriftReceiver }): Engine {
  const receiver = options.receiver ?? 'full';
  /** The light receive transports' demuxes, by msc-node transport. */
  const lightReceivers = new Map<ClientTransport, LightRtpDemux>();
  const capabilities = {
    codecs: {
      audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 })],
      video: [new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, rtcpFeedback: [useFIR(), useNACK(), usePLI(), useREMB()] })],
    },
    headerExtensions: { audio: [useSdesMid(), useAbsSendTime()], video: [useSdesMid(), useAbsSendTime()] },
  };
  return {
    name: 'werift',
    // werift gathers host candidates from the interfaces, leaving loopback out: a loopback-only host has none.
    transportSettings: { iceAdditionalHostAddresses: ['127.0.0.1'] },
    createDevice: () => new Device(capabilities) as unknown as ClientDevice,
    prepareRecv(recv, peer) {
      if (receiver !== 'light' || peer.publishes) return;
      // msc-node's Transport exposes its werift RTCPeerConnection, created with the transport.
      lightReceivers.set(recv, attachLightReceiver((recv as ClientTransport & { pc?: unknown }).pc));
    },
    createTracks(publish) {
      const tracks: OutgoingTrack[] = [];
      if (publish.audio) {
        const source = new OpusFileSource(audioFixturePath());
        tracks.push({ kind: 'audio', source: 'microphone', produceOptions: { track: source.track }, onProducer: () => source.start(), stop: () => source.stop() });
      }
      if (publish.video) {
        const source = new Vp8FileSource(videoFixturePath(options.videoKbps));
        tracks.push({
          kind: 'video',
          source: 'camera',
          produceOptions: { track: source.track },
          onProducer(producer) {
            const sender = (producer as { rtpSender?: WeriftSender }).rtpSender;
            sender?.onPictureLossIndication.subscribe(() => source.requestKeyFrame());
            source.start();
          },
          stop: () => source.stop(),
        });
      }
      return tracks;
    },
    watchConsumer(consumer, recv): TrackCounter {
      const codec = (consumer.rtpParameters as { codecs?: Array<{ clockRate?: number }> }).codecs?.[0];
      const counter = new RtpTrackCounter(consumer.kind as MediaKind, codec?.clockRate ?? (consumer.kind === 'audio' ? 48000 : 90000));
      const light = lightReceivers.get(recv);
      if (light) {
        const encoding = (consumer.rtpParameters as { encodings?: ConsumerEncoding[] }).encodings?.[0];
        if (encoding?.ssrc === undefined) throw new Error('light receiver: the consumer has no SSRC in its rtpParameters');
        light.addTrack(encoding.ssrc, counter, encoding.rtx?.ssrc);
        return counter;
      }
      (consumer.track as WeriftTrack).onReceiveRtp.subscribe((rtp) => {
        counter.onPacket(rtp.header.sequenceNumber, rtp.header.timestamp, rtp.payload.length + RTP_HEADER_BYTES, performance.now());
      });
      return counter;
    },
    summary() {
      if (receiver !== 'light') return null;
      const demuxes = [...lightReceivers.values()];
      const sum = (key: keyof LightRtpDemux['ignored']): number => demuxes.reduce((s, d) => s + d.ignored[key], 0);
      return `light receivers: ${demuxes.length} subscriber transports, ${demuxes.reduce((s, d) => s + d.counted, 0)} RTP packets counted from clear headers; not counted: ${sum('rtcp')} SRTCP, ${sum('rtx')} RTX, ${sum('unknownSsrc')} of no consumer's SSRC, ${sum('notRtp')} other`;
    },
  };
}
