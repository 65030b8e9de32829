/**
 * The SDP bridge: SDP ⇄ mediasoup RTP parameters, pure functions on sdp-transform (docs/sdp.md).
 * Unified Plan, one BUNDLE group, rtcp-mux, ICE-lite on the server's side. This API is stable: it
 * only grows.
 *
 * Reading a client's SDP (an offer, or its answer to a server offer):
 *
 *   const offer = parseOffer(sdp, router.rtpCapabilities);   // throws AppError('validation_failed', …naming the m-line)
 *   offer.dtlsParameters                                      // the client's fingerprint; role from a=setup
 *   offer.media[i] = { index, mid, kind, direction, rejected, rtpParameters?, rtpCapabilities?, msid? }
 *
 *   - a sendonly/sendrecv m-line (WHIP publish): `rtpParameters` is ready for
 *     `transport.produce({ kind, rtpParameters })` (the client's first codec the router has, its RTX,
 *     header extensions, SSRCs / FID, or simulcast rids; mid = the m-line's mid);
 *   - a recvonly/sendrecv m-line (WHEP playback): `rtpCapabilities` is what the client can receive
 *     there, for `router.canConsume()` and `transport.consume({ producerId, rtpCapabilities, mid })`
 *     (mid: the client's m-line, so the consumer's packets carry it);
 *   - `rejected` m-lines (port 0, data channels) are answered rejected.
 *
 * Connecting the server's WebRtcTransport: `transport.connect({ dtlsParameters: connectParameters(offer) })`,
 * and answer with `dtlsRole: serverDtlsRole(offer)`.
 *
 * Writing the server's side:
 *
 *   buildAnswer({ transport: { iceParameters, iceCandidates, dtlsParameters },   // the WebRtcTransport's own
 *                 dtlsRole: serverDtlsRole(offer),
 *                 origin: { sessionId, version },                               // keep sessionId, bump version
 *                 sections: offer.media.map((m) => ... one SectionPlan per m-line, in order) })
 *
 *   SectionPlan per mid: `{ mid, kind, receive: producer.rtpParameters }` (server receives: recvonly),
 *   `{ mid, kind, send: { rtpParameters: consumer.rtpParameters, streamId, trackId } }` (server sends:
 *   sendonly, with a=msid, a=ssrc and the RTX FID group), both (sendrecv), neither with
 *   `idle: m.rtpCapabilities` (inactive), or `{ mid, kind, rejected: true }` (port 0).
 *   `rejectedSection(m)` builds the last from an OfferedMedia.
 *
 *   buildOffer({...same, no dtlsRole}) writes a server offer (renegotiation, a=setup:actpass).
 */
import type { types } from 'mediasoup';
import type { OfferedMedia, ParsedOffer } from './offer.ts';
import type { SectionPlan } from './describe.ts';

export { parseOffer, type MediaDirection, type MediaKind, type OfferedMedia, type ParsedOffer } from './offer.ts';
export { buildAnswer, buildOffer, type DescriptionOptions, type OutgoingTrack, type SectionPlan, type TransportDescription } from './describe.ts';
export { h264Profile } from './codecs.ts';
export { restrictToRouterExtensionIds } from './receive-extensions.ts';

/** The DTLS role the server takes in its answer: the client's a=setup decides (actpass → the server is passive). */
export function serverDtlsRole(offer: Pick<ParsedOffer, 'dtlsParameters'>): 'client' | 'server' {
  return offer.dtlsParameters.role === 'server' ? 'client' : 'server';
}

/** The client's DTLS parameters for `transport.connect()`, with its role resolved (actpass → client). */
export function connectParameters(offer: Pick<ParsedOffer, 'dtlsParameters'>): types.DtlsParameters {
  return { role: serverDtlsRole(offer) === 'server' ? 'client' : 'server', fingerprints: offer.dtlsParameters.fingerprints };
}

/** The rejected (port 0) answer section for an offered m-line. */
export function rejectedSection(media: OfferedMedia): SectionPlan {
  return { mid: media.mid, kind: media.kind, rejected: true, protocol: media.protocol, payloads: media.payloads };
}

/**
 * Whether a consumer can be sent on a client's m-line inside an answer: an answer must use the
 * offer's payload types, and a mediasoup consumer sends in the router's. When they differ the
 * track goes in the server's next offer instead (where the server names its payload types).
 */
export function sendableInAnswer(consumer: types.RtpParameters, offered: types.RtpCapabilities | undefined): boolean {
  if (!offered) return false;
  return consumer.codecs.every((codec) =>
    (offered.codecs ?? []).some((c) => c.preferredPayloadType === codec.payloadType && c.mimeType.toLowerCase() === codec.mimeType.toLowerCase() && (!codec.mimeType.toLowerCase().endsWith('/rtx') || Number(c.parameters?.apt) === Number(codec.parameters?.apt))),
  );
}
