/**
 * WHIP and WHEP with a plain RTCPeerConnection in Chromium (docs/whip-whep.md): a page publishes
 * its fake camera and microphone over WHIP and an SDK peer (libwebrtc, test/helpers/node-peer.ts)
 * receives them; another page plays over WHEP, first `?participant=` the WHIP publisher, then the
 * active speaker, which switches when the SDK peer mutes its (always loud) tone. Frame sizes tell
 * the two publishers apart: the page captures 320x240, the SDK peer sends 320x180. DELETE ends
 * both (the SDK peer gets producer_closed).
 */
import type { Page } from 'playwright-core';
import t from 'tap';
import { NodePeer } from '../helpers/node-peer.ts';
import { roomCall } from '../helpers/ingress.ts';
import { startTestServer } from '../helpers/server.ts';
import { browserTest, dumpPageLogsOnFailure, launchClient, waitFor } from './helpers/browser.ts';

t.setTimeout(120_000);

declare global {
  interface Window {
    ingress: { pc: RTCPeerConnection; status: number; location: string | null; contentType: string | null; error?: string };
  }
}

/** In the page: a WHIP (sendonly camera + mic) or WHEP (recvonly audio + video) offer POSTed to `url`; the answer applied. */
async function negotiate(page: Page, url: string, token: string, kind: 'whip' | 'whep'): Promise<Window['ingress']> {
  await page.evaluate(
    async ({ url, token, kind }) => {
      const pc = new RTCPeerConnection();
      if (kind === 'whip') {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240, frameRate: 15 } });
        for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      } else {
        pc.addTransceiver('audio', { direction: 'recvonly' });
        pc.addTransceiver('video', { direction: 'recvonly' });
      }
      await pc.setLocalDescription(await pc.createOffer());
      const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/sdp' }, body: pc.localDescription!.sdp });
      const text = await response.text();
      window.ingress = { pc, status: response.status, location: response.headers.get('location'), contentType: response.headers.get('content-type') };
      if (response.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: text });
      else window.ingress.error = text;
    },
    { url, token, kind },
  );
  return page.evaluate(() => ({ ...window.ingress, pc: undefined as never }));
}

/** The page's decoded inbound video streams: frame height and frames decoded. */
function decodedVideo(page: Page): Promise<Array<{ ssrc: number; height: number | null; frames: number }>> {
  return page.evaluate(async () => {
    const rows: Array<{ ssrc: number; height: number | null; frames: number }> = [];
    (await window.ingress.pc.getStats()).forEach((s: Record<string, unknown>) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') rows.push({ ssrc: Number(s.ssrc), height: (s.frameHeight as number | undefined) ?? null, frames: Number(s.framesDecoded ?? 0) });
    });
    return rows;
  });
}

/** Waits until the page decodes at least 10 more frames of a video `height` pixels high. */
async function waitForDecoding(page: Page, height: number, what: string, logs: string[]): Promise<number> {
  const frames = (rows: Awaited<ReturnType<typeof decodedVideo>>) => rows.filter((r) => r.height === height).reduce((n, r) => Math.max(n, r.frames), 0);
  const first = await waitFor(`${what}: first frames ${height} high`, async () => frames(await decodedVideo(page)) || null, { timeoutMs: 20_000, logs });
  return waitFor(`${what}: frames ${height} high keep coming`, async () => {
    const now = frames(await decodedVideo(page));
    return now >= first + 10 ? now : null;
  }, { timeoutMs: 20_000, logs });
}

browserTest(t, 'WHIP from Chromium reaches an SDK peer; WHEP plays it, then follows the speaker; DELETE ends both', async (t) => {
  const server = await startTestServer(t, { media: { workers: 1 } });
  const { callId, tickets } = await roomCall(server, 3);
  const [, sdkTicket] = tickets as [typeof tickets[0], typeof tickets[0], typeof tickets[0]];
  const sdk = await NodePeer.connect({ signalingUrl: sdkTicket.signalingUrl, token: sdkTicket.token, produce: { audio: true, video: true } });
  t.teardown(() => sdk.close());

  const browser = await launchClient(t, 'Ingress');
  dumpPageLogsOnFailure(t, [browser]);
  const whipPage = browser.page;
  await whipPage.goto(`${server.baseUrl}/healthz`);
  const whip = await negotiate(whipPage, `${server.baseUrl}/v1/calls/${callId}/whip`, tickets[0]!.token, 'whip');
  t.equal(whip.status, 201, `WHIP POST answers 201 ${whip.error ?? ''}`);
  t.match(whip.location, new RegExp(`^/v1/calls/${callId}/whip/[0-9A-Z]{26}$`), 'Location names the session');
  t.match(whip.contentType, /^application\/sdp/);
  await waitFor('the WHIP page connected', () => whipPage.evaluate(() => window.ingress.pc.connectionState === 'connected'), { logs: browser.logs });

  const published = await sdk.waitFor('new_producer', (p) => p.kind === 'video');
  const whipPid = published.participantId;
  const video = await sdk.waitForRtp({ from: whipPid, kind: 'video', minPackets: 50, timeoutMs: 20_000 });
  t.ok(video.packetsReceived >= 50, `the SDK peer receives the WHIP page's video (${video.packetsReceived} packets)`);
  const audio = await sdk.waitForRtp({ from: whipPid, kind: 'audio', minPackets: 25, timeoutMs: 20_000 });
  t.ok(audio.packetsReceived >= 25, `and its audio (${audio.packetsReceived} packets)`);

  // WHEP of the WHIP publisher (?participant=): Chromium decodes its 240-line video.
  const fixedPage = await browser.context.newPage();
  await fixedPage.goto(`${server.baseUrl}/healthz`);
  const fixed = await negotiate(fixedPage, `${server.baseUrl}/v1/calls/${callId}/whep?participant=${whipPid}`, tickets[2]!.token, 'whep');
  t.equal(fixed.status, 201, `WHEP POST answers 201 ${fixed.error ?? ''}`);
  t.match(fixed.location, new RegExp(`^/v1/calls/${callId}/whep/[0-9A-Z]{26}$`));
  const fixedFrames = await waitForDecoding(fixedPage, 240, 'WHEP ?participant= the WHIP page', browser.logs);
  t.ok(fixedFrames > 10, `the WHEP page decodes the WHIP page's video (${fixedFrames} frames)`);
  const viewerPid = [...server.ctx.sfu.get(callId)!.peers.values()].find((p) => p.identity.userId === tickets[2]!.userId)!.participantId;
  const deleteFixed = await fetch(`${server.baseUrl}${fixed.location}`, { method: 'DELETE', headers: { authorization: `Bearer ${tickets[2]!.token}` } });
  t.equal(deleteFixed.status, 200, 'DELETE ends the WHEP session');
  await sdk.waitFor('peer_left', (p) => p.participantId === viewerPid);
  t.equal(server.ctx.ingress.sessions.count('whep'), 0, 'no WHEP session remains; its participant left the call');

  // WHEP following the speaker: the SDK peer's steady tone makes it the speaker (its 180-line video
  // plays); once it pauses its microphone only the page's beeps are heard, and the page's video plays.
  const followToken = (await server.api(`/v1/calls/${callId}/token`, { method: 'POST', token: tickets[2]!.accessToken })).body.signaling_token as string;
  const followPage = await browser.context.newPage();
  await followPage.goto(`${server.baseUrl}/healthz`);
  const follow = await negotiate(followPage, `${server.baseUrl}/v1/calls/${callId}/whep`, followToken, 'whep');
  t.equal(follow.status, 201, `WHEP (speaker) POST answers 201 ${follow.error ?? ''}`);
  await sdk.waitFor('active_speaker', (p) => p.participantId === sdk.participantId);
  const sdkFrames = await waitForDecoding(followPage, 180, 'WHEP following the speaker: the SDK peer', browser.logs);
  t.ok(sdkFrames > 10, `the speaker-following page plays the speaking SDK peer (${sdkFrames} frames)`);
  const before = sdk.notifications.length;
  await sdk.request('pauseProducer', { producerId: sdk.producers.get('microphone')!.id });
  await waitFor('the WHIP page named speaker after the SDK peer muted', () => sdk.notifications.slice(before).some((n) => n.type === 'active_speaker' && (n.payload as { participantId: string | null }).participantId === whipPid), { timeoutMs: 30_000 });
  const switched = await waitForDecoding(followPage, 240, 'WHEP following the speaker: switched to the WHIP page', browser.logs);
  t.ok(switched > 10, `after the switch the same page decodes the WHIP page's video (${switched} frames)`);

  // DELETE the WHIP session: the SDK peer is told its producers closed.
  const deleteWhip = await fetch(`${server.baseUrl}${whip.location}`, { method: 'DELETE', headers: { authorization: `Bearer ${tickets[0]!.token}` } });
  t.equal(deleteWhip.status, 200, 'DELETE ends the WHIP session');
  const closed = await sdk.waitFor('producer_closed', (p) => p.participantId === whipPid);
  t.equal(closed.participantId, whipPid, "the SDK peer gets producer_closed for the WHIP page's tracks");
  await sdk.waitFor('peer_left', (p) => p.participantId === whipPid);
  t.equal(server.ctx.ingress.sessions.count('whip'), 0, 'no WHIP session remains');
});
