/**
 * The server's side of a negotiation as SDP: an answer to a client's offer, or a server offer for
 * renegotiation. One ICE-lite, BUNDLEd, rtcp-mux transport; per m-line the producer the server
 * receives, the consumer it sends (a=msid, a=ssrc, an RTX FID group), both, neither, or rejected.
 */
import * as sdpTransform from 'sdp-transform';
import type { types } from 'mediasoup';
import { isRtx } from './codecs.ts';
import type { MediaKind } from './offer.ts';

/** What the server's transport says about itself (a WebRtcTransport's own fields). */
export interface TransportDescription {
  iceParameters: types.IceParameters;
  iceCandidates: types.IceCandidate[];
  /** The server's fingerprints. */
  dtlsParameters: types.DtlsParameters;
}

/** A track the server sends on an m-line: a consumer's RtpParameters and the msid it is labelled with. */
export interface OutgoingTrack {
  rtpParameters: types.RtpParameters;
  /** a=msid stream id: the remote participant, so its audio and video land in one MediaStream. */
  streamId: string;
  trackId: string;
}

export type SectionPlan =
  | { mid: string; kind: MediaKind | 'application'; rejected: true; protocol?: string; payloads?: string }
  | {
      mid: string;
      kind: MediaKind;
      rejected?: false;
      /** The producer the server receives here (the client's RtpParameters as given to produce()). */
      receive?: types.RtpParameters;
      /** The consumer the server sends here. */
      send?: OutgoingTrack;
      /** With neither: the codecs to list on the idle (inactive) m-line, e.g. the client's capabilities. */
      idle?: types.RtpCapabilities;
    };

export interface DescriptionOptions {
  transport: TransportDescription;
  sections: SectionPlan[];
  /** o= line: a stable session id and a version bumped for each description the server writes. */
  origin: { sessionId: string; version: number };
  /** Answers only: the DTLS role the server takes (the client's role from its a=setup decides it). */
  dtlsRole?: 'client' | 'server';
  extmapAllowMixed?: boolean;
}

type Media = sdpTransform.MediaDescription;

function setupFor(type: 'offer' | 'answer', role: DescriptionOptions['dtlsRole']): string {
  if (type === 'offer') return 'actpass';
  return role === 'client' ? 'active' : 'passive';
}

function codecLines(media: Media, codecs: types.RtpCodecParameters[]): void {
  const seen = new Set<number>();
  media.rtp = [];
  media.fmtp = [];
  media.rtcpFb = [];
  for (const codec of codecs) {
    if (seen.has(codec.payloadType)) continue;
    seen.add(codec.payloadType);
    const [, name = ''] = codec.mimeType.split('/');
    media.rtp.push({ payload: codec.payloadType, codec: name, rate: codec.clockRate, ...(codec.channels && codec.channels > 1 ? { encoding: codec.channels } : {}) });
    const params = Object.entries(codec.parameters ?? {}).filter(([, value]) => value !== undefined);
    if (params.length > 0) media.fmtp.push({ payload: codec.payloadType, config: params.map(([key, value]) => `${key}=${String(value)}`).join(';') });
    for (const fb of codec.rtcpFeedback ?? []) media.rtcpFb.push({ payload: codec.payloadType, type: fb.type, ...(fb.parameter ? { subtype: fb.parameter } : {}) });
  }
  media.payloads = [...seen].join(' ');
}

function idleCodecs(caps: types.RtpCapabilities | undefined): types.RtpCodecParameters[] {
  const first = (caps?.codecs ?? []).find((c) => !isRtx(c.mimeType));
  if (!first || first.preferredPayloadType === undefined) return [];
  return [{ mimeType: first.mimeType, payloadType: first.preferredPayloadType, clockRate: first.clockRate, ...(first.channels ? { channels: first.channels } : {}), parameters: first.parameters ?? {}, rtcpFeedback: [] }];
}

function outgoingSsrcs(media: Media, track: OutgoingTrack): void {
  const encoding = track.rtpParameters.encodings?.[0];
  if (!encoding?.ssrc) return;
  const cname = track.rtpParameters.rtcp?.cname ?? track.streamId;
  const msid = `${track.streamId} ${track.trackId}`;
  const ssrcs = [encoding.ssrc, ...(encoding.rtx?.ssrc ? [encoding.rtx.ssrc] : [])];
  media.ssrcs = ssrcs.flatMap((id) => [
    { id, attribute: 'cname', value: cname },
    { id, attribute: 'msid', value: msid },
  ]);
  if (encoding.rtx?.ssrc) media.ssrcGroups = [{ semantics: 'FID', ssrcs: `${encoding.ssrc} ${encoding.rtx.ssrc}` }];
}

function section(type: 'offer' | 'answer', plan: SectionPlan, options: DescriptionOptions): Media {
  const { transport } = options;
  if (plan.rejected) {
    const application = plan.kind === 'application';
    return {
      type: plan.kind,
      port: 0,
      protocol: plan.protocol || (application ? 'UDP/DTLS/SCTP' : 'UDP/TLS/RTP/SAVPF'),
      payloads: plan.payloads || (application ? 'webrtc-datachannel' : '0'),
      connection: { version: 4, ip: '0.0.0.0' },
      mid: plan.mid,
      direction: 'inactive',
    } as Media;
  }
  const media = {
    type: plan.kind,
    port: 7,
    protocol: 'UDP/TLS/RTP/SAVPF',
    payloads: '',
    connection: { version: 4, ip: '127.0.0.1' },
    mid: plan.mid,
    iceUfrag: transport.iceParameters.usernameFragment,
    icePwd: transport.iceParameters.password,
    candidates: transport.iceCandidates.map((c) => ({
      foundation: c.foundation,
      component: 1,
      transport: c.protocol,
      priority: c.priority,
      ip: c.ip,
      port: c.port,
      type: c.type,
      ...(c.tcpType ? { tcptype: c.tcpType } : {}),
    })),
    endOfCandidates: 'end-of-candidates',
    iceOptions: 'renomination',
    setup: setupFor(type, options.dtlsRole),
    rtcpMux: 'rtcp-mux',
    rtcpRsize: 'rtcp-rsize',
  } as Media;
  const fingerprint = transport.dtlsParameters.fingerprints.find((f) => f.algorithm === 'sha-256') ?? transport.dtlsParameters.fingerprints.at(-1);
  if (fingerprint) media.fingerprint = { type: fingerprint.algorithm, hash: fingerprint.value };
  const receive = plan.receive;
  const send = plan.send;
  media.direction = receive && send ? 'sendrecv' : receive ? 'recvonly' : send ? 'sendonly' : 'inactive';
  const codecs = [...(receive?.codecs ?? []), ...(send?.rtpParameters.codecs ?? [])];
  codecLines(media, codecs.length > 0 ? codecs : idleCodecs(plan.idle));
  const extensions = new Map<number, string>();
  for (const ext of [...(receive?.headerExtensions ?? []), ...(send?.rtpParameters.headerExtensions ?? [])]) if (!extensions.has(ext.id)) extensions.set(ext.id, ext.uri);
  if (!receive && !send) for (const ext of plan.idle?.headerExtensions ?? []) if (ext.preferredId && !extensions.has(ext.preferredId)) extensions.set(ext.preferredId, ext.uri);
  media.ext = [...extensions].map(([value, uri]) => ({ value, uri }));
  const rids = (receive?.encodings ?? []).map((e) => e.rid).filter((rid): rid is string => typeof rid === 'string');
  if (rids.length > 0) {
    media.rids = rids.map((id) => ({ id, direction: 'recv' }));
    media.simulcast = { dir1: 'recv', list1: rids.join(';') };
  }
  if (send) {
    media.msid = [{ id: send.streamId, appdata: send.trackId }];
    outgoingSsrcs(media, send);
  }
  return media;
}

function describe(type: 'offer' | 'answer', options: DescriptionOptions): string {
  const media = options.sections.map((plan) => section(type, plan, options));
  const bundled = options.sections.filter((plan) => !plan.rejected).map((plan) => plan.mid);
  const session: sdpTransform.SessionDescription = {
    version: 0,
    origin: { username: 'callplane', sessionId: options.origin.sessionId, sessionVersion: options.origin.version, netType: 'IN', ipVer: 4, address: '0.0.0.0' },
    name: '-',
    timing: { start: 0, stop: 0 },
    icelite: 'ice-lite',
    ...(bundled.length > 0 ? { groups: [{ type: 'BUNDLE', mids: bundled.join(' ') }] } : {}),
    msidSemantic: { semantic: 'WMS', token: '*' },
    ...(options.extmapAllowMixed ? { extmapAllowMixed: 'extmap-allow-mixed' as const } : {}),
    media,
  };
  return sdpTransform.write(session);
}

/** The server's answer to a client offer: `sections` in the offer's m-line order, one per m-line. */
export function buildAnswer(options: DescriptionOptions): string {
  return describe('answer', options);
}

/** A server offer (renegotiation): every m-line negotiated so far, in order, then the new ones. */
export function buildOffer(options: Omit<DescriptionOptions, 'dtlsRole'>): string {
  return describe('offer', options);
}
