/**
 * SPEC §7: the SFU's AudioLevelObserver (threshold -70 dBov, 800 ms interval; see
 * src/sfu/session.ts) names the loudest participant in `active_speaker`.
 *
 * Chromium's fake microphone beeps (a short 400 Hz tone twice a second) after its audio processing
 * (AGC, noise suppression): measured through the observer, each participant's 800 ms average
 * hovers between about -60 and -85 dBov, so each page crosses -70 in roughly half of the
 * intervals, and active_speaker alternates between a participant and null (silence). The test
 * therefore waits (bounded) for a state rather than for one message: both are heard while both
 * are unmuted; once Alice pauses her microphone (pauseProducer) only Bob is ever named, and
 * Alice's page shows Bob as the speaker.
 */
import t from 'tap';
import { startTestServer } from '../helpers/server.ts';
import { browserTest, ensureWebBuilt, notificationsOf, waitFor, waitForNotification } from './helpers/browser.ts';
import { twoPartyCall } from './helpers/call.ts';

t.setTimeout(90_000);

const THRESHOLD_DBOV = -70;

browserTest(t, 'active_speaker names the unmuted participant at the muted one', async (t) => {
  ensureWebBuilt();
  const server = await startTestServer(t, { media: { workers: 1 } });
  const { alice, bob, callId, alicePid, bobPid } = await twoPartyCall(t, server, 'Who is talking');
  const speakers = async (client: typeof alice, from = 0) => (await notificationsOf(client, 'active_speaker')).slice(from) as Array<{ participantId: string | null; volume?: number }>;
  t.teardown(async () => {
    if (t.passing()) return;
    for (const client of [alice, bob]) t.comment(`${client.name}'s active_speaker: ${JSON.stringify(await speakers(client).catch(() => 'n/a'))}`);
  });

  // Both unmuted: both fake microphones are loud enough to be named (so silence later is the mute).
  for (const [pid, name] of [
    [alicePid, 'Alice'],
    [bobPid, 'Bob'],
  ] as const) {
    const named = await waitForNotification(alice, 'active_speaker', (p) => p.participantId === pid, 20_000);
    t.ok(typeof named.volume === 'number' && named.volume >= THRESHOLD_DBOV, `unmuted, ${name} is named active speaker (${named.volume} dBov)`);
  }

  // Alice mutes her microphone (the page pauses her producer and asks pauseProducer). Once the
  // request is answered, everything the server broadcast before the pause has reached her page.
  const aliceFrom = await alice.page.evaluate(async () => {
    const session = window.callplane.session!;
    await session.toggleMic();
    const { microphone, camera } = window.callplane.producers;
    return {
      muted: session.micMuted,
      count: window.callplane.notifications.filter((n) => n.type === 'active_speaker').length,
      mic: { id: microphone!.id, paused: microphone!.paused },
      cam: { id: camera!.id, paused: camera!.paused },
    };
  });
  t.ok(aliceFrom.muted, "Alice's microphone is muted");
  t.same([aliceFrom.mic.paused, aliceFrom.cam.paused], [true, false], "Alice's page paused her microphone producer, not her camera's");
  // The SFU's producers too: the page pausing only stops its own sending; consumers and the call's
  // audio_on follow the server's pause.
  const sfuPaused = Object.fromEntries([...(server.ctx.sfu.get(callId)?.peers.get(alicePid)?.producers.values() ?? [])].map(({ producer }) => [producer.id, producer.paused]));
  t.same(sfuPaused, { [aliceFrom.mic.id]: true, [aliceFrom.cam.id]: false }, "the SFU holds Alice's microphone producer paused and her camera's not");
  // Any producer_paused, not one already filtered to Alice, so the assertion checks who and what.
  await waitForNotification(bob, 'producer_paused', () => true, 10_000);
  t.same(await notificationsOf(bob, 'producer_paused'), [{ participantId: alicePid, producerId: aliceFrom.mic.id }], "Bob is told Alice's microphone producer, and only it, is paused");
  const bobSees = await bob.page.evaluate((pid) => {
    const producers = window.callplane.session!.peers.get(pid)?.producers;
    return Object.fromEntries([...(producers?.values() ?? [])].map((p) => [p.producerId, p.paused]));
  }, alicePid);
  t.same(bobSees, { [aliceFrom.mic.id]: true, [aliceFrom.cam.id]: false }, "Bob's page marks Alice's microphone paused and her camera not");
  const bobFrom = await bob.page.evaluate(
    (pid) => {
      const list = window.callplane.notifications;
      const at = list.findIndex((n) => n.type === 'producer_paused' && (n.payload as { participantId: string }).participantId === pid);
      return list.slice(0, at).filter((n) => n.type === 'active_speaker').length;
    },
    alicePid,
  );

  // At Alice's page, Bob becomes (or stays) the speaker after the mute, and his tile shows it.
  const fresh = await waitFor(
    'active_speaker naming Bob at Alice\'s page after her mute',
    async () => (await speakers(alice, aliceFrom.count)).find((p) => p.participantId === bobPid),
    { timeoutMs: 20_000, logs: alice.logs },
  );
  t.ok(fresh.volume! >= THRESHOLD_DBOV, `Alice's page is told Bob is speaking (${fresh.volume} dBov)`);
  const speakingTiles = await waitFor(
    "Bob's tile on Alice's page to show him speaking",
    () => alice.page.locator(`[data-testid=tile][data-participant-id="${bobPid}"][data-speaking=true]`).count(),
    { timeoutMs: 20_000, logs: alice.logs },
  );
  t.equal(speakingTiles, 1, "Bob's tile on Alice's page is marked speaking");

  // Keep listening until Bob has been named twice more at Alice's page (Bob → silence → Bob: at
  // least two more observer rounds after the mute) and check Alice is never named meanwhile.
  await waitFor(
    'two more active_speaker rounds naming Bob',
    async () => (await speakers(alice, aliceFrom.count)).filter((p) => p.participantId === bobPid).length >= 2,
    { timeoutMs: 25_000, logs: alice.logs },
  );
  const afterMuteAtAlice = await speakers(alice, aliceFrom.count);
  const afterMuteAtBob = await speakers(bob, bobFrom);
  t.same(afterMuteAtAlice.filter((p) => p.participantId === alicePid), [], `muted, Alice is never named at her page (${afterMuteAtAlice.length} active_speaker since the mute)`);
  t.same(afterMuteAtBob.filter((p) => p.participantId === alicePid), [], `nor at Bob's page (${afterMuteAtBob.length} since producer_paused)`);
  t.ok(afterMuteAtAlice.every((p) => p.participantId === bobPid || p.participantId === null), 'only Bob or silence is reported');
});
