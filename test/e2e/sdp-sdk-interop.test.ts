/**
 * An SDK participant (mediasoup-client on libwebrtc, test/helpers/node-peer.ts) and a plain
 * RTCPeerConnection page speaking seed 000's messages (test/e2e/helpers/sdp-page.ts) in one room
 * call on the real server, in both join orders: the SDK peer receives the page's audio and video
 * RTP, the page decodes the SDK peer's video. When the page is first, the SDK peer's tracks reach
 * it in a server offer.
 */
import t from 'tap';
import { NodePeer } from '../helpers/node-peer.ts';
import { createAccount, startTestServer } from '../helpers/server.ts';
import { chromiumMissing, dumpPageLogsOnFailure, launchClient, waitFor } from './helpers/browser.ts';
import { sdpInbound, sdpState, startSdpCall } from './helpers/sdp-page.ts';

t.setTimeout(150_000);

t.test('SDK and plain-SDP participants in one room call', { skip: chromiumMissing() ?? false }, async (t) => {
  const [server, browser] = await Promise.all([startTestServer(t), launchClient(t, 'Page')]);
  dumpPageLogsOnFailure(t, [browser]);
  const ann = await createAccount(server, 'user', 'Ann');
  const sam = await createAccount(server, 'user', 'Sam');
  const room = (await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'Interop', members: [{ user_id: sam.id }] } })).body.room;
  const wsBase = server.baseUrl.replace('http', 'ws');

  for (const order of ['SDK first', 'SDP first'] as const) {
    await t.test(order, async (t) => {
      const started = await server.api('/v1/calls/initiate', { method: 'POST', token: ann.token, body: { room_id: room.id, type: 'video' } });
      t.equal(started.status, 201, 'Ann starts a room call');
      const callId = started.body.call.id as string;
      const joined = await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: sam.token });
      t.equal(joined.status, 200, 'Sam joins it');
      const page = await browser.context.newPage();
      t.teardown(() => page.close());
      page.on('console', (m) => browser.logs.push(`[Page ${m.type()}] ${m.text()}`));
      await page.goto(`${server.baseUrl}/healthz`);
      const ms = { timeoutMs: 30_000, logs: browser.logs };

      const sdk = async () => {
        const peer = await NodePeer.connect({ signalingUrl: `${wsBase}/v1/signal`, token: joined.body.signaling_token, produce: { audio: true, video: true }, consume: true });
        t.teardown(() => peer.close());
        await peer.sendConnected();
        return peer;
      };
      const sdp = async () => {
        await startSdpCall(page, `${wsBase}/ws?token=${encodeURIComponent(started.body.signaling_token)}`);
        await waitFor('the page\'s answer', async () => (await sdpState(page)).answers >= 1, ms);
      };
      let peer: NodePeer;
      if (order === 'SDK first') {
        peer = await sdk();
        await sdp();
      } else {
        await sdp();
        peer = await sdk();
      }

      const audio = await peer.waitForRtp({ kind: 'audio', minPackets: 20, timeoutMs: 30_000 });
      const video = await peer.waitForRtp({ kind: 'video', minPackets: 20, timeoutMs: 30_000 });
      t.ok(audio.packetsReceived >= 20, `the SDK peer receives the page's audio (${audio.packetsReceived} packets)`);
      t.ok(video.packetsReceived >= 20, `the SDK peer receives the page's video (${video.packetsReceived} packets)`);
      t.equal(audio.participantId, video.participantId, 'both from the page\'s participant');
      const seen = await waitFor('the page decodes the SDK peer\'s video and receives its audio', async () => {
        const inbound = await sdpInbound(page);
        return inbound.framesDecoded > 10 && inbound.audioPackets > 20 ? inbound : null;
      }, ms);
      t.ok(seen.framesDecoded > 10, `the page decodes the SDK peer's video (${seen.framesDecoded} frames)`);
      const state = await sdpState(page);
      if (order === 'SDP first') t.ok(state.serverOffers >= 1, 'the page, alone when it offered, got the SDK peer\'s tracks in a server offer');
      t.match(state.peersJoined, [{ displayName: 'Sam' }], 'the page is told peer_joined for the SDK peer');
      t.same(state.errors, [], 'no error on the page\'s socket');
      t.same(peer.errors.map((e) => e.message), [], 'no error on the SDK peer');
      await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: ann.token, body: {} });
    });
  }
  t.equal(server.ctx.media.snapshot()[0]!.deaths, 0, 'the worker never died');
});
