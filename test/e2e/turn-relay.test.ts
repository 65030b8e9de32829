/**
 * The proof of issue "Embedded TURN that really relays browsers" (docs/turn.md): two real Chromium
 * pages with iceTransportPolicy 'relay' (the demo's ?ice=relay) hold a room call through the TURN
 * server and decode each other's video; every selected candidate pair is a relay one, and the
 * server counts the relayed packets. Run once with the embedded engine and once with coturn.
 */
import { existsSync } from 'node:fs';
import t, { type Test } from 'tap';
import { freePortBase } from '../helpers/ports.ts';
import { startTestServer } from '../helpers/server.ts';
import { browserTest, demoSignIn, dumpPageLogsOnFailure, ensureWebBuilt, launchClient, openDemo, waitFor, waitForMedia, waitForParticipantId, waitForPublishing, waitForState, type Client } from './helpers/browser.ts';

t.setTimeout(240_000);

/** The local candidate types of the page's selected candidate pairs, on both its transports. */
async function selectedLocalTypes(client: Client): Promise<string[]> {
  return client.page.evaluate(async () => {
    const debug = window.callplane;
    const types: string[] = [];
    for (const transport of [debug?.sendTransport, debug?.recvTransport]) {
      if (!transport || transport.closed) continue;
      const report = await transport.getStats();
      const byId = new Map<string, Record<string, unknown>>();
      report.forEach((stat: Record<string, unknown>) => byId.set(String(stat.id), stat));
      report.forEach((stat: Record<string, unknown>) => {
        if (stat.type !== 'transport' || !stat.selectedCandidatePairId) return;
        const pair = byId.get(String(stat.selectedCandidatePairId));
        const local = pair ? byId.get(String(pair.localCandidateId)) : undefined;
        types.push(String(local?.candidateType));
      });
    }
    return types;
  });
}

async function relayCall(t: Test, engine: 'embedded' | 'coturn'): Promise<void> {
  ensureWebBuilt();
  const relayBase = await freePortBase(60);
  const [server, alice, bob] = await Promise.all([
    startTestServer(t, { media: { workers: 1 }, turn: { engine, relay_port_min: relayBase, relay_port_max: relayBase + 59 } }),
    launchClient(t, 'Alice'),
    launchClient(t, 'Bob'),
  ]);
  dumpPageLogsOnFailure(t, [alice, bob]);
  const turnUrls = server.ctx.turnServer.urls();
  t.match(turnUrls[0], new RegExp(`^turn:127\\.0\\.0\\.1:${server.ctx.config.turn.port}\\?transport=udp$`), `${engine}: the engine's URL is handed out`);

  await Promise.all([alice, bob].map((client) => openDemo(client, server.baseUrl, 'ice=relay')));
  const [a, b] = await Promise.all([alice, bob].map((client) => demoSignIn(client, client.name)));
  await alice.page.getByTestId('refresh-rooms').click();
  await alice.page.locator(`[data-testid=member-option][data-user-id="${b!.userId}"] input`).check();
  await alice.page.getByTestId('room-name').fill('Relayed');
  await alice.page.getByTestId('create-room').click();
  const roomItem = alice.page.locator('[data-testid=room][data-room-name="Relayed"]');
  await roomItem.waitFor({ timeout: 10_000 });
  await roomItem.getByTestId('start-video').click();
  await waitForState(alice, 'call');
  const alicePid = await waitForParticipantId(alice);
  await waitForPublishing(alice);
  const callId = (await alice.page.evaluate(() => window.callplane.callId))!;
  const invite = bob.page.locator(`[data-testid=invite][data-call-id="${callId}"]`);
  await invite.waitFor({ timeout: 15_000 });
  await invite.getByTestId('invite-join').click();
  await waitForState(bob, 'call');
  const bobPid = await waitForParticipantId(bob);
  await waitForPublishing(bob);

  const welcomeServers = await alice.page.evaluate(() => window.callplane.session?.welcome?.iceServers ?? []);
  t.same(welcomeServers.map((s: { urls: string[] }) => s.urls), [turnUrls], 'welcome.iceServers lists the same URLs');
  t.ok(a!.userId && b!.userId);

  const [bobGetsAlice, aliceGetsBob] = await Promise.all([waitForMedia(bob, { from: alicePid, timeoutMs: 60_000 }), waitForMedia(alice, { from: bobPid, timeoutMs: 60_000 })]);
  t.ok(bobGetsAlice.video!.framesDecoded > 0, `${engine}: Bob decodes Alice's video through TURN (${bobGetsAlice.video!.framesDecoded} frames)`);
  t.ok(aliceGetsBob.video!.framesDecoded > 0, `${engine}: Alice decodes Bob's video through TURN (${aliceGetsBob.video!.framesDecoded} frames)`);
  for (const client of [alice, bob]) {
    const types = await waitFor(`${client.name}'s selected pairs`, async () => {
      const list = await selectedLocalTypes(client);
      return list.length === 2 ? list : null;
    });
    t.same(types, ['relay', 'relay'], `${client.name}: both transports' selected pairs use a relay candidate`);
  }
  if (engine === 'embedded') {
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    const relayed = Number(/^callplane_turn_relayed_packets_total\{direction="to_peer"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
    t.ok(relayed > 100, `the embedded server counts relayed packets (${relayed})`);
    t.match(metrics, /^callplane_turn_allocations [1-9]/m, 'and live allocations');
  }
}

browserTest(t, 'a room call between two relay-only Chromium pages through the embedded TURN', (t) => relayCall(t, 'embedded'));

const coturnMissing = existsSync('/usr/bin/turnserver') ? null : 'no /usr/bin/turnserver (apt-get install coturn; npm run setup installs it)';
if (coturnMissing && process.env.CI === 'true') t.fail(`${coturnMissing}: CI=true, so this fails rather than skips`);
else if (coturnMissing) t.test('the same call through the coturn engine', { skip: coturnMissing }, async () => undefined);
else browserTest(t, 'the same call through the coturn engine', (t) => relayCall(t, 'coturn'));
