/**
 * A paid call through the real SFU with real WebRTC peers (libwebrtc in Node): the meter starts only
 * when the SFU sees both participants' transports DTLS-connected, windows pass on a scaled clock (×30:
 * a 1-minute window lasts 2 s) with the real job runner, and the captures match the call's length.
 * Media loss past the grace period ends the call, billed up to the moment media stopped.
 */
import t from 'tap';
import { TestPaymentProvider } from '../../src/billing/index.ts';
import { ScaledClock } from '../../src/shared/clock.ts';
import { NodePeer } from '../helpers/node-peer.ts';
import { createAccount, startTestServer } from '../helpers/server.ts';
import { recorder } from '../helpers/ws.ts';
import { eventually } from '../helpers/wait.ts';

const SCALE = 30;
const clock = new ScaledClock(SCALE, Date.now());
const provider = new TestPaymentProvider({ clock });
const server = await startTestServer(t, { jobs: { concurrency: 4, poll_interval_ms: 50 }, payments: { media_grace_seconds: 30, join_timeout_seconds: 600 } }, { clock, payments: provider });



const host = await createAccount(server, 'host', 'Jane Smith');
const hostSocket = recorder(`${server.baseUrl.replace('http', 'ws')}/v1/ws?token=${host.token}`);
t.teardown(() => hostSocket.ws.close());
await eventually(() => server.ctx.userNotifier.isOnline(host.id), Boolean);
const code = (await server.api('/v1/links', { method: 'POST', token: host.token, body: { rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 1 } })).body.link.short_code;

async function startCall() {
  const guest = (await server.api(`/v1/links/${code}/guest`, { method: 'POST', body: { guest_name: 'Alex' } })).body;
  const initiated = await server.api('/v1/calls/initiate', { method: 'POST', token: guest.access_token, body: { short_code: code, payment_method_id: 'pm_card_visa' } });
  if (initiated.status !== 201) throw new Error(`initiate: ${initiated.status} ${JSON.stringify(initiated.body)}`);
  return { guestToken: guest.access_token as string, callId: initiated.body.call.id as string, answer: initiated.body };
}

const status = async (callId: string) => (await server.api(`/v1/calls/${callId}/status`, { apiKey: true })).body.call;

t.test('active starts only when the SFU sees both transports connected; captures follow the windows', async (t) => {
  const { guestToken, callId, answer } = await startCall();
  const connected = new Map<string, number>();
  const onConnected = ({ callId: id, participantId }: { callId: string; participantId: string }) => {
    if (id === callId && !connected.has(participantId)) connected.set(participantId, clock.nowMs());
  };
  server.ctx.sfu.on('transportconnected', onConnected);
  t.teardown(() => server.ctx.sfu.off('transportconnected', onConnected));

  const guestPeer = await NodePeer.connect({ signalingUrl: answer.signaling_url, token: answer.signaling_token, consume: true });
  t.teardown(() => guestPeer.close());
  await guestPeer.sendConnected();
  await eventually(() => connected.size, (n) => n >= 1);
  t.equal((await status(callId)).status, 'waiting', 'the guest alone does not start the meter');

  const joined = await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: host.token });
  t.equal(joined.status, 200);
  const hostPeer = await NodePeer.connect({ signalingUrl: joined.body.signaling_url, token: joined.body.signaling_token, consume: true });
  t.teardown(() => hostPeer.close());
  const active = await eventually(() => status(callId), (call) => call.status === 'active');
  t.equal(active.status, 'active');
  t.equal(connected.size, 2, 'both participants connected through the SFU');
  const startedAt = Date.parse(active.started_at);
  t.ok(startedAt >= Math.max(...connected.values()) - 1000 / SCALE, 'the meter started when the second transport connected, not before');
  for (const peer of [guestPeer, hostPeer]) {
    const notice = await peer.waitFor('call_status', (p) => p.status === 'active');
    t.equal(notice.callId, callId);
  }
  t.ok(await guestPeer.receivedRtp({ timeoutMs: 10_000 }), 'media flows host → guest');

  // Past the first boundary: window 1 captured in full (1 min × 2.00), window 2 held.
  const held = await eventually(() => provider.list(callId), (holds) => holds[0]?.status === 'captured' && holds[1]?.status === 'held');
  t.match(held[0], { window: 1, amountMinor: 200, status: 'captured', amountCapturedMinor: 200 });
  t.match(held[1], { window: 2, status: 'held' });
  const inWindow2 = await eventually(() => status(callId), (call) => call.current_window >= 2 && call.elapsed_seconds % 60 > 10);

  const ended = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: guestToken, body: {} });
  t.equal(ended.status, 200);
  const final = ended.body.call;
  t.equal(final.status, 'completed');
  t.ok(final.duration_seconds >= inWindow2.elapsed_seconds, `ran ${final.duration_seconds} s of call time`);
  t.equal(final.billed_minutes, Math.ceil(final.duration_seconds / 60));
  t.equal(final.total_charged, (final.billed_minutes * 2).toFixed(2));
  const holds = await provider.list(callId);
  const captured = holds.reduce((sum, hold) => sum + hold.amountCapturedMinor, 0);
  t.equal(captured, final.billed_minutes * 200, 'the captures sum to ⌈seconds / 60⌉ × rate');
  t.same(holds.filter((hold) => hold.status !== 'captured' && hold.status !== 'released').map((h) => h.holdId), [], 'no hold left authorised');
  const closed = await guestPeer.closed;
  t.equal(closed.code, 4010, 'the server closed the signaling socket: the call ended');
});

t.test('media gone for longer than the grace period ends the call, billed up to when media stopped', async (t) => {
  const { callId, answer } = await startCall();
  const guestPeer = await NodePeer.connect({ signalingUrl: answer.signaling_url, token: answer.signaling_token, consume: false });
  const joined = await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: host.token });
  const hostPeer = await NodePeer.connect({ signalingUrl: joined.body.signaling_url, token: joined.body.signaling_token, consume: false });
  t.teardown(() => hostPeer.close());
  const active = await eventually(() => status(callId), (call) => call.status === 'active');
  t.equal(active.status, 'active');
  await eventually(() => status(callId), (call) => call.elapsed_seconds >= 20);
  const stoppedAt = clock.nowMs();
  await guestPeer.close({ leave: false }); // the guest's network drops: no end, no leave
  const ended = await eventually(() => status(callId), (call) => call.status === 'completed');
  t.match(ended, { status: 'completed', end_reason: 'media_lost' });
  const expectedSeconds = Math.floor((stoppedAt - Date.parse(active.started_at)) / 1000);
  t.ok(Math.abs(ended.duration_seconds - expectedSeconds) <= 3, `billed ${ended.duration_seconds} s, media stopped after ~${expectedSeconds} s (not at the end of the 30 s grace)`);
  t.equal(ended.total_charged, (Math.ceil(ended.duration_seconds / 60) * 2).toFixed(2));
  t.equal((await provider.list(callId)).reduce((sum, hold) => sum + hold.amountCapturedMinor, 0), Math.ceil(ended.duration_seconds / 60) * 200);
});

t.test('a refused next hold warns both peers over signaling, and the call ends at the paid window\'s end', async (t) => {
  const guest = (await server.api(`/v1/links/${code}/guest`, { method: 'POST', body: { guest_name: 'Alex' } })).body;
  const initiated = await server.api('/v1/calls/initiate', { method: 'POST', token: guest.access_token, body: { short_code: code, payment_method_id: 'pm_card_callplane_declineAfterFirstHold' } });
  const callId = initiated.body.call.id;
  const guestPeer = await NodePeer.connect({ signalingUrl: initiated.body.signaling_url, token: initiated.body.signaling_token, consume: false });
  const joined = await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: host.token });
  const hostPeer = await NodePeer.connect({ signalingUrl: joined.body.signaling_url, token: joined.body.signaling_token, consume: false });
  t.teardown(() => Promise.all([guestPeer.close(), hostPeer.close()]));
  const active = await eventually(() => status(callId), (call) => call.status === 'active');
  const windowEnd = new Date(Date.parse(active.started_at) + 60_000).toISOString();
  for (const peer of [guestPeer, hostPeer]) {
    const warning = await peer.waitFor('call_status', (p) => p.warning === 'billing_error', 20_000);
    t.match(warning, { callId, status: 'active', warning: 'billing_error', decline_code: 'insufficient_funds', ends_at: windowEnd });
  }
  const ended = await eventually(() => status(callId), (call) => call.status === 'completed');
  t.match(ended, { end_reason: 'billing_error', duration_seconds: 60, billed_minutes: 1, total_charged: '2.00' });
  t.same((await provider.list(callId)).map((h) => [h.window, h.status, h.amountCapturedMinor]), [[1, 'captured', 200]]);
});
