/**
 * Seed 000's flow end to end with plain WebRTC: a paid link, the guest's initiate with a payment
 * method, the host's join, and two Chromium pages with nothing but RTCPeerConnection and WebSocket
 * (test/e2e/helpers/sdp-page.ts) on `/ws?token=<signaling_token>` of the real server. Each page is
 * told `peer_joined` for the other, both decode the other's video and play its audio, the call goes
 * `active` from the SFU's DTLS states (no client reports anything), and ending it captures
 * ⌈s/60⌉ × rate.
 */
import t from 'tap';
import { TestPaymentProvider } from '../../src/billing/index.ts';
import { createAccount, startTestServer } from '../helpers/server.ts';
import { recorder } from '../helpers/ws.ts';
import { eventually } from '../helpers/wait.ts';
import { chromiumMissing, dumpPageLogsOnFailure, launchClient, waitFor } from './helpers/browser.ts';
import { sdpInbound, sdpState, startSdpCall } from './helpers/sdp-page.ts';

t.setTimeout(120_000);

t.test('a paid seed 000 call between two plain RTCPeerConnection pages', { skip: chromiumMissing() ?? false }, async (t) => {
  const provider = new TestPaymentProvider();
  const [server, guestPage, hostPage] = await Promise.all([startTestServer(t, {}, { payments: provider }), launchClient(t, 'Guest'), launchClient(t, 'Host')]);
  dumpPageLogsOnFailure(t, [guestPage, hostPage]);
  const host = await createAccount(server, 'host', 'Jane Smith');
  const hostSocket = recorder(`${server.baseUrl.replace('http', 'ws')}/v1/ws?token=${host.token}`);
  t.teardown(() => hostSocket.ws.close());
  await eventually(() => server.ctx.userNotifier.isOnline(host.id), Boolean);
  const code = (await server.api('/v1/links', { method: 'POST', token: host.token, body: { rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 10 } })).body.link.short_code;

  const guest = (await server.api(`/v1/links/${code}/guest`, { method: 'POST', body: { guest_name: 'Alex' } })).body;
  const initiated = await server.api('/v1/calls/initiate', { method: 'POST', token: guest.access_token, body: { short_code: code, payment_method_id: 'pm_card_visa', guest_name: 'Alex' } });
  t.equal(initiated.status, 201, 'the guest initiates with a payment method');
  const callId = initiated.body.call.id as string;
  t.equal(initiated.body.call.status, 'waiting', 'the hold is placed, the call waits for the host');
  const status = async () => (await server.api(`/v1/calls/${callId}/status`, { apiKey: true })).body.call;

  const ws = (token: string) => `${server.baseUrl.replace('http', 'ws')}/ws?token=${encodeURIComponent(token)}`;
  const origin = `${server.baseUrl}/healthz`;
  await Promise.all([guestPage.page.goto(origin), hostPage.page.goto(origin)]);
  await startSdpCall(guestPage.page, ws(initiated.body.signaling_token));
  await waitFor('the guest\'s answer', async () => (await sdpState(guestPage.page)).answers >= 1, { logs: guestPage.logs });
  t.equal((await status()).status, 'waiting', 'the guest alone, media connected, does not start the meter');

  const joined = await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: host.token });
  t.equal(joined.status, 200, 'the host accepts and joins');
  await startSdpCall(hostPage.page, ws(joined.body.signaling_token));

  const ms = { timeoutMs: 30_000, logs: [...guestPage.logs, ...hostPage.logs] };
  const guestJoined = await waitFor('the guest is told the host joined', async () => (await sdpState(guestPage.page)).peersJoined[0], ms);
  const hostJoined = await waitFor('the host is told the guest is there', async () => (await sdpState(hostPage.page)).peersJoined[0], ms);
  t.equal(guestJoined.displayName, 'Jane Smith', 'the guest\'s peer_joined names the host');
  t.equal(hostJoined.displayName, 'Alex', 'the host\'s peer_joined carries the guest_name');

  for (const [who, client] of [['the host', guestPage], ['the guest', hostPage]] as const) {
    const inbound = await waitFor(`${client.name} decodes ${who}'s video and plays its audio`, async () => {
      const seen = await sdpInbound(client.page);
      return seen.framesDecoded > 10 && seen.audioPackets > 20 && seen.samples > 0 ? seen : null;
    }, ms);
    t.ok(inbound.framesDecoded > 10, `${client.name} decodes ${who}'s video (${inbound.framesDecoded} frames)`);
  }

  const active = await eventually(status, (call) => call.status === 'active', 15_000);
  t.equal(active.status, 'active', 'the SFU\'s DTLS states start the meter');
  await eventually(status, (call) => call.elapsed_seconds >= 1, 10_000);
  for (const client of [guestPage, hostPage]) t.same((await sdpState(client.page)).errors, [], `no error on ${client.name}'s socket`);

  const ended = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: guest.access_token, body: { reason: 'user_ended' } });
  t.equal(ended.status, 200, 'the guest ends the call');
  const final = ended.body.call;
  t.equal(final.status, 'completed');
  t.ok(final.duration_seconds >= 1, `the call ran ${final.duration_seconds} s`);
  t.equal(final.billed_minutes, Math.ceil(final.duration_seconds / 60), 'billed ⌈s/60⌉ minutes');
  t.equal(final.total_charged, (final.billed_minutes * 2).toFixed(2), 'charged billed minutes × 2.00');
  const holds = await provider.list(callId);
  t.equal(holds.reduce((sum, hold) => sum + hold.amountCapturedMinor, 0), final.billed_minutes * 200, 'the captures sum to ⌈s/60⌉ × rate');
  t.same(holds.filter((hold) => hold.status !== 'captured' && hold.status !== 'released').map((h) => h.holdId), [], 'no hold left authorised');
  t.equal(server.ctx.media.snapshot()[0]!.deaths, 0, 'the worker never died');
});
