/**
 * A client's SDP offer (or answer) read into what mediasoup takes: the client's DTLS parameters,
 * each m-line's mid, kind and direction, producer RtpParameters for the m-lines it sends on and
 * receive capabilities for the m-lines it receives on. Unified Plan, BUNDLE and rtcp-mux only;
 * anything else is refused with validation_failed naming the m-line (docs/sdp.md).
 */
import * as sdpTransform from 'sdp-transform';
import type { types } from 'mediasoup';
import { AppError } from '../../shared/errors.ts';
import { commonFeedback, isAuxiliary, isRtx, routerCodecFor, routerExtension } from './codecs.ts';

export type MediaDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
export type MediaKind = 'audio' | 'video';

export interface OfferedMedia {
  /** Position in the offer (an answer keeps the order). */
  index: number;
  mid: string;
  kind: MediaKind | 'application';
  /** As the client states it. */
  direction: MediaDirection;
  /** Port 0 in the offer, or a kind the server does not take (data channels): answered with port 0. */
  rejected: boolean;
  /** The m-line's protocol and format list, to echo in a rejected answer section. */
  protocol: string;
  payloads: string;
  /** The client sends on this m-line: parameters for transport.produce() (one codec and its RTX). */
  rtpParameters?: types.RtpParameters;
  /** The client receives on this m-line: its capabilities there, for canConsume()/consume(). */
  rtpCapabilities?: types.RtpCapabilities;
  /** The client's a=msid (stream id and track id), when it sends. */
  msid?: { streamId: string; trackId: string };
}

export interface ParsedOffer {
  /** The client's DTLS parameters (role from a=setup: active → client, passive → server, actpass → auto). */
  dtlsParameters: types.DtlsParameters;
  /** The client's ICE credentials (a change means an ICE restart). */
  iceUfrag: string;
  icePwd: string;
  media: OfferedMedia[];
  /** Everything the client can receive, over all its m-lines (for m-lines the server adds later). */
  rtpCapabilities: types.RtpCapabilities;
  extmapAllowMixed: boolean;
}

const MAX_SDP_CHARS = 64 * 1024;
const MAX_MEDIA = 32;
const MAX_CODECS = 128;
const MID = /^[A-Za-z0-9_\-.]{1,32}$/;

type Media = sdpTransform.MediaDescription;

function refuse(message: string): never {
  throw new AppError('validation_failed', message);
}

function where(m: Media, index: number): string {
  return m.mid === undefined ? `m-line ${index} (${m.type})` : `m-line ${index} (${m.type}, mid ${m.mid})`;
}

function dtlsRole(setup: string | undefined, at: string): types.DtlsRole {
  if (setup === 'active') return 'client';
  if (setup === 'passive') return 'server';
  if (setup === 'actpass') return 'auto';
  return refuse(`${at}: a=setup must be active, passive or actpass`);
}

/** The offered codecs of one m-line, by payload type, with fmtp parameters and rtcp-fb. */
function offeredCodecs(m: Media, kind: MediaKind, at: string): types.RtpCodecParameters[] {
  const codecs = new Map<number, types.RtpCodecParameters>();
  for (const rtp of m.rtp ?? []) {
    if (!Number.isInteger(rtp.payload) || rtp.payload < 0 || rtp.payload > 127) refuse(`${at}: payload type ${rtp.payload} out of range`);
    if (typeof rtp.codec !== 'string' || !/^[A-Za-z0-9_.-]{1,32}$/.test(rtp.codec)) refuse(`${at}: bad codec name in a=rtpmap:${rtp.payload}`);
    const rate = rtp.rate;
    if (rate === undefined || !Number.isInteger(rate) || rate <= 0) refuse(`${at}: a=rtpmap:${rtp.payload} has no clock rate`);
    const channels = rtp.encoding === undefined ? undefined : Number(rtp.encoding);
    codecs.set(rtp.payload, {
      mimeType: `${kind}/${rtp.codec}`,
      payloadType: rtp.payload,
      clockRate: rate,
      ...(kind === 'audio' ? { channels: channels !== undefined && Number.isInteger(channels) && channels > 0 ? channels : 1 } : {}),
      parameters: {},
      rtcpFeedback: [],
    });
  }
  if (codecs.size > MAX_CODECS) refuse(`${at}: more than ${MAX_CODECS} codecs`);
  for (const fmtp of m.fmtp ?? []) {
    const codec = codecs.get(fmtp.payload);
    if (!codec) continue;
    const parameters = sdpTransform.parseParams(fmtp.config ?? '');
    for (const [key, value] of Object.entries(parameters)) {
      if (value === undefined || key === '__proto__') continue;
      codec.parameters![key] = key === 'profile-level-id' ? String(value) : value;
    }
  }
  for (const fb of m.rtcpFb ?? []) {
    const feedback: types.RtcpFeedback = fb.subtype ? { type: fb.type, parameter: fb.subtype } : { type: fb.type };
    const targets = fb.payload === '*' ? [...codecs.values()].filter((c) => !isRtx(c.mimeType)) : [codecs.get(Number(fb.payload))];
    for (const codec of targets) if (codec) codec.rtcpFeedback!.push(feedback);
  }
  return [...codecs.values()];
}

function rtxFor(codecs: types.RtpCodecParameters[], payloadType: number): types.RtpCodecParameters | undefined {
  return codecs.find((c) => isRtx(c.mimeType) && Number(c.parameters?.apt) === payloadType);
}

/** The offered header extensions of one m-line the router handles in `routerDirection`. */
function extensions(m: Media, kind: MediaKind, router: types.RtpCapabilities, routerDirection: 'receives' | 'sends'): types.RtpHeaderExtensionParameters[] {
  const out: types.RtpHeaderExtensionParameters[] = [];
  for (const ext of m.ext ?? []) {
    if (ext['encrypt-uri'] || !Number.isInteger(ext.value) || ext.value < 1 || ext.value > 255) continue;
    if (!routerExtension(router, kind, ext.uri, routerDirection)) continue;
    if (out.some((e) => e.id === ext.value)) continue;
    out.push({ uri: ext.uri as types.RtpHeaderExtensionParameters['uri'], id: ext.value, encrypt: false, parameters: {} });
  }
  return out;
}

function ssrcList(value: string, at: string): number[] {
  return value.split(' ').filter(Boolean).map((s) => {
    const ssrc = Number(s);
    if (!Number.isInteger(ssrc) || ssrc <= 0 || ssrc > 0xffffffff) refuse(`${at}: bad SSRC ${JSON.stringify(s)} in a=ssrc-group`);
    return ssrc;
  });
}

/** The encodings the client sends: simulcast rids, else SSRCs (with their FID RTX and SIM layers). */
function encodings(m: Media, at: string, headerExtensions: types.RtpHeaderExtensionParameters[], hasRtx: boolean): types.RtpEncodingParameters[] {
  const sendRids = (m.rids ?? []).filter((rid) => rid.direction === 'send').map((rid) => String(rid.id));
  if (m.simulcast || sendRids.length > 0) {
    const list = m.simulcast?.dir1 === 'send' ? m.simulcast.list1 : m.simulcast?.dir2 === 'send' ? m.simulcast.list2 : undefined;
    const rids = list
      ? sdpTransform.parseSimulcastStreamList(list).map((alternatives) => String(alternatives[0]?.scid ?? ''))
      : sendRids;
    if (rids.length === 0 || rids.length > 4 || rids.some((rid) => !/^[A-Za-z0-9_-]{1,16}$/.test(rid) || !sendRids.includes(rid))) {
      refuse(`${at}: a=simulcast must list 1 to 4 send rids, each declared by a=rid:<id> send`);
    }
    if (new Set(rids).size !== rids.length) refuse(`${at}: a=simulcast lists a rid twice`);
    if (!headerExtensions.some((e) => e.uri === 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id')) refuse(`${at}: simulcast needs the rtp-stream-id header extension`);
    return rids.map((rid) => ({ rid }));
  }
  const ssrcs = [...new Set((m.ssrcs ?? []).map((s) => s.id))];
  for (const ssrc of ssrcs) if (!Number.isInteger(ssrc) || ssrc <= 0 || ssrc > 0xffffffff) refuse(`${at}: bad SSRC ${ssrc}`);
  const fid = new Map<number, number>();
  let sim: number[] | null = null;
  for (const group of m.ssrcGroups ?? []) {
    const members = ssrcList(group.ssrcs, at);
    if (group.semantics === 'FID' && members.length === 2) fid.set(members[0]!, members[1]!);
    else if (group.semantics === 'SIM') sim = members;
  }
  const retransmissions = new Set(fid.values());
  const primaries = sim ?? ssrcs.filter((ssrc) => !retransmissions.has(ssrc));
  if (primaries.length > (sim ? 4 : 1)) refuse(`${at}: several streams in one m-line (Plan B); send one track per m-line (Unified Plan)`);
  if (primaries.length === 0) return [{}];
  return primaries.map((ssrc) => {
    const rtx = fid.get(ssrc);
    return rtx !== undefined && hasRtx ? { ssrc, rtx: { ssrc: rtx } } : { ssrc };
  });
}

function msidOf(m: Media, at: string): { streamId: string; trackId: string } | undefined {
  const lines = m.msid ?? [];
  const fromSsrcs = new Set((m.ssrcs ?? []).filter((s) => s.attribute === 'msid' && s.value).map((s) => s.value!));
  if (lines.length > 1 || fromSsrcs.size > 1) refuse(`${at}: several a=msid in one m-line (Plan B); send one track per m-line (Unified Plan)`);
  const line = lines[0];
  if (line) return { streamId: String(line.id).slice(0, 64), trackId: String(line.appdata ?? '').slice(0, 64) };
  const [first] = fromSsrcs;
  if (!first) return undefined;
  const [streamId = '', trackId = ''] = first.split(' ');
  return { streamId: streamId.slice(0, 64), trackId: trackId.slice(0, 64) };
}

/** The producer parameters of a sending m-line: the client's first codec the router has, with its RTX. */
function producerParameters(m: Media, kind: MediaKind, mid: string, codecs: types.RtpCodecParameters[], router: types.RtpCapabilities, at: string): types.RtpParameters {
  let chosen: types.RtpCodecParameters | undefined;
  let routerCodec: types.RtpCodecCapability | undefined;
  for (const codec of codecs) {
    if (isAuxiliary(codec.mimeType)) continue;
    routerCodec = routerCodecFor(codec, router);
    if (routerCodec) {
      chosen = codec;
      break;
    }
  }
  if (!chosen || !routerCodec) refuse(`${at}: no codec in common with the server (it takes ${describeCodecs(router, kind)})`);
  const media = { ...chosen, rtcpFeedback: commonFeedback(chosen.rtcpFeedback ?? [], routerCodec) };
  const rtx = rtxFor(codecs, chosen.payloadType);
  const headerExtensions = extensions(m, kind, router, 'receives');
  const cname = (m.ssrcs ?? []).find((s) => s.attribute === 'cname')?.value;
  return {
    mid,
    codecs: rtx ? [media, { ...rtx, rtcpFeedback: [] }] : [media],
    headerExtensions,
    encodings: encodings(m, at, headerExtensions, rtx !== undefined),
    rtcp: { ...(cname ? { cname: cname.slice(0, 64) } : {}), reducedSize: m.rtcpRsize === 'rtcp-rsize', mux: true },
  };
}

function describeCodecs(router: types.RtpCapabilities, kind: string): string {
  const names = new Set((router.codecs ?? []).filter((c) => c.kind === kind && !isRtx(c.mimeType)).map((c) => c.mimeType.split('/')[1]));
  return [...names].join(', ') || 'nothing';
}

/** What the client can receive on one m-line: offered codecs the router has (and their RTX), extensions. */
function receiveCapabilities(m: Media, kind: MediaKind, codecs: types.RtpCodecParameters[], router: types.RtpCapabilities, at: string): types.RtpCapabilities {
  const out: types.RtpCodecCapability[] = [];
  for (const codec of codecs) {
    if (isAuxiliary(codec.mimeType)) continue;
    const routerCodec = routerCodecFor(codec, router);
    if (!routerCodec) continue;
    out.push({ kind, mimeType: codec.mimeType, preferredPayloadType: codec.payloadType, clockRate: codec.clockRate, ...(codec.channels ? { channels: codec.channels } : {}), parameters: codec.parameters ?? {}, rtcpFeedback: commonFeedback(codec.rtcpFeedback ?? [], routerCodec) });
    const rtx = rtxFor(codecs, codec.payloadType);
    if (rtx) out.push({ kind, mimeType: rtx.mimeType, preferredPayloadType: rtx.payloadType, clockRate: rtx.clockRate, parameters: { apt: codec.payloadType }, rtcpFeedback: [] });
  }
  if (out.length === 0) refuse(`${at}: no codec in common with the server (it takes ${describeCodecs(router, kind)})`);
  const headerExtensions = extensions(m, kind, router, 'sends').map((e) => ({ kind, uri: e.uri, preferredId: e.id, preferredEncrypt: false, direction: 'sendrecv' as const }));
  return { codecs: out, headerExtensions };
}

function parseSdp(sdp: unknown): sdpTransform.SessionDescription {
  if (typeof sdp !== 'string' || sdp.length === 0) refuse('sdp must be a non-empty string');
  if (sdp.length > MAX_SDP_CHARS) refuse(`sdp is longer than ${MAX_SDP_CHARS} characters`);
  if (!/^v=0\r?\n/.test(sdp)) refuse('not an SDP: it must start with v=0');
  try {
    return sdpTransform.parse(sdp);
  } catch {
    return refuse('unreadable SDP');
  }
}

/**
 * Reads a client's offer against the router's capabilities (an answer to a server offer is read the
 * same way). Throws AppError('validation_failed', …) naming the m-line for anything it cannot take.
 */
export function parseOffer(sdp: unknown, router: types.RtpCapabilities): ParsedOffer {
  try {
    return readOffer(parseSdp(sdp), router);
  } catch (error) {
    if (error instanceof AppError) throw error;
    // A shape sdp-transform let through that this code did not expect: still the client's SDP.
    throw new AppError('validation_failed', `unusable SDP (${error instanceof Error ? error.message.slice(0, 100) : 'unreadable'})`);
  }
}

function readOffer(session: sdpTransform.SessionDescription, router: types.RtpCapabilities): ParsedOffer {
  const lines = session.media ?? [];
  if (lines.length === 0) refuse('the SDP has no m-line');
  if (lines.length > MAX_MEDIA) refuse(`the SDP has more than ${MAX_MEDIA} m-lines`);
  const bundle = new Set((session.groups ?? []).filter((g) => g.type === 'BUNDLE').flatMap((g) => String(g.mids).split(' ').filter(Boolean)));
  const mids = new Set<string>();
  const media: OfferedMedia[] = [];
  let fingerprint = session.fingerprint;
  let setup = session.setup;
  let iceUfrag = session.iceUfrag;
  let icePwd = session.icePwd;
  for (const [index, m] of lines.entries()) {
    const at = where(m, index);
    if (m.mid === undefined || !MID.test(String(m.mid))) refuse(`${at}: every m-line needs an a=mid of 1 to 32 token characters (Unified Plan)`);
    const mid = String(m.mid);
    if (mids.has(mid)) refuse(`${at}: mid ${mid} is used twice`);
    mids.add(mid);
    const kind: MediaKind | 'application' = m.type === 'audio' || m.type === 'video' || m.type === 'application' ? m.type : refuse(`${at}: unknown media type ${JSON.stringify(m.type)}`);
    const direction: MediaDirection = m.direction ?? session.direction ?? 'sendrecv';
    const base = { index, mid, kind, direction, protocol: String(m.protocol ?? ''), payloads: String(m.payloads ?? '') };
    if (m.port === 0 || kind === 'application') {
      media.push({ ...base, rejected: true });
      continue;
    }
    if (!bundle.has(mid)) refuse(`${at}: not in an a=group:BUNDLE (the server takes one BUNDLE group covering every m-line)`);
    if (m.rtcpMux !== 'rtcp-mux') refuse(`${at}: a=rtcp-mux is required`);
    if (!/^(UDP\/TLS\/RTP\/SAVPF|TCP\/TLS\/RTP\/SAVPF|UDP\/TLS\/RTP\/SAVP)$/.test(String(m.protocol))) refuse(`${at}: protocol ${JSON.stringify(m.protocol)} is not DTLS-SRTP`);
    fingerprint ??= m.fingerprint;
    setup ??= m.setup;
    iceUfrag ??= m.iceUfrag;
    icePwd ??= m.icePwd;
    const codecs = offeredCodecs(m, kind as MediaKind, at);
    const sends = direction === 'sendrecv' || direction === 'sendonly';
    const receives = direction === 'sendrecv' || direction === 'recvonly';
    const entry: OfferedMedia = { ...base, kind, rejected: false };
    const msid = msidOf(m, at);
    if (sends) {
      entry.rtpParameters = producerParameters(m, kind as MediaKind, mid, codecs, router, at);
      if (msid) entry.msid = msid;
    }
    if (receives || !sends) entry.rtpCapabilities = receiveCapabilities(m, kind as MediaKind, codecs, router, at);
    media.push(entry);
  }
  const live = media.filter((m) => !m.rejected);
  if (live.length === 0) refuse('the SDP has no audio or video m-line the server can take (data channels alone are not served)');
  if (!fingerprint || !/^sha-(1|224|256|384|512)$/i.test(fingerprint.type) || !/^[0-9A-Fa-f:]{2,256}$/.test(fingerprint.hash)) refuse('a=fingerprint (sha-1 … sha-512) is required');
  if (!iceUfrag || !icePwd) refuse('a=ice-ufrag and a=ice-pwd are required');
  const role = dtlsRole(setup, 'a=setup');
  const union = new Map<number, types.RtpCodecCapability>();
  const unionExt = new Map<string, types.RtpHeaderExtension>();
  for (const m of live) {
    for (const codec of m.rtpCapabilities?.codecs ?? []) if (!union.has(codec.preferredPayloadType!)) union.set(codec.preferredPayloadType!, codec);
    for (const ext of m.rtpCapabilities?.headerExtensions ?? []) unionExt.set(`${ext.kind} ${ext.preferredId}`, ext);
  }
  return {
    dtlsParameters: { role, fingerprints: [{ algorithm: fingerprint.type.toLowerCase() as types.DtlsFingerprint['algorithm'], value: fingerprint.hash.toUpperCase() }] },
    iceUfrag: String(iceUfrag),
    icePwd: String(icePwd),
    media,
    rtpCapabilities: { codecs: [...union.values()], headerExtensions: [...unionExt.values()] },
    extmapAllowMixed: session.extmapAllowMixed === 'extmap-allow-mixed',
  };
}
