/**
 * Outbound webhooks end to end: real calls through the real SFU (libwebrtc peers in Node), a real
 * HTTP receiver that verifies every request with the `standardwebhooks` library, and the events of
 * docs/webhooks.md with their data; the order per call is the order the events were recorded.
 */
import t, { type Test } from 'tap';
import { Value } from '@sinclair/typebox/value';
import { Webhook } from 'standardwebhooks';
import { TestPaymentProvider } from '../../src/billing/index.ts';
import { WEBHOOK_EVENT_SCHEMAS, type WebhookEventType } from '../../src/protocol/webhooks.ts';
import { ScaledClock } from '../../src/shared/clock.ts';
import { NodePeer } from '../helpers/node-peer.ts';
import { createAccount, startTestServer } from '../helpers/server.ts';
import { recorder } from '../helpers/ws.ts';
import { eventually } from '../helpers/wait.ts';
import { WebhookReceiver, type ReceivedWebhook } from '../helpers/webhook-receiver.ts';

const SCALE = 30; // a 1-minute billing window lasts 2 s
const clock = new ScaledClock(SCALE, Date.now());
const provider = new TestPaymentProvider({ clock });
const receiver = await WebhookReceiver.start();
t.teardown(() => receiver.close());
// An endpoint of the config file, for call.ended only, with the operator's own secret.
const configured = await WebhookReceiver.start();
t.teardown(() => configured.close());
configured.secret = `whsec_${Buffer.alloc(32, 42).toString('base64')}`;
const server = await startTestServer(
  t,
  {
    jobs: { concurrency: 4, poll_interval_ms: 50 },
    payments: { media_grace_seconds: 30, join_timeout_seconds: 600 },
    webhooks: { allow_private_targets: true, retry_initial_ms: 100, retry_max_ms: 400, endpoints: [{ url: configured.url, secret: configured.secret, events: ['call.ended'] }] },
  },
  { clock, payments: provider },
);

const created = await server.api('/v1/webhook-endpoints', { method: 'POST', apiKey: true, body: { url: receiver.url, description: 'everything' } });
if (created.status !== 201) throw new Error(`endpoint: ${created.status} ${JSON.stringify(created.body)}`);
receiver.secret = created.body.endpoint.secret;

/** The call's events as recorded (webhook_events, by number): what the receiver must get, in this order. */
async function recorded(callId: string): Promise<Array<{ id: string; type: string }>> {
  return server.ctx.db.selectFrom('webhook_events').select(['id', 'type']).where('call_id', '=', callId).orderBy('seq').execute();
}

/** Each event once, in the order it was first acknowledged (duplicates are allowed, not reordered). */
function firstArrivals(events: ReceivedWebhook[]): ReceivedWebhook[] {
  const seen = new Set<string>();
  return events.filter((e) => !seen.has(e.id) && seen.add(e.id));
}

function checkShapes(t: Test, events: ReceivedWebhook[]): void {
  const bad = events.filter((e) => !Value.Check(WEBHOOK_EVENT_SCHEMAS[e.body.type as WebhookEventType], e.body.data));
  t.same(bad.map((e) => e.body), [], 'every event\u2019s data has the documented shape');
  t.ok(events.every((e) => e.verified), 'every request verified with standardwebhooks');
  t.ok(events.every((e) => e.body.timestamp && !Number.isNaN(Date.parse(e.body.timestamp))), 'timestamps are RFC 3339');
}

const ann = await createAccount(server, 'user', 'Ann');
const bob = await createAccount(server, 'user', 'Bob');
const room = (await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'Hooks', members: [{ user_id: bob.id }] } })).body.room;

t.test('a room call: created, joins, tracks, active once, leaves, ended — in the recorded order', async (t) => {
  const started = await server.api('/v1/calls/initiate', { method: 'POST', token: ann.token, body: { room_id: room.id, type: 'video' } });
  t.equal(started.status, 201);
  const callId = started.body.call.id;
  const annPeer = await NodePeer.connect({ signalingUrl: started.body.signaling_url, token: started.body.signaling_token, produce: { audio: true, video: true } });
  t.teardown(() => annPeer.close());
  const joined = await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: bob.token });
  const bobPeer = await NodePeer.connect({ signalingUrl: joined.body.signaling_url, token: joined.body.signaling_token, produce: { audio: true } });
  t.teardown(() => bobPeer.close());
  await Promise.all([annPeer.sendConnected(), bobPeer.sendConnected()]);
  t.ok(await bobPeer.receivedRtp({ timeoutMs: 10_000 }), 'media flows');
  const tracks = await eventually(() => server.ctx.db.selectFrom('webhook_events').select('type').where('call_id', '=', callId).where('type', '=', 'track.published').execute(), (rows) => rows.length === 3);
  t.equal(tracks.length, 3, 'Ann published audio and video, Bob audio');
  const ended = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: ann.token, body: {} });
  t.equal(ended.status, 200);

  const got = await receiver.until((all) => all.some((e) => e.body.type === 'call.ended' && e.body.data.call_id === callId));
  const events = firstArrivals(got.filter((e) => e.body.data.call_id === callId));
  t.same(events.map((e) => e.id), (await recorded(callId)).map((e) => e.id), 'every recorded event arrived, in the recorded order');
  checkShapes(t, events);
  const types = events.map((e) => e.body.type);
  t.equal(types[0], 'call.created');
  t.equal(types.at(-1), 'call.ended');
  t.equal(types.filter((x) => x === 'call.active').length, 1, 'call.active once');
  const participantOf = (userId: string) => started.body.call.participants.find((p: { user_id: string }) => p.user_id === userId)?.participant_id ?? joined.body.call.participants.find((p: { user_id: string }) => p.user_id === userId)?.participant_id;
  for (const user of [ann, bob]) {
    const pid = participantOf(user.id);
    const joinedAt = types.findIndex((x, i) => x === 'participant.joined' && events[i]!.body.data.participant_id === pid);
    const leftAt = types.findIndex((x, i) => x === 'participant.left' && events[i]!.body.data.participant_id === pid);
    t.ok(joinedAt > 0 && leftAt > joinedAt && leftAt < types.length - 1, `${user.id}: joined, then left before the end`);
    t.equal(events[leftAt]!.body.data.reason, 'call_ended');
    const own = events.filter((e) => e.body.type === 'track.published' && e.body.data.participant_id === pid);
    t.ok(own.every((e) => events.indexOf(e) > joinedAt), 'tracks come after their participant joined');
  }
  t.match(events[0]!.body.data, { call_id: callId, kind: 'room', media_type: 'video', initiator_id: ann.id, room_id: room.id });
  t.match(events.at(-1)!.body.data, { call_id: callId, kind: 'room', status: 'ended', end_reason: 'ended_by_user', ended_at: ended.body.call.ended_at });
  t.notOk('billing' in events.at(-1)!.body.data, 'no billing summary for a room call');
  const kinds = events.filter((e) => e.body.type === 'track.published').map((e) => `${e.body.data.user_id === ann.id ? 'ann' : 'bob'}:${e.body.data.kind}`).sort();
  t.same(kinds, ['ann:audio', 'ann:video', 'bob:audio']);
});

const host = await createAccount(server, 'host', 'Jane');
const hostSocket = recorder(`${server.baseUrl.replace('http', 'ws')}/v1/ws?token=${host.token}`);
t.teardown(() => hostSocket.ws.close());
await eventually(() => server.ctx.userNotifier.isOnline(host.id), Boolean);
const code = (await server.api('/v1/links', { method: 'POST', token: host.token, body: { rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 1 } })).body.link.short_code;

/** A paid call with both sides' media connected through the SFU (the meter runs). */
async function activePaidCall(t: Test, shortCode = code) {
  const guest = (await server.api(`/v1/links/${shortCode}/guest`, { method: 'POST', body: { guest_name: 'Alex' } })).body;
  const initiated = await server.api('/v1/calls/initiate', { method: 'POST', token: guest.access_token, body: { short_code: shortCode, payment_method_id: 'pm_card_visa' } });
  t.equal(initiated.status, 201);
  const callId: string = initiated.body.call.id;
  const guestPeer = await NodePeer.connect({ signalingUrl: initiated.body.signaling_url, token: initiated.body.signaling_token });
  t.teardown(() => guestPeer.close());
  const joined = await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: host.token });
  const hostPeer = await NodePeer.connect({ signalingUrl: joined.body.signaling_url, token: joined.body.signaling_token });
  t.teardown(() => hostPeer.close());
  await eventually(async () => (await server.api(`/v1/calls/${callId}/status`, { apiKey: true })).body.call.status, (status) => status === 'active', 20_000);
  return { callId, guest };
}

t.test('a paid call: created, hold, waiting, active, captures, ended with the billing summary', async (t) => {
  const { callId, guest } = await activePaidCall(t);
  await eventually(() => provider.list(callId), (holds) => holds[0]?.status === 'captured', 20_000);
  const ended = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: guest.access_token, body: {} });
  t.equal(ended.status, 200);
  // The answer is the settled call, or `ending` while the provider still answers the settlement.
  const final = await eventually(async () => (await server.api(`/v1/calls/${callId}/status`, { apiKey: true })).body.call, (call) => call.status === 'completed', 20_000);
  t.equal(final.status, 'completed');

  const got = await receiver.until((all) => all.some((e) => e.body.type === 'call.ended' && e.body.data.call_id === callId));
  const events = firstArrivals(got.filter((e) => e.body.data.call_id === callId));
  t.same(events.map((e) => e.id), (await recorded(callId)).map((e) => e.id), 'every recorded event arrived, in the recorded order');
  checkShapes(t, events);
  const types = events.map((e) => e.body.type);
  const first = (type: string) => types.indexOf(type);
  t.equal(types[0], 'call.created');
  t.ok(first('billing.hold_placed') < first('call.waiting') && first('call.waiting') < first('call.active'), 'hold, waiting, active');
  t.equal(types.at(-1), 'call.ended');
  t.match(events[0]!.body.data, { kind: 'paid', initiator_id: guest.user.id, host_id: host.id });
  t.match(events[first('call.waiting')]!.body.data, { host_id: host.id, guest_id: guest.user.id });
  t.equal(events[first('call.active')]!.body.data.started_at, final.started_at, 'call.active at the meter start');

  const holds = await provider.list(callId);
  const placed = events.filter((e) => e.body.type === 'billing.hold_placed').map((e) => [e.body.data.window, e.body.data.hold_id, e.body.data.amount]);
  t.same(placed, holds.map((h) => [h.window, h.holdId, (h.amountMinor / 100).toFixed(2)]), 'one billing.hold_placed per hold, with its id and amount');
  const captured = events.filter((e) => e.body.type === 'billing.captured');
  t.same(captured.map((e) => [e.body.data.window, e.body.data.amount]), holds.filter((h) => h.status === 'captured').map((h) => [h.window, (h.amountCapturedMinor / 100).toFixed(2)]), 'one billing.captured per capture, with what it captured');
  const released = events.filter((e) => e.body.type === 'billing.released').map((e) => e.body.data.hold_id);
  t.same(released, holds.filter((h) => h.status === 'released').map((h) => h.holdId), 'one billing.released per released hold');
  for (const c of captured) t.ok(placed.findIndex((p) => p[0] === c.body.data.window) < events.indexOf(c), 'a window is held before it is captured');

  const summary = events.at(-1)!.body.data;
  t.match(summary, { status: 'completed', end_reason: 'user_ended', ended_at: final.ended_at, billing: { duration_seconds: final.duration_seconds, billed_minutes: final.billed_minutes, total_charged: final.total_charged, currency: 'usd' } });
  const capturedMinor = captured.reduce((sum, e) => sum + Math.round(Number(e.body.data.amount) * 100), 0);
  t.equal((capturedMinor / 100).toFixed(2), summary.billing.total_charged, 'the captures add up to the summary');
});

t.test('a paid call whose capture fails: call.failed (the operator alert), then call.ended failed', async (t) => {
  // 10-minute windows (20 s here): the hold expires well before its boundary.
  const tenMinutes = (await server.api('/v1/links', { method: 'POST', token: host.token, body: { rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 10 } })).body.link.short_code;
  const { callId } = await activePaidCall(t, tenMinutes);
  const [first] = await provider.list(callId);
  await provider.expireHold(first!.holdId); // the window-1 capture at the boundary fails for good
  const got = await receiver.until((all) => all.some((e) => e.body.type === 'call.ended' && e.body.data.call_id === callId), 40_000);
  const events = firstArrivals(got.filter((e) => e.body.data.call_id === callId));
  checkShapes(t, events);
  const types = events.map((e) => e.body.type);
  t.same(types.slice(-2), ['call.failed', 'call.ended'], 'the alert, then the end');
  t.notOk(types.includes('billing.captured'), 'nothing captured');
  const status = (await server.api(`/v1/calls/${callId}/status`, { apiKey: true })).body.call;
  t.equal(status.status, 'failed');
  t.match(events.at(-2)!.body.data, { kind: 'paid', window: 1, reason: String, billing: { total_charged: status.total_charged, currency: 'usd' } });
  t.match(events.at(-1)!.body.data, { status: 'failed', end_reason: status.end_reason });
});

t.test('the config file\u2019s endpoint: its filter and secret apply; the admin API refuses to change it', async (t) => {
  const ended = await configured.until((acked) => acked.length >= 3);
  t.ok(ended.length >= 3 && ended.every((e) => e.body.type === 'call.ended' && e.verified), 'only call.ended, signed with the configured secret');
  const listed = (await server.api('/v1/webhook-endpoints?per_page=100', { apiKey: true })).body.data;
  const fromConfig = listed.find((e: { url: string }) => e.url === configured.url);
  t.match(fromConfig, { source: 'config', events: ['call.ended'], enabled: true });
  const patched = await server.api(`/v1/webhook-endpoints/${fromConfig.id}`, { method: 'PATCH', apiKey: true, body: { events: ['call.created'] } });
  t.equal(patched.status, 409);
  t.equal(patched.body.error.code, 'invalid_state');
  t.equal((await server.api(`/v1/webhook-endpoints/${fromConfig.id}`, { method: 'DELETE', apiKey: true })).status, 409);
});

t.test('signatures: the library accepts what was sent and refuses a tampered body or another secret', async (t) => {
  const sample = receiver.acknowledged[0]!;
  const headers = { 'webhook-id': sample.id, 'webhook-timestamp': String(sample.timestamp), 'webhook-signature': sample.signature };
  t.match(new Webhook(receiver.secret!).verify(sample.raw, headers), { type: sample.body.type });
  t.throws(() => new Webhook(receiver.secret!).verify(sample.raw.replace('"data":{', '"data":{"x":1,'), headers), 'a changed body fails');
  t.throws(() => new Webhook(`whsec_${Buffer.alloc(24, 7).toString('base64')}`).verify(sample.raw, headers), 'another secret fails');
  t.match(sample.signature, /^v1,[A-Za-z0-9+/]+={0,2}$/);
  t.match(sample.id, /^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
});

t.test('receiver down for one call: its events wait and arrive in order with the same ids; another call goes on', async (t) => {
  const blocked = await WebhookReceiver.start();
  t.teardown(() => blocked.close());
  const endpoint = await server.api('/v1/webhook-endpoints', { method: 'POST', apiKey: true, body: { url: blocked.url, events: ['call.created', 'call.ended'] } });
  blocked.secret = endpoint.body.endpoint.secret;
  // Down for every call but B (whose id is known only once B exists: an earlier attempt is refused and retried).
  let down = true;
  let callB = '';
  blocked.respond = (request) => (down && request.body.data.call_id !== callB ? 503 : 200);

  const roomA = (await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'A', members: [] } })).body.room;
  const roomB = (await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'B', members: [] } })).body.room;
  const a = await server.api('/v1/calls/initiate', { method: 'POST', token: ann.token, body: { room_id: roomA.id, type: 'audio' } });
  const callA = a.body.call.id;
  await server.api(`/v1/calls/${callA}/end`, { method: 'POST', token: ann.token, body: {} });
  const b = await server.api('/v1/calls/initiate', { method: 'POST', token: ann.token, body: { room_id: roomB.id, type: 'audio' } });
  callB = b.body.call.id;
  await server.api(`/v1/calls/${callB}/end`, { method: 'POST', token: ann.token, body: {} });

  await blocked.until((acked) => acked.filter((e) => e.body.data.call_id === callB).length === 2);
  t.same(blocked.ofCall(callB).map((e) => e.body.type), ['call.created', 'call.ended'], 'call B delivered while call A fails');
  const failedA = await eventually(() => blocked.requests.filter((r) => r.body.data.call_id === callA), (rs) => rs.length >= 3);
  t.ok(failedA.length >= 3 && failedA.every((r) => r.answered === 503), `call A was tried and refused, several times (${failedA.length})`);
  t.same([...new Set(failedA.map((r) => r.body.type))], ['call.created'], 'call A\u2019s later event waits behind its first');
  const deliveries = await server.api(`/v1/webhook-endpoints/${endpoint.body.endpoint.id}/deliveries?status=pending`, { apiKey: true });
  t.match(deliveries.body.data.find((d: { type: string }) => d.type === 'call.created'), { status: 'pending', last_status_code: 503, call_id: callA });

  down = false;
  await blocked.until((acked) => acked.filter((e) => e.body.data.call_id === callA).length === 2);
  const deliveredA = blocked.ofCall(callA);
  t.same(deliveredA.map((e) => e.body.type), ['call.created', 'call.ended'], 'in order once the receiver is back');
  t.equal(deliveredA[0]!.id, failedA[0]!.id, 'the same webhook-id as the failed attempts');
  t.ok(failedA.every((r) => r.id === failedA[0]!.id));
  t.equal(deliveredA[0]!.raw, failedA[0]!.raw, 'the same body, byte for byte');
  const all = await server.api(`/v1/webhook-endpoints/${endpoint.body.endpoint.id}/deliveries`, { apiKey: true });
  const createdA = all.body.data.find((d: { call_id: string; type: string }) => d.call_id === callA && d.type === 'call.created');
  t.match(createdA, { status: 'delivered', last_status_code: 200, event_id: failedA[0]!.id });
  t.ok(createdA.attempts >= 4 && createdA.delivered_at, `delivered on attempt ${createdA.attempts}`);

  const endpointId = endpoint.body.endpoint.id;
  // The last acknowledgement is recorded just after the receiver answered it.
  const metrics = await eventually(async () => (await fetch(`${server.baseUrl}/metrics`)).text(), (text) => text.includes(`callplane_webhook_backlog{endpoint="${endpointId}"} 0`));
  const retries = Number(new RegExp(`callplane_webhook_deliveries_total\\{endpoint="${endpointId}",outcome="retry"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
  t.equal(retries, blocked.requests.filter((r) => r.answered === 503).length, 'every refused attempt counted as a retry');
  t.match(metrics, new RegExp(`callplane_webhook_deliveries_total\\{endpoint="${endpointId}",outcome="delivered"\\} 4`), 'four deliveries');
  t.match(metrics, new RegExp(`callplane_webhook_backlog\\{endpoint="${endpointId}"\\} 0`), 'nothing pending');
  t.match(metrics, /callplane_webhook_oldest_undelivered_seconds \d/);
  t.match(metrics, new RegExp(`callplane_webhook_delivery_latency_seconds_count\\{endpoint="${endpointId}"\\} 4`));
});

t.test('admin API: create, list, get, patch the event filter, deliveries, replay, delete', async (t) => {
  const second = await WebhookReceiver.start();
  t.teardown(() => second.close());
  const made = await server.api('/v1/webhook-endpoints', { method: 'POST', apiKey: true, body: { url: second.url, events: ['call.created'], description: 'crm' } });
  t.equal(made.status, 201);
  const endpoint = made.body.endpoint;
  t.match(endpoint, { url: second.url, events: ['call.created'], description: 'crm', enabled: true, source: 'api', created_at: String });
  t.match(endpoint.secret, /^whsec_[A-Za-z0-9+/]{32}$/, 'a whsec_ secret, shown on create');
  second.secret = endpoint.secret;
  const fetched = await server.api(`/v1/webhook-endpoints/${endpoint.id}`, { apiKey: true });
  t.equal(fetched.status, 200);
  t.notOk('secret' in fetched.body.endpoint, 'never shown again');
  const listed = await server.api('/v1/webhook-endpoints?per_page=100', { apiKey: true });
  t.match(listed.body, { success: true, pagination: { page: 1, per_page: 100 } });
  t.ok(listed.body.data.some((e: { id: string; secret?: string }) => e.id === endpoint.id && e.secret === undefined));

  const patched = await server.api(`/v1/webhook-endpoints/${endpoint.id}`, { method: 'PATCH', apiKey: true, body: { events: ['call.ended'] } });
  t.equal(patched.status, 200);
  t.same(patched.body.endpoint.events, ['call.ended']);
  const roomC = (await server.api('/v1/rooms', { method: 'POST', token: ann.token, body: { name: 'C', members: [] } })).body.room;
  const c = await server.api('/v1/calls/initiate', { method: 'POST', token: ann.token, body: { room_id: roomC.id, type: 'audio' } });
  await server.api(`/v1/calls/${c.body.call.id}/end`, { method: 'POST', token: ann.token, body: {} });
  await second.until((acked) => acked.length === 1);
  const everything = await receiver.until((all) => all.some((e) => e.body.type === 'call.ended' && e.body.data.call_id === c.body.call.id));
  t.ok(everything.some((e) => e.body.type === 'call.created' && e.body.data.call_id === c.body.call.id), 'the unfiltered endpoint got call.created');
  t.same(second.acknowledged.map((e) => e.body.type), ['call.ended'], 'the filter: only call.ended');

  const deliveries = await eventually(() => server.api(`/v1/webhook-endpoints/${endpoint.id}/deliveries`, { apiKey: true }), (answer) => answer.body.data?.[0]?.status === 'delivered');
  t.equal(deliveries.status, 200);
  t.equal(deliveries.body.pagination.total, 1);
  const delivery = deliveries.body.data[0];
  t.match(delivery, { type: 'call.ended', status: 'delivered', attempts: 1, last_status_code: 204, event_id: second.acknowledged[0]!.id, next_attempt_at: null });
  const replayed = await server.api(`/v1/webhook-endpoints/${endpoint.id}/deliveries/${delivery.id}/replay`, { method: 'POST', apiKey: true });
  t.equal(replayed.status, 202);
  t.match(replayed.body.delivery, { id: delivery.id, status: 'pending' });
  await second.until((acked) => acked.length === 2);
  t.equal(second.acknowledged[1]!.id, delivery.event_id, 'replay redelivers the same event id');
  t.equal(second.acknowledged[1]!.raw, second.acknowledged[0]!.raw, 'and the same body');

  const notAdmin = await server.api('/v1/webhook-endpoints', { token: ann.token });
  t.equal(notAdmin.status, 403);
  const badEvent = await server.api('/v1/webhook-endpoints', { method: 'POST', apiKey: true, body: { url: second.url, events: ['call.exploded'] } });
  t.equal(badEvent.status, 400);
  t.equal(badEvent.body.error.code, 'validation_failed');
  const notUrl = await server.api('/v1/webhook-endpoints', { method: 'POST', apiKey: true, body: { url: 'ftp://example.com/x' } });
  t.equal(notUrl.status, 400);
  const unknown = await server.api('/v1/webhook-endpoints/01ARZ3NDEKTSV4RRFFQ69G5FAV', { apiKey: true });
  t.equal(unknown.status, 404);
  t.equal(unknown.body.error.code, 'not_found');

  const deleted = await server.api(`/v1/webhook-endpoints/${endpoint.id}`, { method: 'DELETE', apiKey: true });
  t.equal(deleted.status, 204);
  t.equal((await server.api(`/v1/webhook-endpoints/${endpoint.id}`, { apiKey: true })).status, 404);
  t.equal((await server.api(`/v1/webhook-endpoints/${endpoint.id}/deliveries`, { apiKey: true })).status, 404);
});
