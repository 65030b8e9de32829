/**
 * Recording taps (docs/recording.md, "Capture"): one producer of a call consumed into a
 * PlainTransport on 127.0.0.1 that sends plain RTP to a local recorder (ffmpeg). The consumer starts
 * paused; the recorder resumes it, with a key frame request, once it listens. Tap transports carry
 * appData.recording, so the worker pool does not count their consumers against subscriber capacity.
 */
import type { types } from 'mediasoup';
import { AppError } from '../shared/errors.ts';
import { mediaError } from './peer.ts';
import type { CallSession } from './session.ts';

export interface RecordingTapPorts {
  /** mediasoup's own port (the PlainTransport's listen port). */
  local: number;
  /** Where the recorder listens for RTP and RTCP. */
  rtp: number;
  rtcp: number;
}

export interface TapCodec {
  mimeType: string;
  payloadType: number;
  clockRate: number;
  channels?: number;
  parameters: Record<string, unknown>;
}

export interface RecordingTap {
  readonly producerId: string;
  readonly kind: 'audio' | 'video';
  readonly codec: TapCodec;
  /** Starts the flow: resumes the consumer and asks the producer for a key frame (video). */
  resume(): Promise<void>;
  /** Asks for a key frame again (a recorder restarted, say). */
  requestKeyFrame(): Promise<void>;
  /** Resolves when the tap ends by itself (producer closed, router closed) or is closed. */
  readonly ended: Promise<'producer_closed' | 'router_closed' | 'closed'>;
  close(): void;
}

export interface RecordableTrack {
  participantId: string;
  producerId: string;
  kind: 'audio' | 'video';
  source: string;
}

export function recordableTracks(session: CallSession): RecordableTrack[] {
  const tracks: RecordableTrack[] = [];
  for (const peer of session.peers.values()) {
    for (const [producerId, { producer, source }] of peer.producers) {
      if (!producer.closed) tracks.push({ participantId: peer.participantId, producerId, kind: producer.kind, source });
    }
  }
  return tracks;
}

/** Plain RTP of one codec, no RTX, no header extensions: what ffmpeg's RTP demuxer reads. */
function tapCapabilities(router: types.Router, kind: 'audio' | 'video'): types.RtpCapabilities {
  const codecs = (router.rtpCapabilities.codecs ?? []).filter((codec) => codec.kind === kind && !/\/rtx$/i.test(codec.mimeType));
  return { codecs, headerExtensions: [] };
}

export async function openRecordingTap(session: CallSession, producerId: string, ports: RecordingTapPorts): Promise<RecordingTap> {
  const main = session.main;
  if (!main) throw new AppError('media_unavailable', 'The call has no media router');
  const found = session.findProducer(producerId);
  if (!found) throw new AppError('not_found', `Producer ${producerId} is not in the call`);
  let transport: types.PlainTransport | null = null;
  try {
    transport = await main.router.createPlainTransport({ listenIp: '127.0.0.1', port: ports.local, rtcpMux: false, comedia: false, appData: { recording: true } });
    await transport.connect({ ip: '127.0.0.1', port: ports.rtp, rtcpPort: ports.rtcp });
    const consumer = await transport.consume({ producerId, rtpCapabilities: tapCapabilities(main.router, found.producer.kind), paused: true, appData: { recording: true } });
    const codec = consumer.rtpParameters.codecs[0];
    if (!codec) throw new AppError('invalid_state', 'The tap consumer has no codec');
    const plain = transport;
    const ended = new Promise<'producer_closed' | 'router_closed' | 'closed'>((resolve) => {
      consumer.on('producerclose', () => resolve('producer_closed'));
      plain.on('routerclose', () => resolve('router_closed'));
      plain.observer.once('close', () => resolve('closed'));
    });
    return {
      producerId,
      kind: consumer.kind,
      codec: { mimeType: codec.mimeType, payloadType: codec.payloadType, clockRate: codec.clockRate, ...(codec.channels ? { channels: codec.channels } : {}), parameters: { ...(codec.parameters ?? {}) } },
      async resume() {
        if (consumer.closed) return;
        await consumer.resume();
        if (consumer.kind === 'video') await consumer.requestKeyFrame();
      },
      async requestKeyFrame() {
        if (!consumer.closed && consumer.kind === 'video') await consumer.requestKeyFrame();
      },
      ended,
      close() {
        if (!plain.closed) plain.close();
      },
    };
  } catch (error) {
    if (transport && !transport.closed) transport.close();
    throw mediaError(error, 'recording tap');
  }
}
