/**
 * SPEC §7: a participant whose signaling socket drops reconnects with a fresh token
 * (POST /v1/calls/{id}/token) within the grace period and keeps its identity; its old transports
 * are closed and it re-creates them. The demo page does this by itself.
 */
import t from 'tap';
import { startTestServer } from '../helpers/server.ts';
import {
  browserTest,
  demoSignIn,
  ensureWebBuilt,
  dumpPageLogsOnFailure,
  launchClient,
  openDemo,
  waitFor,
  waitForMedia,
  waitForParticipantId,
  waitForPublishing,
  waitForState,
} from './helpers/browser.ts';

t.setTimeout(120_000);

browserTest(t, 'a dropped signaling socket reconnects with the same identity', async (t) => {
  ensureWebBuilt();
  const [server, alice, bob] = await Promise.all([startTestServer(t, { media: { workers: 1 } }), launchClient(t, 'Alice'), launchClient(t, 'Bob')]);
  dumpPageLogsOnFailure(t, [alice, bob]);
  await Promise.all([openDemo(alice, server.baseUrl), openDemo(bob, server.baseUrl)]);
  const [a, b] = await Promise.all([demoSignIn(alice, 'Alice'), demoSignIn(bob, 'Bob')]);
  const created = await server.api('/v1/rooms', { method: 'POST', token: a!.token, body: { name: 'Flaky wifi', members: [{ user_id: b!.userId, power: 0 }] } });
  t.equal(created.status, 201, 'room created');
  const roomId = created.body.room.id as string;

  for (const [client, action] of [
    [alice, 'start-video'],
    [bob, 'join-call'],
  ] as const) {
    await client.page.getByTestId('refresh-rooms').click();
    await client.page.locator(`[data-testid=room][data-room-id="${roomId}"] [data-testid=${action}]`).click();
    await waitForState(client, 'call');
    await waitForPublishing(client);
  }
  const [alicePid, bobPid] = await Promise.all([waitForParticipantId(alice), waitForParticipantId(bob)]);
  const before = await waitForMedia(bob, { from: alicePid });
  const aliceBefore = await waitForMedia(alice, { from: bobPid });

  // Cut Bob's signaling socket under the page (as a network drop would).
  await bob.page.evaluate(() => {
    const session = window.callplane.session as unknown as { signal: { socket: WebSocket } };
    session.signal.socket.close(4000, 'test: connection lost');
  });
  await waitFor("Bob's page to reconnect", () => bob.page.evaluate(() => (window.callplane.session?.reconnects ?? 0) >= 1 && window.callplane.notifications.filter((n) => n.type === 'welcome').length >= 2), {
    timeoutMs: 20_000,
    logs: bob.logs,
  });
  t.equal(await bob.page.evaluate(() => window.callplane.participantId), bobPid, 'Bob keeps his participant id');
  t.equal(await bob.page.evaluate(() => document.body.dataset.state), 'call', 'Bob is still in the call on his page');

  // Media flows again both ways, through new transports and consumers.
  await waitForPublishing(bob);
  const after = await waitForMedia(bob, { from: alicePid, excludeConsumers: [before.video!.consumerId] });
  t.not(after.video!.consumerId, before.video!.consumerId, 'Bob consumes Alice through a new consumer');
  t.ok(after.video!.framesDecoded > 0, "Bob decodes Alice's video again");
  const aliceAfter = await waitForMedia(alice, { from: bobPid, excludeConsumers: [aliceBefore.video!.consumerId, aliceBefore.audio!.consumerId] });
  t.ok(aliceAfter.video!.framesDecoded > 0 && aliceAfter.audio!.packetsReceived > 0, "Alice gets Bob's new producers through new consumers");
  const leftForBob = await alice.page.evaluate((pid) => window.callplane.notifications.some((n) => n.type === 'peer_left' && (n.payload as { participantId: string }).participantId === pid), bobPid);
  t.notOk(leftForBob, 'Alice never saw Bob leave');

  const call = await server.api(`/v1/calls/${await alice.page.evaluate(() => window.callplane.callId)}`, { token: a!.token });
  const bobRows = call.body.call.participants.filter((p: { user_id: string }) => p.user_id === b!.userId);
  t.equal(bobRows.length, 1, 'Bob is one participant, not two');
  t.equal(bobRows[0].left_at, null, 'and has not left');
});
