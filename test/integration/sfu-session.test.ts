import t from 'tap';
import { once } from 'node:events';

// The same small harness as signaling-robustness.test.ts: a real uWS app, real media workers, the
// real SfuRegistry; signaling tokens come from a Map the test fills (the REST layer's job in production).

import { startSignaling, audio, video } from '../helpers/signaling.ts';

t.test('publish and subscribe: new_producer, paused consumers, pause/resume/close notifications', async (t) => {
  const s = await startSignaling(t);
  const alice = await s.join('call-1', 'alice');
  t.same(alice.welcome.peers, [], 'first participant sees nobody');
  const bob = await s.join('call-1', 'bob');
  t.same(bob.welcome.peers, [{ participantId: 'alice', userId: 'user-alice', displayName: 'Name alice', producers: [] }]);
  t.same((await alice.client.next('peer_joined')).payload, { participantId: 'bob', userId: 'user-bob', displayName: 'Name bob' });

  const send = await alice.client.ok('createTransport', { direction: 'send' });
  const mic = await alice.client.ok('produce', { transportId: send.id, kind: 'audio', rtpParameters: audio(1111), source: 'microphone' });
  const cam = await alice.client.ok('produce', { transportId: send.id, kind: 'video', rtpParameters: video(2222), source: 'camera' });
  t.match(mic, { id: String });
  t.same((await bob.client.next('new_producer')).payload, { participantId: 'alice', producerId: mic.id, kind: 'audio', source: 'microphone' });
  t.same((await bob.client.next('new_producer')).payload, { participantId: 'alice', producerId: cam.id, kind: 'video', source: 'camera' });
  t.same(Object.fromEntries(s.sfu.participantMedia('call-1')), { alice: { audio_on: true, video_on: true }, bob: { audio_on: false, video_on: false } });

  const dup = await alice.client.ask('produce', { transportId: send.id, kind: 'audio', rtpParameters: audio(1112, '2'), source: 'microphone' });
  t.same(dup.payload.code, 'invalid_state', 'one microphone per participant');

  // A late joiner's welcome lists the producers.
  const carol = await s.join('call-1', 'carol');
  t.same(carol.welcome.peers.find((p: { participantId: string }) => p.participantId === 'alice').producers, [
    { producerId: mic.id, kind: 'audio', source: 'microphone', paused: false },
    { producerId: cam.id, kind: 'video', source: 'camera', paused: false },
  ]);

  const recv = await bob.client.ok('createTransport', { direction: 'recv' });
  const caps = bob.welcome.routerRtpCapabilities;
  const consumer = await bob.client.ok('consume', { producerId: cam.id, rtpCapabilities: caps });
  t.match(consumer, { id: String, producerId: cam.id, kind: 'video', type: 'simple', producerPaused: false, rtpParameters: { codecs: Array, encodings: Array } });
  const again = await bob.client.ask('consume', { producerId: cam.id, rtpCapabilities: caps });
  t.equal(again.payload.code, 'invalid_state', 'a producer is consumed once per participant');
  const dump = (await s.sfu.get('call-1')!.main!.router.dump()) as { mapProducerIdConsumerIds: Record<string, string[]> };
  t.same(dump.mapProducerIdConsumerIds[cam.id], [consumer.id], 'the consumer lives on the call router');
  t.same(await bob.client.ok('resumeConsumer', { consumerId: consumer.id }), {});
  t.equal(recv.id.length > 0, true);

  t.same(await alice.client.ok('pauseProducer', { producerId: mic.id }), {});
  t.same((await bob.client.next('producer_paused')).payload, { participantId: 'alice', producerId: mic.id });
  t.same(s.sfu.participantMedia('call-1').get('alice'), { audio_on: false, video_on: true }, 'a paused producer counts as off');
  t.same(await alice.client.ok('resumeProducer', { producerId: mic.id }), {});
  t.same((await carol.client.next('producer_resumed')).payload, { participantId: 'alice', producerId: mic.id });

  t.same(await alice.client.ok('closeProducer', { producerId: cam.id }), {});
  t.same((await bob.client.next('producer_closed')).payload, { participantId: 'alice', producerId: cam.id });
  t.same((await bob.client.next('consumer_closed')).payload, { consumerId: consumer.id, producerId: cam.id }, 'the subscriber is told its consumer went');
  t.same((await bob.client.ask('resumeConsumer', { consumerId: consumer.id })).payload.code, 'not_found');
});

t.test('permissions and the one screen share per call', async (t) => {
  const s = await startSignaling(t);
  const viewer = await s.join('call-p', 'viewer', { permissions: { canPublish: false, canSubscribe: true, canEndCall: false } });
  t.equal((await viewer.client.ask('createTransport', { direction: 'send' })).payload.code, 'forbidden', 'no send transport for a peer that may not publish');
  await viewer.client.ok('createTransport', { direction: 'recv' });

  const a = await s.join('call-p', 'a');
  const b = await s.join('call-p', 'b');
  const at = await a.client.ok('createTransport', { direction: 'send' });
  const bt = await b.client.ok('createTransport', { direction: 'send' });
  const screen = await a.client.ok('produce', { transportId: at.id, kind: 'video', rtpParameters: video(10), source: 'screen' });
  const refused = await b.client.ask('produce', { transportId: bt.id, kind: 'video', rtpParameters: video(20), source: 'screen' });
  t.same(refused.payload.code, 'invalid_state', 'a second screen share is refused');
  t.equal((await a.client.ask('produce', { transportId: at.id, kind: 'audio', rtpParameters: audio(30, '5'), source: 'camera' })).payload.code, 'validation_failed', 'camera carries video');
  await a.client.ok('closeProducer', { producerId: screen.id });
  t.match(await b.client.ok('produce', { transportId: bt.id, kind: 'video', rtpParameters: video(20), source: 'screen' }), { id: String }, 'free again once closed');
});

t.test('reconnect with a fresh token keeps the identity; the old socket closes with 4009', async (t) => {
  const s = await startSignaling(t);
  const alice = await s.join('call-r', 'alice');
  const bob = await s.join('call-r', 'bob');
  await alice.client.next('peer_joined');
  const send = await bob.client.ok('createTransport', { direction: 'send' });
  const mic = await bob.client.ok('produce', { transportId: send.id, kind: 'audio', rtpParameters: audio(5), source: 'microphone' });
  await alice.client.next('new_producer');

  const again = await s.join('call-r', 'bob');
  t.same(await bob.client.closed, { code: 4009, reason: 'replaced by a newer connection' });
  t.equal(again.welcome.participantId, 'bob');
  t.same(again.welcome.peers.map((p: { participantId: string }) => p.participantId), ['alice']);
  t.same((await alice.client.next('producer_closed')).payload, { participantId: 'bob', producerId: mic.id }, 'old media closed');
  t.same((await again.client.ask('createTransport', { direction: 'send' })).type, 'response', 'transports are re-created');
  t.notOk(alice.client.has('peer_joined'), 'no peer_joined for a known participant');
  t.notOk(alice.client.has('peer_left'), 'no peer_left either');
});

t.test('a dropped participant is kept for the grace period, then peer_left', async (t) => {
  const s = await startSignaling(t, { calls: { reconnect_grace_seconds: 1 } });
  const alice = await s.join('call-g', 'alice');
  const bob = await s.join('call-g', 'bob');
  await alice.client.next('peer_joined');
  const left: string[] = [];
  s.sfu.on('peerleft', (e) => left.push(e.participantId));
  const started = Date.now();
  bob.client.ws.close();
  t.same((await alice.client.next('peer_left')).payload, { participantId: 'bob' });
  t.ok(Date.now() - started >= 900, 'after the grace period');
  t.same(left, ['bob']);
});

t.test('leave answers, closes with 4012 and tells the others at once', async (t) => {
  const s = await startSignaling(t);
  const alice = await s.join('call-l', 'alice');
  const bob = await s.join('call-l', 'bob');
  await alice.client.next('peer_joined');
  t.same(await bob.client.ok('leave'), {});
  t.equal((await bob.client.closed).code, 4012);
  t.same((await alice.client.next('peer_left', 2000)).payload, { participantId: 'bob' });
});

t.test('endCall: call_status ended to everyone, then close 4010', async (t) => {
  const s = await startSignaling(t);
  const a = await s.join('call-e', 'a');
  const b = await s.join('call-e', 'b');
  const closedEvent = once(s.sfu, 'callclosed');
  t.ok(s.sfu.endCall('call-e', 'host_ended'));
  for (const c of [a.client, b.client]) {
    t.same((await c.next('call_status')).payload, { callId: 'call-e', status: 'ended', reason: 'host_ended' });
    t.equal((await c.closed).code, 4010);
  }
  t.same((await closedEvent)[0], { callId: 'call-e', reason: 'host_ended' });
  t.equal(s.sfu.get('call-e'), undefined);
  t.same(s.pool.snapshot()[0]!.routers, 0, 'the router is gone');
});

t.test('an empty call ends itself after empty_timeout_seconds (emptyCalls: end, the default)', async (t) => {
  const s = await startSignaling(t, { calls: { empty_timeout_seconds: 1 } });
  const a = await s.join('call-e', 'a');
  const closed = once(s.sfu, 'callclosed');
  let reported = false;
  s.sfu.on('empty', () => (reported = true));
  a.client.ws.close();
  t.same((await closed)[0], { callId: 'call-e', reason: 'empty' });
  t.equal(reported, false, 'the registry decided: no empty event');
  t.equal(s.sfu.get('call-e'), undefined, 'the session is gone');
});

t.test('an empty call emits empty after empty_timeout_seconds (emptyCalls: report)', async (t) => {
  const s = await startSignaling(t, { calls: { empty_timeout_seconds: 1 }, emptyCalls: 'report' });
  const a = await s.join('call-x', 'a');
  const empty = once(s.sfu, 'empty');
  const started = Date.now();
  a.client.ws.close();
  t.same((await empty)[0], { callId: 'call-x' });
  t.ok(Date.now() - started >= 900, 'not before the timeout');
  s.sfu.endCall('call-x', 'empty');

  // Prepared but never joined: the timer runs from prepare.
  await s.sfu.prepare('call-y');
  t.same((await once(s.sfu, 'empty'))[0], { callId: 'call-y' });
});

t.test('a call past max_consumers_per_worker pipes to a router on another worker', async (t) => {
  const s = await startSignaling(t, { workers: 2, media: { max_consumers_per_worker: 1 } });
  const pub = await s.join('call-pipe', 'pub');
  const main = s.sfu.get('call-pipe')!.main!;
  const send = await pub.client.ok('createTransport', { direction: 'send' });
  const cam = await pub.client.ok('produce', { transportId: send.id, kind: 'video', rtpParameters: video(700), source: 'camera' });

  const sub1 = await s.join('call-pipe', 'sub1');
  await sub1.client.ok('createTransport', { direction: 'recv' });
  await sub1.client.ok('consume', { producerId: cam.id, rtpCapabilities: sub1.welcome.routerRtpCapabilities });
  t.equal(s.pool.consumerCount(main.workerIndex), 1, 'the main worker is now full');

  const sub2 = await s.join('call-pipe', 'sub2');
  const recv2 = await sub2.client.ok('createTransport', { direction: 'recv' });
  const other = 1 - main.workerIndex;
  const session = s.sfu.get('call-pipe')!;
  t.same([...session.routers.keys()].sort(), [0, 1], 'the call now has a router on each worker');
  const port = s.pool.snapshot()[other]!.webRtcServerPort;
  t.ok(recv2.iceCandidates.every((c: { port: number }) => c.port === port), 'the new subscriber\'s transport is on the other worker');
  const consumer = await sub2.client.ok('consume', { producerId: cam.id, rtpCapabilities: sub2.welcome.routerRtpCapabilities });
  t.match(consumer, { producerId: cam.id, kind: 'video' });
  t.equal(s.pool.consumerCount(other), 1, 'consumed on the other worker');
  t.ok(s.pool.consumerCount(main.workerIndex) >= 2, 'the pipe consumer sits on the main worker');

  // Producer lifecycle crosses the pipe: closing it closes the piped consumer.
  await pub.client.ok('closeProducer', { producerId: cam.id });
  t.same((await sub2.client.next('consumer_closed')).payload, { consumerId: consumer.id, producerId: cam.id });
});

t.test('a worker death tells every participant to reconnect (4011); a fresh token gets a new router', async (t) => {
  const s = await startSignaling(t, { workers: 2 });
  const a = await s.join('call-d', 'a');
  const b = await s.join('call-d', 'b');
  const interrupted = once(s.sfu, 'mediainterrupted');
  const pid = s.sfu.get('call-d')!.main!.workerPid;
  process.kill(pid, 'SIGKILL');
  for (const c of [a.client, b.client]) {
    t.same((await c.next('reconnect')).payload, { reason: 'media_worker_died' });
    t.equal((await c.closed).code, 4011);
  }
  t.same((await interrupted)[0], { callId: 'call-d', reason: 'media_worker_died' });
  const back = await s.join('call-d', 'a');
  t.equal(back.welcome.participantId, 'a');
  t.ok(Array.isArray(back.welcome.routerRtpCapabilities.codecs), 'welcome carries routerRtpCapabilities again');
  t.same(back.welcome.peers.map((p: { participantId: string }) => p.participantId), ['b'], 'b is still known during its grace period');
  const session = s.sfu.get('call-d')!;
  t.not(session.main!.workerPid, pid, 'the router is on a live worker');
  const send = await back.client.ok('createTransport', { direction: 'send' });
  t.match(await back.client.ok('produce', { transportId: send.id, kind: 'audio', rtpParameters: audio(9), source: 'microphone' }), { id: String });
});
