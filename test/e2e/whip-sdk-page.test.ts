/**
 * WHIP into a call that an SDK page is in (docs/whip-whep.md): a plain Chromium page publishes its
 * fake camera and microphone with a sendonly offer POSTed to /v1/calls/{id}/whip, and the demo
 * page (mediasoup-client) in the same room call shows it in a tile and decodes its video. DELETE on
 * the Location ends the publisher, and the demo page drops the tile.
 */
import t from 'tap';
import { startTestServer } from '../helpers/server.ts';
import { browserTest, demoSignIn, dumpPageLogsOnFailure, ensureWebBuilt, launchClient, openDemo, waitFor, waitForState } from './helpers/browser.ts';
import { waitForVideoFlowing } from './helpers/call.ts';

t.setTimeout(120_000);

declare global {
  interface Window {
    whip: { pc: RTCPeerConnection; status: number; location: string | null };
  }
}

browserTest(t, 'a plain page publishing over WHIP plays in an SDK page; DELETE stops it', async (t) => {
  ensureWebBuilt();
  const [server, sdk, publisher] = await Promise.all([startTestServer(t), launchClient(t, 'Sdk'), launchClient(t, 'Whip')]);
  dumpPageLogsOnFailure(t, [sdk, publisher]);
  await openDemo(sdk, server.baseUrl);
  const host = await demoSignIn(sdk, 'Sid');
  const login = await server.api('/v1/demo/login', { method: 'POST', body: { display_name: 'Encoder' } });
  t.equal(login.status, 201, 'the WHIP publisher\'s user');
  const created = await server.api('/v1/rooms', { method: 'POST', token: host.token, body: { name: 'WHIP room', members: [{ user_id: login.body.user.id, power: 0 }] } });
  t.equal(created.status, 201, 'a room with both');
  const roomId = created.body.room.id as string;
  await sdk.page.getByTestId('refresh-rooms').click();
  await sdk.page.locator(`[data-testid=room][data-room-id="${roomId}"] [data-testid=start-video]`).click();
  await waitForState(sdk, 'call');
  const callId = await waitFor('the SDK page\'s call id', () => sdk.page.evaluate(() => window.callplane.callId), { logs: sdk.logs });
  const joined = await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: login.body.access_token });
  t.equal(joined.status, 200, 'the publisher\'s user joins and gets a signaling token');

  // The publisher page: nothing but RTCPeerConnection and fetch, the way an encoder speaks WHIP.
  await publisher.page.goto(`${server.baseUrl}/healthz`);
  const whip = await publisher.page.evaluate(
    async ({ url, token }) => {
      const pc = new RTCPeerConnection();
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240, frameRate: 15 } });
      for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      await pc.setLocalDescription(await pc.createOffer());
      const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/sdp' }, body: pc.localDescription!.sdp });
      window.whip = { pc, status: response.status, location: response.headers.get('location') };
      if (response.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
      return { status: response.status, location: window.whip.location };
    },
    { url: `${server.baseUrl}/v1/calls/${callId}/whip`, token: joined.body.signaling_token as string },
  );
  t.equal(whip.status, 201, 'WHIP answers 201 Created');
  t.match(whip.location, new RegExp(`^/v1/calls/${callId}/whip/`), 'with the session\'s Location');

  // The SDK page consumes the WHIP participant like any other and decodes its video in a tile.
  const whipPid = await waitFor('the SDK page to consume the WHIP publisher', () => sdk.page.evaluate(() => Object.keys(window.callplane.consumers)[0]), { logs: sdk.logs, timeoutMs: 30_000 });
  const flowing = await waitForVideoFlowing(sdk, whipPid, { timeoutMs: 30_000 });
  t.ok(flowing.lastFrames > flowing.firstFrames, `the SDK page decodes the WHIP video (${flowing.firstFrames} → ${flowing.lastFrames} frames)`);
  const tile = sdk.page.locator(`[data-testid=tile][data-participant-id="${whipPid}"]`);
  t.equal(await tile.count(), 1, 'the WHIP publisher has a tile on the SDK page');

  const deleted = await fetch(`${server.baseUrl}${whip.location}`, { method: 'DELETE', headers: { authorization: `Bearer ${joined.body.signaling_token as string}` } });
  t.ok(deleted.status === 200 || deleted.status === 204, `DELETE on the Location ends the publisher (${deleted.status})`);
  await waitFor('the SDK page to drop the WHIP tile', async () => (await tile.count()) === 0, { logs: sdk.logs, timeoutMs: 20_000 });
  t.equal(await tile.count(), 0, 'the tile went away after DELETE');
});
