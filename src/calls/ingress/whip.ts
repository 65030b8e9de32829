import { randomInt } from 'node:crypto';
import { AppError } from '../../shared/errors.ts';
import { buildAnswer, connectParameters, parseOffer, rejectedSection, serverDtlsRole, type ParsedOffer, type SectionPlan } from '../../sfu/sdp/index.ts';
import type { IngressNegotiator } from './service.ts';

/**
 * WHIP publish: every sending m-line of the offer becomes a producer of the session's participant
 * (audio: microphone, video: camera), so the others get new_producer as for an SDK peer. At most one
 * audio and one video m-line send; m-lines that only receive are answered rejected.
 */
export const whipNegotiator: IngressNegotiator<ParsedOffer> = {
  check(offer, _options, router) {
    const parsed = parseOffer(offer, router);
    const seen = new Set<string>();
    for (const media of parsed.media) {
      if (media.rejected || !media.rtpParameters) continue;
      if (seen.has(media.kind)) throw new AppError('validation_failed', `m-line ${media.index} (${media.kind}, mid ${media.mid}): WHIP takes one audio and one video m-line`, { m_line: media.index, mid: media.mid });
      seen.add(media.kind);
    }
    if (seen.size === 0) throw new AppError('validation_failed', 'The offer sends nothing: WHIP needs a sendonly (or sendrecv) audio or video m-line with a codec the server takes');
    return parsed;
  },

  async apply(session, parsed) {
    const transport = await session.request('createTransport', { direction: 'send' });
    session.transportIds.add(transport.id);
    await session.request('connectTransport', { transportId: transport.id, dtlsParameters: connectParameters(parsed) });
    const sections: SectionPlan[] = [];
    for (const media of parsed.media) {
      if (media.rejected || !media.rtpParameters || media.kind === 'application') {
        sections.push(rejectedSection(media));
        continue;
      }
      await session.request('produce', { transportId: transport.id, kind: media.kind, rtpParameters: media.rtpParameters as unknown as Record<string, unknown>, source: media.kind === 'audio' ? 'microphone' : 'camera' });
      sections.push({ mid: media.mid, kind: media.kind, receive: media.rtpParameters });
    }
    return buildAnswer({
      transport: { iceParameters: transport.iceParameters, iceCandidates: transport.iceCandidates, dtlsParameters: transport.dtlsParameters } as never,
      dtlsRole: serverDtlsRole(parsed),
      origin: { sessionId: String(randomInt(1, 2 ** 47)), version: 1 },
      sections,
      extmapAllowMixed: parsed.extmapAllowMixed,
    });
  },
};
