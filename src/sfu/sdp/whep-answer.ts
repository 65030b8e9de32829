import * as sdpTransform from 'sdp-transform';

/**
 * Turns buildAnswer()'s answer into WHEP's (docs/whip-whep.md, "Speaker following"): a WHEP
 * session has no renegotiation, yet the consumer behind each m-line changes as the speaker does.
 * So the answer signals no SSRCs (the browser takes the m-line's stream by payload type, and
 * follows a new SSRC when the consumer changes), and m-lines without a consumer yet are sendonly
 * all the same, with their stream id, so media can start on them later.
 */
export function whepAnswer(answer: string, options: { sendingMids: ReadonlySet<string>; streamId: string }): string {
  const session = sdpTransform.parse(answer);
  for (const media of session.media) {
    delete media.ssrcs;
    delete media.ssrcGroups;
    if (media.port === 0 || !options.sendingMids.has(String(media.mid))) continue;
    media.direction = 'sendonly';
    media.msid ??= [{ id: options.streamId, appdata: `${options.streamId}-${media.type}` }] as never;
  }
  return sdpTransform.write(session);
}
