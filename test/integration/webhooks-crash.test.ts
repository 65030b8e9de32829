/**
 * Webhooks across a crash (docs/webhooks.md, "Delivery"): the server runs in a process of its own and
 * is SIGKILLed after an event was committed and before its delivery was acknowledged (the receiver
 * holds the request unanswered, so the attempt is in flight). After the restart the event is
 * delivered, with the same webhook-id, and the call's later events follow in order.
 */
import t from 'tap';
import { createDatabase } from '../../src/db/database.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { ServerProcess } from '../helpers/server-process.ts';
import { WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { eventually } from '../helpers/wait.ts';

const receiver = await WebhookReceiver.start();
t.teardown(() => receiver.close());
const databaseUrl = await createTestDatabase(t);
const db = createDatabase(databaseUrl, 2);
t.teardown(() => db.destroy());
const server = await ServerProcess.create(t, databaseUrl, {
  CALLPLANE_WEBHOOKS_ALLOW_PRIVATE_TARGETS: 'true',
  CALLPLANE_WEBHOOKS_RETRY_INITIAL_MS: '100',
  CALLPLANE_WEBHOOKS_RETRY_MAX_MS: '400',
  CALLPLANE_JOBS_POLL_INTERVAL_MS: '100',
});
await server.start();

const endpoint = (await server.api('/v1/webhook-endpoints', { method: 'POST', apiKey: true, body: { url: receiver.url } })).body.endpoint;
receiver.secret = endpoint.secret;
const user = (await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Crash Ann', role: 'user' } })).body.user;
const token = (await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: user.id, ttl_seconds: 86400 } })).body.access_token as string;

t.test('SIGKILL while an event is being delivered: after the restart it arrives, then the rest in order', async (t) => {
  // The first request is held open (never answered): the event is committed, its delivery in flight.
  let releaseHeld: () => void = () => undefined;
  const held = new Promise<number>((resolve) => (releaseHeld = () => resolve(503)));
  let heldRequest: { id: string; type: string } | null = null;
  receiver.respond = (request) => {
    if (heldRequest === null) {
      heldRequest = { id: request.id, type: request.body.type };
      return held;
    }
    return 204;
  };
  const room = (await server.api('/v1/rooms', { method: 'POST', token, body: { name: 'Crash', members: [] } })).body.room;
  const started = await server.api('/v1/calls/initiate', { method: 'POST', token, body: { room_id: room.id, type: 'audio' } });
  t.equal(started.status, 201);
  const callId = started.body.call.id as string;
  // The receiver records a request only once it answers: wait on the responder having seen it.
  await eventually(() => heldRequest, (seen) => seen !== null, 20_000);
  t.same(heldRequest, { id: heldRequest!.id, type: 'call.created' }, 'call.created reached the receiver, unanswered');
  await server.kill();
  releaseHeld();
  const pending = await db.selectFrom('webhook_deliveries').select(['event_id', 'status']).where('call_id', '=', callId).execute();
  t.same(pending, [{ event_id: heldRequest!.id, status: 'pending' }], 'the killed process left the delivery pending');

  await server.start();
  const ended = await server.persist(`/v1/calls/${callId}/end`, { method: 'POST', token, body: {} });
  t.equal(ended.status, 200);
  const arrived = await receiver.until((acked) => acked.some((e) => e.body.type === 'call.ended' && e.body.data.call_id === callId), 30_000);
  const ofCall = arrived.filter((e) => e.body.data.call_id === callId);
  t.same(ofCall.map((e) => e.body.type), ['call.created', 'call.ended'], 'the interrupted event, then the next, in order');
  t.equal(ofCall[0]!.id, heldRequest!.id, 'with the webhook-id of the attempt the crash cut off');
  t.ok(ofCall.every((e) => e.verified));
  // The receiver has answered; the server records the acknowledgement right after.
  const rows = await eventually(() => db.selectFrom('webhook_deliveries').select(['status']).where('call_id', '=', callId).execute(), (rs) => rs.every((r) => r.status === 'delivered'));
  t.same(rows.map((r) => r.status), ['delivered', 'delivered']);
});

t.test('SIGKILL right after the commit, with the receiver refusing: delivered once it answers again', async (t) => {
  let up = false;
  receiver.respond = () => (up ? 204 : 503);
  const room = (await server.api('/v1/rooms', { method: 'POST', token, body: { name: 'Crash 2', members: [] } })).body.room;
  const started = await server.api('/v1/calls/initiate', { method: 'POST', token, body: { room_id: room.id, type: 'audio' } });
  const callId = started.body.call.id as string;
  // Committed and refused at least once: the kill lands between the commit and any delivery.
  const refused = await eventually(
    () => db.selectFrom('webhook_deliveries').select(['event_id', 'attempts', 'status']).where('call_id', '=', callId).executeTakeFirst(),
    (row) => (row?.attempts ?? 0) >= 1,
    20_000,
  );
  t.match(refused, { status: 'pending', attempts: Number });
  if (!refused) return;
  await server.kill();
  up = true;
  await server.start();
  const arrived = await receiver.until((acked) => acked.some((e) => e.body.data.call_id === callId), 30_000);
  const delivered = arrived.filter((e) => e.body.data.call_id === callId);
  t.same(delivered.map((e) => [e.id, e.body.type]), [[refused.event_id, 'call.created']], 'the same event, delivered after the restart');
});

t.test('graceful shutdown with a delivery in flight: the attempt is released, not counted, and sent after the restart', async (t) => {
  let releaseHeld: () => void = () => undefined;
  const held = new Promise<number>((resolve) => (releaseHeld = () => resolve(503)));
  let heldId: string | null = null;
  receiver.respond = (request) => {
    if (heldId === null) {
      heldId = request.id;
      return held;
    }
    return 204;
  };
  const room = (await server.api('/v1/rooms', { method: 'POST', token, body: { name: 'Shutdown', members: [] } })).body.room;
  const started = await server.api('/v1/calls/initiate', { method: 'POST', token, body: { room_id: room.id, type: 'audio' } });
  const callId = started.body.call.id as string;
  await eventually(() => heldId, (id) => id !== null, 20_000);
  await server.stop(); // SIGTERM: the held attempt is cut off
  releaseHeld();
  const row = await db.selectFrom('webhook_deliveries').select(['event_id', 'status', 'attempts']).where('call_id', '=', callId).executeTakeFirst();
  t.same(row, { event_id: heldId, status: 'pending', attempts: 0 }, 'left pending, the cut-off attempt not counted as a failure');
  await server.start();
  const arrived = await receiver.until((acked) => acked.some((e) => e.body.data.call_id === callId), 30_000);
  t.same(arrived.filter((e) => e.body.data.call_id === callId).map((e) => e.id), [heldId], 'delivered after the restart, same webhook-id');
});
