/**
 * SPEC §12: when a call outgrows its worker (media.max_consumers_per_worker), its producers are
 * piped to a router on another worker and new subscribers consume there. With a limit of 2, the
 * third browser's subscriptions cannot fit on the call's first worker; it must still decode video.
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

t.setTimeout(150_000);

browserTest(t, 'a subscriber on the second worker still decodes video', async (t) => {
  ensureWebBuilt();
  const [server, alice, bob, carol] = await Promise.all([
    startTestServer(t, { media: { workers: 2, max_consumers_per_worker: 2 } }),
    launchClient(t, 'Alice'),
    launchClient(t, 'Bob'),
    launchClient(t, 'Carol'),
  ]);
  const clients = [alice, bob, carol];
  dumpPageLogsOnFailure(t, clients);

  await Promise.all(clients.map((client) => openDemo(client, server.baseUrl)));
  const [a, b, c] = await Promise.all(clients.map((client) => demoSignIn(client, client.name)));
  // The room through the API: this test is about placement, room-call.test.ts covers the page's forms.
  const created = await server.api('/v1/rooms', {
    method: 'POST',
    token: a!.token,
    body: { name: 'Overflow', members: [{ user_id: b!.userId, power: 0 }, { user_id: c!.userId, power: 0 }] },
  });
  t.equal(created.status, 201, 'room created');
  const roomId = created.body.room.id as string;

  const joinFromRoomList = async (client: typeof alice, action: 'start-video' | 'join-call') => {
    await client.page.getByTestId('refresh-rooms').click();
    const button = client.page.locator(`[data-testid=room][data-room-id="${roomId}"] [data-testid=${action}]`);
    await button.waitFor({ timeout: 10_000 });
    await button.click();
    await waitForState(client, 'call');
    return waitForParticipantId(client);
  };

  // Alice publishes; Bob joins and subscribes: the call's worker reaches its consumer limit.
  const alicePid = await joinFromRoomList(alice, 'start-video');
  await waitForPublishing(alice);
  const bobPid = await joinFromRoomList(bob, 'join-call');
  await waitForPublishing(bob);
  await Promise.all([waitForMedia(bob, { from: alicePid }), waitForMedia(alice, { from: bobPid })]);
  const before = server.ctx.media.snapshot();
  const home = before.reduce((best, worker) => (worker.producers > best.producers ? worker : best));
  t.ok(home.consumers >= 2, `the call's worker ${home.index} is at its limit (${home.consumers} consumers)`);

  // Carol joins: her subscriptions go to the other worker, and she still decodes both.
  await joinFromRoomList(carol, 'join-call');
  const [fromAlice, fromBob] = await Promise.all([waitForMedia(carol, { from: alicePid }), waitForMedia(carol, { from: bobPid })]);
  t.ok(fromAlice.video!.framesDecoded > 0, `Carol decodes Alice's video (${fromAlice.video!.framesDecoded} frames)`);
  t.ok(fromBob.video!.framesDecoded > 0, "Carol decodes Bob's video");
  t.ok(fromAlice.audio!.packetsReceived > 0 && fromBob.audio!.packetsReceived > 0, "Carol receives both audio streams");

  const other = await waitFor(
    'consumers on the second worker',
    () => {
      const worker = server.ctx.media.snapshot().find((w) => w.index !== home.index);
      return worker && worker.consumers >= 4 ? worker : null;
    },
    { timeoutMs: 10_000 },
  );
  t.ok(other.consumers >= 4, `worker ${other.index} holds Carol's consumers (${other.consumers})`);
  // Before Carol the second worker held nothing: these are hers, fed through pipe producers.
  t.equal(before.find((w) => w.index === other.index)!.consumers, 0, 'the second worker had no consumers before Carol');
  t.ok(other.producers >= 4, `worker ${other.index} holds the piped producers (${other.producers})`);

  // The first two keep their media through all this.
  const [aliceSees, bobSees] = await Promise.all([waitForMedia(alice, { from: bobPid, audio: false }), waitForMedia(bob, { from: alicePid, audio: false })]);
  t.ok(aliceSees.video!.framesDecoded > 0 && bobSees.video!.framesDecoded > 0, 'Alice and Bob still decode each other');
});
