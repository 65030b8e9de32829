/**
 * The paid-link flow of the demo page (SPEC §6.1, seed 000) in real Chromium against a real server
 * (real PostgreSQL, a real media worker, the in-process `test` payment provider), driven through the
 * UI: a host creates a link, a guest opens its share address, a declined card is refused, a good one
 * pays, the host accepts, both see each other and the meter run, the guest ends, both show the
 * summary the server settled.
 */
import t from 'tap';
import { startTestServer } from '../helpers/server.ts';
import {
  TEST_VIDEO,
  browserTest,
  dumpPageLogsOnFailure,
  ensureWebBuilt,
  launchClient,
  waitFor,
  waitForParticipantId,
  waitForPublishing,
  waitForState,
  type Client,
} from './helpers/browser.ts';
import { waitForVideoFlowing } from './helpers/call.ts';

t.setTimeout(180_000);

const text = (client: Client, testId: string): Promise<string> => client.page.getByTestId(testId).innerText();
const attribute = async (client: Client, testId: string, name: string): Promise<string | null> => client.page.getByTestId(testId).getAttribute(name);

browserTest(t, 'a paid link call between a host and a guest, through the demo page', async (t) => {
  ensureWebBuilt();
  const [server, host, guest] = await Promise.all([startTestServer(t), launchClient(t, 'Host'), launchClient(t, 'Guest')]);
  dumpPageLogsOnFailure(t, [host, guest]);

  // The host: demo login only makes plain users, so the API key makes a host and mints its token;
  // the page signs in with it (#token=…).
  const created = await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Hana Host', role: 'host' } });
  t.equal(created.status, 201, 'a host user is created');
  const hostId = created.body.user.id as string;
  const minted = await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: hostId } });
  t.equal(minted.status, 201, 'a host token is minted');
  const hostToken = minted.body.access_token as string;

  await host.page.goto(`${server.baseUrl}/?video=${TEST_VIDEO}#token=${encodeURIComponent(hostToken)}`, { waitUntil: 'load' });
  await waitForState(host, 'lobby');
  t.equal(await host.page.evaluate(() => window.callplane.me?.id), hostId, 'the page is signed in as the host');
  t.ok(await host.page.getByTestId('host-tools').isVisible(), 'a host sees the paid-link tools');
  await waitFor('the host to be available (user socket up)', async () => (await attribute(host, 'host-availability', 'data-available')) === 'true', { logs: host.logs });

  // The host creates a link in the UI.
  await host.page.getByTestId('link-rate').fill('2.00');
  await host.page.getByTestId('link-currency').selectOption('usd');
  await host.page.getByTestId('link-window').fill('10');
  await host.page.getByTestId('create-link').click();
  const linkItem = host.page.locator('[data-testid=link]');
  await linkItem.first().waitFor({ timeout: 10_000 });
  t.equal(await linkItem.count(), 1, 'one link is listed');
  const shortCode = (await linkItem.getAttribute('data-short-code'))!;
  const shareUrl = (await linkItem.getByTestId('link-share-url').getAttribute('href'))!;
  t.equal(shareUrl, `${server.baseUrl}/?link=${shortCode}`, 'the share address opens the guest view of the link');
  const listed = await server.api('/v1/links', { token: hostToken });
  t.same(
    listed.body.data.map((l: { short_code: string; rate_per_minute: string; currency: string; window_size_minutes: number }) => [l.short_code, l.rate_per_minute, l.currency, l.window_size_minutes]),
    [[shortCode, '2.00', 'usd', 10]],
    'the server stored the link as entered',
  );

  // The guest opens the share address: host, rate and window from the public link.
  await guest.page.goto(`${shareUrl}&video=${TEST_VIDEO}`, { waitUntil: 'load' });
  await waitForState(guest, 'guest');
  await waitFor('the public link to show', async () => (await text(guest, 'guest-host')) === 'Hana Host', { logs: guest.logs });
  t.equal(await attribute(guest, 'guest-rate', 'data-value'), '2.00', 'the rate is shown');
  t.match(await text(guest, 'guest-rate'), /2\.00 USD\/min/);
  t.equal(await attribute(guest, 'guest-window', 'data-value'), '10', 'the window is shown');
  t.equal(await attribute(guest, 'guest-available', 'data-available'), 'true', 'the host is shown available');

  // A declined card: refused with payment_failed, the guest stays on the form.
  await guest.page.getByTestId('guest-name').fill('Gus Guest');
  await guest.page.getByTestId('guest-card').selectOption('pm_card_chargeDeclined');
  await guest.page.getByTestId('guest-pay').click();
  await waitFor('the decline to show', async () => (await attribute(guest, 'guest-error', 'data-code')) === 'payment_failed', { logs: guest.logs });
  t.match(await text(guest, 'guest-error'), /declined/i, 'the guest is told the card was declined');
  t.equal(await guest.page.evaluate(() => document.body.dataset.state), 'guest', 'no call is opened');
  t.equal(await host.page.locator('[data-testid=incoming-call]').count(), 0, 'the host is not rung for a declined payment');

  // A good card: the call waits for the host.
  await guest.page.getByTestId('guest-card').selectOption('pm_card_visa');
  await guest.page.getByTestId('guest-pay').click();
  await waitForState(guest, 'call');
  await waitFor('the guest to wait for the host', async () => (await text(guest, 'meter-status')).includes('Waiting for Hana Host'), { logs: guest.logs });
  const callId = (await guest.page.evaluate(() => window.callplane.paid?.callId))!;
  t.ok(callId, 'the guest page holds the paid call');
  const waiting = await server.api(`/v1/calls/${callId}/status`, { token: hostToken });
  t.equal(waiting.body.call.status, 'waiting', 'the server has the call waiting for the host');
  t.equal(waiting.body.call.guest_name, 'Gus Guest');

  // The host is rung and accepts.
  const incoming = host.page.locator(`[data-testid=incoming-call][data-call-id="${callId}"]`);
  await incoming.waitFor({ timeout: 15_000 });
  t.match(await incoming.getByTestId('incoming-text').innerText(), /Gus Guest is calling through link/, 'the ring names the guest');
  await incoming.getByTestId('incoming-accept').click();
  await waitForState(host, 'call');
  t.equal(await host.page.evaluate(() => window.callplane.callId), callId, 'the host joined the same call');
  const [hostPid, guestPid] = await Promise.all([waitForParticipantId(host), waitForParticipantId(guest)]);
  await Promise.all([waitForPublishing(host), waitForPublishing(guest)]);

  // Each decodes the other's video, and it keeps flowing.
  const [hostSeesGuest, guestSeesHost] = await Promise.all([waitForVideoFlowing(host, guestPid), waitForVideoFlowing(guest, hostPid)]);
  t.ok(hostSeesGuest.lastFrames > hostSeesGuest.firstFrames, `the host decodes the guest's video (${hostSeesGuest.firstFrames} → ${hostSeesGuest.lastFrames} frames)`);
  t.ok(guestSeesHost.lastFrames > guestSeesHost.firstFrames, `the guest decodes the host's video (${guestSeesHost.firstFrames} → ${guestSeesHost.lastFrames} frames)`);

  // The meter runs on both pages (polled /status: active, window 1, elapsed > 0).
  for (const client of [host, guest]) {
    const seconds = await waitFor(
      `${client.name}'s meter to run`,
      async () => {
        const status = await attribute(client, 'meter', 'data-status');
        const elapsed = Number((await attribute(client, 'meter-elapsed', 'data-seconds')) || 0);
        return status === 'active' && elapsed > 0 ? elapsed : null;
      },
      { logs: client.logs, timeoutMs: 15_000 },
    );
    t.ok(seconds > 0, `${client.name}'s meter shows ${seconds} s elapsed`);
    t.equal(await attribute(client, 'meter-window', 'data-window'), '1', `${client.name}'s meter is in window 1`);
    t.match(await attribute(client, 'meter-estimate', 'data-value'), /^\d+\.\d{2}$/, `${client.name}'s meter shows an estimated charge`);
    t.equal(await client.page.getByTestId('meter-warning').isVisible(), false, `${client.name} sees no billing warning`);
  }
  const active = await server.api(`/v1/calls/${callId}/status`, { token: hostToken });
  t.equal(active.body.call.status, 'active', 'the server meters the call');
  t.ok(active.body.call.elapsed_seconds > 0, 'the server counts elapsed seconds');

  // The guest ends; both pages show the summary the server settled.
  await guest.page.getByTestId('end').click();
  await Promise.all([waitForState(guest, 'summary'), waitForState(host, 'summary')]);
  for (const client of [host, guest]) {
    await waitFor(`${client.name}'s summary to be final`, async () => (await attribute(client, 'summary', 'data-final')) === 'true', { logs: client.logs });
  }
  const final = (await server.api(`/v1/calls/${callId}/status`, { token: hostToken })).body.call;
  t.equal(final.status, 'completed', 'the call is completed');
  t.equal(final.end_reason, 'user_ended', 'the guest ended it');
  t.equal(final.total_charged, '2.00', 'a call under a minute at 2.00/min is charged 2.00');
  t.equal(final.billed_minutes, 1, 'one started minute is billed');
  for (const client of [host, guest]) {
    t.equal(await text(client, 'summary-status'), 'completed', `${client.name}'s summary says completed`);
    t.equal(await attribute(client, 'summary-total', 'data-value'), final.total_charged, `${client.name}'s summary shows total_charged ${final.total_charged}`);
    t.match(await text(client, 'summary-total'), /^2\.00 USD$/);
    t.equal(await attribute(client, 'summary-billed-minutes', 'data-value'), String(final.billed_minutes), `${client.name}'s summary shows the billed minutes`);
    t.equal(await attribute(client, 'summary-duration', 'data-seconds'), String(final.duration_seconds), `${client.name}'s summary shows the duration`);
    const pageErrors = client.logs.filter((line) => line.includes('pageerror'));
    t.same(pageErrors, [], `no uncaught errors on ${client.name}'s page`);
  }
  const hostEnded = await host.page.evaluate(
    (id) => window.callplane.userEvents.find((e) => e.event.name === 'call.ended' && (e.data.call as { id?: string } | undefined)?.id === id)?.data.call as { total_charged?: string } | undefined,
    callId,
  );
  t.equal(hostEnded?.total_charged, '2.00', "the host's user socket got call.ended with the summary");

  // Done: the host is back in the lobby, the link counts its use.
  await host.page.getByTestId('summary-done').click();
  await waitForState(host, 'lobby');
  const terms = await waitFor(
    'the link to count its use',
    async () => {
      const line = await host.page.getByTestId('link-terms').innerText();
      return /used 1×/.test(line) ? line : null;
    },
    { logs: host.logs },
  );
  t.match(terms, /2\.00 USD\/min · 10-min windows · used 1×/, 'the link shows its terms and one use (the declined attempt released its use)');
});

browserTest(t, 'a refused next hold: both pages warn when the call will end', async (t) => {
  ensureWebBuilt();
  const [server, host, guest] = await Promise.all([startTestServer(t), launchClient(t, 'Host'), launchClient(t, 'Guest')]);
  dumpPageLogsOnFailure(t, [host, guest]);
  const created = await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Hana Host', role: 'host' } });
  const hostToken = (await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: created.body.user.id } })).body.access_token as string;
  await host.page.goto(`${server.baseUrl}/?video=${TEST_VIDEO}#token=${encodeURIComponent(hostToken)}`, { waitUntil: 'load' });
  await waitForState(host, 'lobby');
  await waitFor('the host to be available', async () => (await attribute(host, 'host-availability', 'data-available')) === 'true', { logs: host.logs });

  // One-minute windows: the hold for window 2 is asked as soon as window 1 starts (start + W − 60 s).
  await host.page.getByTestId('link-window').fill('1');
  await host.page.getByTestId('create-link').click();
  const linkItem = host.page.locator('[data-testid=link]');
  await linkItem.first().waitFor({ timeout: 10_000 });
  const shareUrl = (await linkItem.getByTestId('link-share-url').getAttribute('href'))!;

  await guest.page.goto(`${shareUrl}&video=${TEST_VIDEO}`, { waitUntil: 'load' });
  await waitForState(guest, 'guest');
  await waitFor('the public link to show', async () => (await attribute(guest, 'guest-window', 'data-value')) === '1', { logs: guest.logs });
  await guest.page.getByTestId('guest-name').fill('Gus Guest');
  await guest.page.getByTestId('guest-card').selectOption('pm_card_callplane_declineAfterFirstHold');
  await guest.page.getByTestId('guest-pay').click();
  await waitForState(guest, 'call');
  const callId = (await guest.page.evaluate(() => window.callplane.paid?.callId))!;
  const incoming = host.page.locator(`[data-testid=incoming-call][data-call-id="${callId}"]`);
  await incoming.waitFor({ timeout: 15_000 });
  await incoming.getByTestId('incoming-accept').click();
  await waitForState(host, 'call');

  // Window 2's hold is refused: /status carries ends_at, and both meters warn with it.
  const endsAt = await waitFor(
    'the server to record the refused hold',
    async () => (await server.api(`/v1/calls/${callId}/status`, { token: hostToken })).body.call.ends_at as string | null,
    { timeoutMs: 30_000 },
  );
  const status = (await server.api(`/v1/calls/${callId}/status`, { token: hostToken })).body.call;
  t.equal(status.status, 'active', 'the call goes on until the end of the paid window');
  t.equal(endsAt, new Date(Date.parse(status.started_at) + 60_000).toISOString(), 'it ends when window 1 ends');
  for (const client of [host, guest]) {
    const shown = await waitFor(`${client.name}'s billing warning`, async () => ((await client.page.getByTestId('meter-warning').isVisible()) ? attribute(client, 'meter-warning', 'data-ends-at') : null), {
      logs: client.logs,
      timeoutMs: 10_000,
    });
    t.equal(shown, endsAt, `${client.name}'s meter warns with the server's ends_at`);
    t.match(await text(client, 'meter-warning'), /declined.*the call ends at/, `${client.name} reads why and when`);
  }
  const signaled = await guest.page.evaluate(() => window.callplane.notifications.find((n) => n.type === 'call_status' && (n.payload as { warning?: string }).warning)?.payload as { warning?: string } | undefined);
  t.equal(signaled?.warning, 'billing_error', 'the warning also came over signaling');

  // The host ends before the cutoff, once the meter has counted a second: one minute billed.
  await waitFor("the host's meter to count", async () => Number((await attribute(host, 'meter-elapsed', 'data-seconds')) || 0) > 0, { logs: host.logs });
  await host.page.getByTestId('end').click();
  await Promise.all([waitForState(guest, 'summary'), waitForState(host, 'summary')]);
  for (const client of [host, guest]) {
    await waitFor(`${client.name}'s summary to be final`, async () => (await attribute(client, 'summary', 'data-final')) === 'true', { logs: client.logs });
  }
  const final = (await server.api(`/v1/calls/${callId}/status`, { token: hostToken })).body.call;
  t.equal(final.end_reason, 'host_ended', 'the host ended it');
  t.ok(final.duration_seconds > 0 && final.duration_seconds < 60, `the call lasted under a minute (${final.duration_seconds} s)`);
  t.equal(final.total_charged, '2.00', 'one started minute of window 1: 2.00');
  for (const client of [host, guest]) {
    t.equal(await attribute(client, 'summary-total', 'data-value'), final.total_charged, `${client.name}'s summary shows total_charged ${final.total_charged}`);
    t.match(await text(client, 'summary-reason'), /host ended/, `${client.name}'s summary says the host ended it`);
  }
});
