/**
 * SPEC §7 / §12, the must-show: kill the media worker hosting a call — participants are
 * told (`reconnect`, close 4011), reconnect with a fresh token and the same identity, and media
 * flows again through a router on a live worker.
 */
import t from 'tap';
import type { WorkerDiedEvent } from '../../src/media/worker-pool.ts';
import { startTestServer } from '../helpers/server.ts';
import { browserTest, ensureWebBuilt, notificationsOf, waitFor, waitForNotification, waitForPublishing } from './helpers/browser.ts';
import { twoPartyCall, waitForVideoFlowing } from './helpers/call.ts';

t.setTimeout(90_000);

browserTest(t, 'killing the worker hosting a call: everyone reconnects and media flows again', async (t) => {
  ensureWebBuilt();
  const server = await startTestServer(t, { media: { workers: 2 } });
  const call = await twoPartyCall(t, server, 'Doomed worker');
  const { alice, bob, callId, alicePid, bobPid } = call;
  t.ok(call.bobGetsAlice.video!.framesDecoded > 0 && call.aliceGetsBob.video!.framesDecoded > 0, 'before the kill, both pages decode each other');

  // The worker hosting the call's (main) router.
  const session = server.ctx.sfu.get(callId);
  t.ok(session, 'the call has an SFU session on this node');
  const main = session!.main!;
  t.ok(main, 'with a main router');
  const hosting = server.ctx.media.snapshot().find((w) => w.index === main.workerIndex)!;
  t.equal(hosting.pid, main.workerPid, `the router lives on worker ${hosting.index} (pid ${hosting.pid})`);
  t.ok(hosting.consumers >= 4 && hosting.producers >= 4, `which holds the call's producers and consumers (${hosting.producers}/${hosting.consumers})`);
  const killedPid = hosting.pid!;
  const killedRouterId = main.id;

  const oldConsumers = {
    alice: [call.aliceGetsBob.video!.consumerId, call.aliceGetsBob.audio!.consumerId],
    bob: [call.bobGetsAlice.video!.consumerId, call.bobGetsAlice.audio!.consumerId],
  };
  const welcomesBefore = await Promise.all([alice, bob].map(async (client) => (await notificationsOf(client, 'welcome')).length));
  t.same(await Promise.all([alice, bob].map(async (client) => (await notificationsOf(client, 'reconnect')).length)), [0, 0], 'no reconnect notification before the kill');

  const died = new Promise<WorkerDiedEvent>((resolve) => server.ctx.media.once('workerdied', resolve));
  process.kill(killedPid, 'SIGKILL');
  const death = await Promise.race([died, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no workerdied event within 10 s')), 10_000).unref())]);
  t.equal(death.pid, killedPid, `the pool saw worker ${death.index} (pid ${killedPid}) die`);

  // Both pages are told, and come back with the same identity.
  for (const client of [alice, bob]) {
    const notice = await waitForNotification(client, 'reconnect', () => true, 15_000);
    t.equal(notice.reason, 'media_worker_died', `${client.name} got reconnect (media_worker_died)`);
  }
  for (const [i, client] of [alice, bob].entries()) {
    await waitFor(
      `${client.name}'s page to reconnect (a new welcome after the kill)`,
      () =>
        client.page.evaluate(
          (before) => (window.callplane.session?.reconnects ?? 0) >= 1 && window.callplane.notifications.filter((n) => n.type === 'welcome').length > before,
          welcomesBefore[i]!,
        ),
      { timeoutMs: 20_000, logs: client.logs },
    );
  }
  t.equal(await alice.page.evaluate(() => window.callplane.participantId), alicePid, 'Alice keeps her participant id');
  t.equal(await bob.page.evaluate(() => window.callplane.participantId), bobPid, 'Bob keeps his participant id');
  for (const client of [alice, bob]) t.equal(await client.page.evaluate(() => document.body.dataset.state), 'call', `${client.name}'s page is still in the call`);

  // Media flows again, both ways, through new consumers: frames keep being decoded after the kill.
  await Promise.all([waitForPublishing(alice), waitForPublishing(bob)]);
  const [bobGetsAlice, aliceGetsBob] = await Promise.all([
    waitForVideoFlowing(bob, alicePid, { excludeConsumers: oldConsumers.bob, frames: 10 }),
    waitForVideoFlowing(alice, bobPid, { excludeConsumers: oldConsumers.alice, frames: 10 }),
  ]);
  t.ok(!oldConsumers.bob.includes(bobGetsAlice.consumerId), `Bob decodes Alice through a new consumer (${bobGetsAlice.firstFrames} → ${bobGetsAlice.lastFrames} frames)`);
  t.ok(!oldConsumers.alice.includes(aliceGetsBob.consumerId), `Alice decodes Bob through a new consumer (${aliceGetsBob.firstFrames} → ${aliceGetsBob.lastFrames} frames)`);

  // The call's router now lives on a live worker (not the dead process).
  const now = server.ctx.sfu.get(callId);
  t.equal(now, session, 'the same call session survived the worker');
  const newMain = now!.main;
  t.ok(newMain && newMain.id !== killedRouterId, 'the call has a new main router');
  t.not(newMain!.workerPid, killedPid, `on a different process (pid ${newMain!.workerPid}, worker ${newMain!.workerIndex})`);
  const host = server.ctx.media.snapshot().find((w) => w.index === newMain!.workerIndex)!;
  t.ok(host.ready && host.pid === newMain!.workerPid, `worker ${host.index} (pid ${host.pid}) is live and hosts it`);
  t.ok(host.consumers >= 4, `the new consumers are there (${host.consumers})`);
  t.throws(() => process.kill(killedPid, 0), 'the killed process is gone');

  // Nobody left: one participant row each, both still in.
  for (const client of [alice, bob]) {
    const left = await notificationsOf(client, 'peer_left');
    t.same(left, [], `${client.name} never saw anyone leave`);
  }
  const state = await server.api(`/v1/calls/${callId}`, { token: call.a.token });
  t.equal(state.body.call.status, 'active', 'the call is still active');
  const rows = state.body.call.participants as Array<{ participant_id: string; left_at: string | null }>;
  t.same(rows.map((p) => p.participant_id).sort(), [alicePid, bobPid].sort(), 'the same two participants, one row each');
  t.ok(rows.every((p) => p.left_at === null), 'neither has left');
});
