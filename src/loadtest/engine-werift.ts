/**
 * The werift engine: msc-node (mediasoup-client on werift, a WebRTC stack in TypeScript) sending
 * pre-encoded VP8 and Opus (werift-media.ts) and counting received RTP without decoding it. Cheap
 * enough for a few hundred peers per core; no congestion control, so what it sends is the files'
 * bitrate whatever the network does.
 */
import { performance } from 'node:perf_hooks';
import { Device, RTCRtpCodecParameters, useAbsSendTime, useFIR, useNACK, usePLI, useREMB, useSdesMid } from 'msc-node';
import type { MediaKind } from '../protocol/signaling.ts';
import { audioFixturePath, videoFixturePath } from './media-files.ts';
import type { ClientDevice, Engine, OutgoingTrack } from './peer.ts';
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

/** The fixed RTP header is 12 bytes; counted so bitrates match what the SFU forwards. */
const RTP_HEADER_BYTES = 12;

export function createWeriftEngine(options: { videoKbps: number }): Engine {
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
    watchConsumer(consumer): TrackCounter {
      const codec = (consumer.rtpParameters as { codecs?: Array<{ clockRate?: number }> }).codecs?.[0];
      const counter = new RtpTrackCounter(consumer.kind as MediaKind, codec?.clockRate ?? (consumer.kind === 'audio' ? 48000 : 90000));
      (consumer.track as WeriftTrack).onReceiveRtp.subscribe((rtp) => {
        counter.onPacket(rtp.header.sequenceNumber, rtp.header.timestamp, rtp.payload.length + RTP_HEADER_BYTES, performance.now());
      });
      return counter;
    },
  };
}
