import type { types } from 'mediasoup';
import { AppError } from '../../shared/errors.ts';
import type { ParsedOffer } from './offer.ts';

/**
 * A mediasoup consumer's packets carry header extensions at the router's own ids (mid 1,
 * abs-send-time 4, transport-cc 5, audio level 10, …), whatever the client asked for; it does not
 * renumber them. A client that receives on a BUNDLE transport reads every packet with the ids it
 * negotiated, and browsers number differently (Chrome: audio level 1, abs-send-time 2,
 * transport-cc 3, mid 4): its MID would be read from the router's abs-send-time bytes, and its
 * packets dropped. So on a transport the client receives on, only extensions at the router's id
 * for their URI are negotiated (in both directions, since BUNDLE shares one map); the others are
 * left out of the answer and the client neither sends nor expects them. Media is then told apart
 * by a=ssrc. A send-only client (WHIP) does not need this: producers read any ids.
 * Simulcast needs the rid extension, so a client that also receives cannot send simulcast (refused).
 */
export function restrictToRouterExtensionIds(offer: ParsedOffer, router: types.RtpCapabilities): ParsedOffer {
  const atRouterId = (kind: string, uri: string, id: number | undefined): boolean =>
    (router.headerExtensions ?? []).some((ext) => ext.kind === kind && ext.uri === uri && ext.preferredId === id);
  for (const media of offer.media) {
    const rid = media.rtpParameters?.encodings?.some((e) => e.rid !== undefined);
    if (rid && !(media.rtpParameters?.headerExtensions ?? []).some((e) => e.uri === 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id' && atRouterId(media.kind, e.uri, e.id))) {
      throw new AppError('validation_failed', `m-line ${media.index} (${media.kind}, mid ${media.mid}): simulcast is not taken on a connection that also receives; send one encoding`, { m_line: media.index, mid: media.mid });
    }
  }
  return {
    ...offer,
    rtpCapabilities: { ...offer.rtpCapabilities, headerExtensions: (offer.rtpCapabilities.headerExtensions ?? []).filter((e) => atRouterId(e.kind, e.uri, e.preferredId)) },
    media: offer.media.map((media) => ({
      ...media,
      ...(media.rtpParameters
        ? { rtpParameters: { ...media.rtpParameters, headerExtensions: (media.rtpParameters.headerExtensions ?? []).filter((e) => atRouterId(media.kind, e.uri, e.id)) } }
        : {}),
      ...(media.rtpCapabilities
        ? { rtpCapabilities: { ...media.rtpCapabilities, headerExtensions: (media.rtpCapabilities.headerExtensions ?? []).filter((e) => atRouterId(e.kind, e.uri, e.preferredId)) } }
        : {}),
    })),
  };
}
