/**
 * The demo page's plain WebRTC mode (`?mode=sdp`, src/web/plain-call.ts: RTCPeerConnection and
 * seed 000's messages, no mediasoup-client) on the same call screen as the SDK mode: a plain page
 * and an SDK page in one room call see each other's video in their tiles, and leaving from the
 * plain page removes its tile on the other.
 */
import t from 'tap';
import { startTestServer } from '../helpers/server.ts';
import { browserTest, demoSignIn, dumpPageLogsOnFailure, ensureWebBuilt, launchClient, openDemo, waitFor, waitForParticipantId, waitForState } from './helpers/browser.ts';
import { waitForVideoFlowing } from './helpers/call.ts';

t.setTimeout(120_000);

browserTest(t, 'a demo page in plain WebRTC mode and one in SDK mode see each other', async (t) => {
  ensureWebBuilt();
  const [server, plain, sdk] = await Promise.all([startTestServer(t), launchClient(t, 'Plain'), launchClient(t, 'Sdk')]);
  dumpPageLogsOnFailure(t, [plain, sdk]);
  await Promise.all([openDemo(plain, server.baseUrl, 'mode=sdp'), openDemo(sdk, server.baseUrl)]);
  const [p, s] = await Promise.all([demoSignIn(plain, 'Paula'), demoSignIn(sdk, 'Sid')]);
  const created = await server.api('/v1/rooms', { method: 'POST', token: p.token, body: { name: 'Plain', members: [{ user_id: s.userId, power: 0 }] } });
  t.equal(created.status, 201, 'a room is created');
  const roomId = created.body.room.id as string;
  const click = async (client: typeof plain, action: string) => {
    await client.page.getByTestId('refresh-rooms').click();
    const button = client.page.locator(`[data-testid=room][data-room-id="${roomId}"] [data-testid=${action}]`);
    await button.waitFor({ timeout: 10_000 });
    await button.click();
    await waitForState(client, 'call');
  };

  await click(plain, 'start-video');
  t.equal(await plain.page.getAttribute('#call', 'data-mode'), 'sdp', 'the plain page\'s call screen is in plain mode');
  await waitFor('the plain page\'s answer', () => plain.page.evaluate(() => window.callplane.plain?.timings.answerApplied !== undefined), { logs: plain.logs });
  await click(sdk, 'join-call');
  t.equal(await sdk.page.getAttribute('#call', 'data-mode'), 'sdk', 'the other page uses the SDK');
  const sdkPid = await waitForParticipantId(sdk);

  // The plain page: Sid's tile, named from peer_joined, plays his video (decoded frames keep coming).
  const tile = plain.page.locator(`[data-testid=tile][data-participant-id="${sdkPid}"]`);
  await tile.waitFor({ timeout: 20_000 });
  await waitFor('the plain page\'s tile of Sid to show a frame', async () => (await tile.getAttribute('data-first-frame')) === 'true', { logs: plain.logs, timeoutMs: 30_000 });
  t.equal(await tile.getByTestId('tile-name').innerText(), 'Sid', 'the tile is named from peer_joined');
  const decoded = () => plain.page.evaluate(async () => {
    let frames = 0;
    (await window.callplane.plain!.pc!.getStats()).forEach((r: Record<string, unknown>) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') frames += Number(r.framesDecoded ?? 0);
    });
    return frames;
  });
  const first = await waitFor('the plain page to decode Sid\'s video', async () => ((await decoded()) > 0 ? decoded() : null), { logs: plain.logs, timeoutMs: 30_000 });
  const later = await waitFor('the plain page\'s decoded frames to grow', async () => ((await decoded()) >= first + 10 ? decoded() : null), { logs: plain.logs, timeoutMs: 30_000 });
  t.ok(later >= first + 10, `the plain page decodes Sid's video (${first} → ${later} frames)`);
  t.equal(await plain.page.evaluate(() => window.callplane.device), null, 'no mediasoup-client Device on the plain page');

  // The SDK page: Paula's tile, through consumers as usual.
  const plainPid = await waitFor('the SDK page to consume the plain page', () => sdk.page.evaluate(() => Object.keys(window.callplane.consumers)[0]), { logs: sdk.logs, timeoutMs: 30_000 });
  const flowing = await waitForVideoFlowing(sdk, plainPid, { timeoutMs: 30_000 });
  t.ok(flowing.lastFrames > flowing.firstFrames, `the SDK page decodes Paula's video (${flowing.firstFrames} → ${flowing.lastFrames} frames)`);
  const sdkTile = sdk.page.locator(`[data-testid=tile][data-participant-id="${plainPid}"]`);
  t.equal(await sdkTile.getByTestId('tile-name').innerText(), 'Paula', 'the SDK page names the plain participant');

  // Leave from the plain page: its call screen closes, the SDK page drops its tile.
  await plain.page.getByTestId('leave').click();
  await waitFor('the plain page to leave the call screen', async () => (await plain.page.evaluate(() => document.body.dataset.state)) !== 'call', { logs: plain.logs });
  await waitFor('the SDK page to drop Paula\'s tile', async () => (await sdkTile.count()) === 0, { logs: sdk.logs });
  t.equal(await sdkTile.count(), 0, 'the plain page left and its tile went away on the other page');
  t.same(plain.logs.filter((line) => line.includes('pageerror')), [], 'no uncaught error on the plain page');
});
