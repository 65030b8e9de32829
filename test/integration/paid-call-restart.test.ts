/**
 * A server restart in the middle of an active paid call (SPEC §6.2: the reconciler resumes every
 * call that is not terminal): the new process finds the call active with no media, waits the grace
 * period for the participants to come back, then ends it billed up to the last instant media was
 * seen (the media heartbeat), never for the time the server was down.
 */
import t from 'tap';
import { TestPaymentProvider } from '../../src/billing/index.ts';
import { ScaledClock } from '../../src/shared/clock.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { NodePeer } from '../helpers/node-peer.ts';
import { startTestServer } from '../helpers/server.ts';
import { recorder } from '../helpers/ws.ts';
import { eventually } from '../helpers/wait.ts';

const SCALE = 30;
const clock = new ScaledClock(SCALE, Date.now());
const provider = new TestPaymentProvider({ clock }); // outlives the server, like Stripe does
const databaseUrl = await createTestDatabase(t);
const settings = { database: { url: databaseUrl }, jobs: { concurrency: 4, poll_interval_ms: 50 }, payments: { media_grace_seconds: 30 } };


const first = await startTestServer(t, settings, { clock, payments: provider });
const api = first.api;
const created = await api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Jane Smith', role: 'host' } });
const hostId = created.body.user.id as string;
const hostToken = (await api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: hostId, ttl_seconds: 86400 } })).body.access_token as string;
const hostSocket = recorder(`${first.baseUrl.replace('http', 'ws')}/v1/ws?token=${hostToken}`);
await eventually(() => first.ctx.userNotifier.isOnline(hostId), Boolean);
const code = (await api('/v1/links', { method: 'POST', token: hostToken, body: { rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 10 } })).body.link.short_code;
const guest = (await api(`/v1/links/${code}/guest`, { method: 'POST', body: { guest_name: 'Alex' } })).body;
const initiated = await api('/v1/calls/initiate', { method: 'POST', token: guest.access_token, body: { short_code: code, payment_method_id: 'pm_card_visa' } });
const callId = initiated.body.call.id as string;
const joined = await api(`/v1/calls/${callId}/join`, { method: 'POST', token: hostToken });
const guestPeer = await NodePeer.connect({ signalingUrl: initiated.body.signaling_url, token: initiated.body.signaling_token, consume: false });
const hostPeer = await NodePeer.connect({ signalingUrl: joined.body.signaling_url, token: joined.body.signaling_token, consume: false });
t.teardown(() => Promise.all([guestPeer.close(), hostPeer.close()]));
const status = async (server: typeof first) => (await server.api(`/v1/calls/${callId}/status`, { apiKey: true })).body.call;
const active = await eventually(() => status(first), (call) => call.status === 'active');
await eventually(() => status(first), (call) => call.elapsed_seconds >= 40);

hostSocket.ws.close();
await first.stop(); // graceful: a last media heartbeat, then everything closes
const stoppedAt = clock.nowMs();
await Promise.all([guestPeer.closed, hostPeer.closed]);
await new Promise((resolve) => setTimeout(resolve, 2000)); // one minute of call time with the server down

const second = await startTestServer(t, settings, { clock, payments: provider });
const ended = await eventually(() => status(second), (call) => call.status === 'completed');

t.test('the restarted server ends the call after the grace period, billed up to when media was last seen', async (t) => {
  t.equal(active.status, 'active');
  t.match(ended, { status: 'completed', end_reason: 'media_lost' });
  const upToStop = Math.floor((stoppedAt - Date.parse(active.started_at)) / 1000);
  t.ok(ended.duration_seconds <= upToStop && ended.duration_seconds >= upToStop - 10, `billed ${ended.duration_seconds} s; the server stopped after ${upToStop} s and stayed down ~60 s`);
  t.equal(ended.billed_minutes, Math.ceil(ended.duration_seconds / 60));
  t.equal(ended.total_charged, (ended.billed_minutes * 2).toFixed(2));
  const holds = await provider.list(callId);
  t.same(holds.map((hold) => [hold.window, hold.status, hold.amountCapturedMinor]), [[1, 'captured', ended.billed_minutes * 200]], 'the window-1 hold captured for what was billed');
});
