/**
 * The key proof of the room-call product (SPEC §6.3, §7, §8) in real Chromium against a real
 * server (real PostgreSQL, two real media workers), driven through the demo page's UI:
 * sign-in, a room, ringing, two-way audio and video, a third participant, mute, leave, end.
 */
import t from 'tap';
import { startTestServer } from '../helpers/server.ts';
import {
  browserTest,
  demoSignIn,
  ensureWebBuilt,
  dumpPageLogsOnFailure,
  launchClient,
  notificationsOf,
  openDemo,
  waitFor,
  waitForMedia,
  waitForNotification,
  waitForParticipantId,
  waitForPublishing,
  waitForState,
  type Client,
} from './helpers/browser.ts';

t.setTimeout(180_000);

browserTest(t, 'a room video call between three browsers', async (t) => {
  ensureWebBuilt();
  const [server, alice, bob, carol] = await Promise.all([
    startTestServer(t, { media: { workers: 2 } }),
    launchClient(t, 'Alice'),
    launchClient(t, 'Bob'),
    launchClient(t, 'Carol'),
  ]);
  const clients = [alice, bob, carol];
  dumpPageLogsOnFailure(t, clients);

  // Sign in (demo login) on all three pages.
  await Promise.all(clients.map((client) => openDemo(client, server.baseUrl)));
  const [a, b, c] = await Promise.all(clients.map((client) => demoSignIn(client, client.name)));
  t.ok(a!.userId && b!.userId && c!.userId, 'three demo users signed in');

  // Alice creates a room with Bob and Carol (power 0: plain members), picked from the demo users.
  await alice.page.getByTestId('refresh-rooms').click();
  await alice.page.locator(`[data-testid=member-option][data-user-id="${b!.userId}"] input`).check();
  await alice.page.locator(`[data-testid=member-option][data-user-id="${c!.userId}"] input`).check();
  await alice.page.getByTestId('room-name').fill('Standup');
  await alice.page.getByTestId('create-room').click();
  const roomItem = alice.page.locator('[data-testid=room][data-room-name="Standup"]');
  await roomItem.waitFor({ timeout: 10_000 });
  const roomId = (await roomItem.getAttribute('data-room-id'))!;
  const room = await server.api(`/v1/rooms/${roomId}`, { token: b!.token });
  t.equal(room.status, 200, 'a member can read the room');
  t.same(
    room.body.room.members.map((m: { user_id: string; power: number }) => [m.user_id, m.power]).sort(),
    [
      [a!.userId, 100],
      [b!.userId, 0],
      [c!.userId, 0],
    ].sort(),
    'the creator has power 100, the picked members 0',
  );

  // Alice starts a video call; Bob's page rings and he joins from the invite.
  await roomItem.getByTestId('start-video').click();
  await waitForState(alice, 'call');
  const alicePid = await waitForParticipantId(alice);
  await waitForPublishing(alice);
  const callId = (await alice.page.evaluate(() => window.callplane.callId))!;
  const invite = bob.page.locator(`[data-testid=invite][data-call-id="${callId}"]`);
  await invite.waitFor({ timeout: 15_000 });
  t.equal(await invite.count(), 1, 'Bob is rung (call.invite on the user socket)');
  await invite.getByTestId('invite-join').click();
  await waitForState(bob, 'call');
  const bobPid = await waitForParticipantId(bob);
  await waitForPublishing(bob);

  // Media both ways: decoded video frames and audio packets, from the right participant.
  const [bobGetsAlice, aliceGetsBob] = await Promise.all([waitForMedia(bob, { from: alicePid }), waitForMedia(alice, { from: bobPid })]);
  t.ok(bobGetsAlice.video!.framesDecoded > 0, `Bob decodes Alice's video (${bobGetsAlice.video!.framesDecoded} frames)`);
  t.ok(bobGetsAlice.audio!.packetsReceived > 0, "Bob receives Alice's audio");
  t.ok(aliceGetsBob.video!.framesDecoded > 0, "Alice decodes Bob's video");
  t.ok(aliceGetsBob.audio!.packetsReceived > 0, "Alice receives Bob's audio");
  t.equal(await bob.page.locator(`[data-testid=tile][data-participant-id="${alicePid}"] [data-testid=tile-name]`).textContent(), 'Alice', "Bob's tile for Alice is labelled with her name");

  // Carol joins from the room list (active_call_id) and gets both.
  await carol.page.getByTestId('refresh-rooms').click();
  const carolJoin = carol.page.locator(`[data-testid=room][data-room-id="${roomId}"] [data-testid=join-call]`);
  await carolJoin.waitFor({ timeout: 10_000 });
  await carolJoin.click();
  await waitForState(carol, 'call');
  const carolPid = await waitForParticipantId(carol);
  const [fromAlice, fromBob] = await Promise.all([waitForMedia(carol, { from: alicePid }), waitForMedia(carol, { from: bobPid })]);
  t.ok(fromAlice.video!.framesDecoded > 0 && fromBob.video!.framesDecoded > 0, 'Carol decodes both videos');
  t.ok(fromAlice.audio!.packetsReceived > 0 && fromBob.audio!.packetsReceived > 0, 'Carol receives both audio streams');
  const carolJoined = await waitForNotification(alice, 'peer_joined', (p) => p.participantId === carolPid);
  t.equal(carolJoined.participantId, carolPid, 'Alice is told Carol joined');

  const state = await server.api(`/v1/calls/${callId}`, { token: a!.token });
  t.equal(state.status, 200);
  t.equal(state.body.call.status, 'active');
  const live = state.body.call.participants.filter((p: { left_at: string | null }) => !p.left_at);
  t.same(live.map((p: { user_id: string }) => p.user_id).sort(), [a!.userId, b!.userId, c!.userId].sort(), 'three participants in the call');

  // Alice mutes her microphone: the server's view and the others' notifications follow.
  await alice.page.getByTestId('mute-mic').click();
  const aliceMuted = await waitFor(
    "GET /v1/calls to show Alice's audio off",
    async () => {
      const answer = await server.api(`/v1/calls/${callId}`, { token: b!.token });
      const me = answer.body.call.participants.find((p: { participant_id: string; left_at: string | null }) => p.participant_id === alicePid && !p.left_at);
      return me && me.audio_on === false ? me : null;
    },
    { timeoutMs: 10_000 },
  );
  t.match(aliceMuted, { audio_on: false, video_on: true }, "GET /v1/calls/{id} shows Alice's audio_on: false (video still on)");
  const paused = await waitForNotification(bob, 'producer_paused', (p) => p.participantId === alicePid);
  t.equal(paused.participantId, alicePid, 'Bob got producer_paused for Alice');
  await waitFor("Bob's tile to show Alice muted", () => bob.page.locator(`[data-testid=tile][data-participant-id="${alicePid}"][data-audio-muted=true]`).count(), { timeoutMs: 5000 });

  // Alice leaves: Bob is told.
  await alice.page.getByTestId('leave').click();
  await waitForState(alice, 'lobby');
  const aliceLeft = await waitForNotification(bob, 'peer_left', (p) => p.participantId === alicePid);
  t.equal(aliceLeft.participantId, alicePid, 'Bob got peer_left for Alice');
  await waitFor("Alice's tile to leave Bob's grid", async () => (await bob.page.locator(`[data-testid=tile][data-participant-id="${alicePid}"]`).count()) === 0, { timeoutMs: 5000 });

  // Carol (power 0, not the initiator) may not end the call, through the API or the page.
  const refused = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: c!.token });
  t.equal(refused.status, 403, "a plain member's end is refused");
  t.equal(refused.body.error.code, 'forbidden');
  await carol.page.getByTestId('end').click();
  await waitFor("Carol's page to show the refusal", () => carol.page.locator('[data-testid=status][data-error=true]').count(), { timeoutMs: 5000 });
  t.match(await carol.page.getByTestId('status').textContent(), /forbidden/);
  t.equal(await carol.page.evaluate(() => document.body.dataset.state), 'call', 'Carol is still in the call');

  // Alice comes back (the call is still active in her room) and ends it for everyone.
  await alice.page.getByTestId('refresh-rooms').click();
  await alice.page.locator(`[data-testid=room][data-room-id="${roomId}"] [data-testid=join-call]`).click();
  await waitForState(alice, 'call');
  // Bob met Alice the first time through his welcome, so a peer_joined for her is this rejoin.
  await waitForNotification(bob, 'peer_joined', (p) => p.userId === a!.userId);
  await alice.page.getByTestId('end').click();
  const endings = await Promise.all(
    clients.map(async (client: Client) => {
      const status = await waitForNotification(client, 'call_status', (p) => p.status === 'ended' && p.callId === callId);
      await waitForState(client, 'lobby');
      return status.status;
    }),
  );
  t.same(endings, clients.map(() => 'ended'), 'every page got call_status ended and went back to the lobby');
  const ended = await server.api(`/v1/calls/${callId}`, { token: a!.token });
  t.equal(ended.body.call.status, 'ended');
  t.ok(ended.body.call.ended_at, 'ended_at is set');
  const statuses = await notificationsOf(bob, 'call_status');
  t.ok(statuses.length >= 1, 'Bob saw call_status');
});
