/**
 * Roles with real media (libwebrtc peers in Node, a real media worker) in a direct call made by
 * the handshake: the owner demotes the other side to listener (its producer closes, the owner hears
 * producer_closed, the listener keeps receiving and cannot produce), then promotes it back (it
 * produces again and its audio reaches the owner).
 */
import t from 'tap';
import { NodePeer } from '../helpers/node-peer.ts';
import { createAccount, startTestServer } from '../helpers/server.ts';
import { UserSocketClient } from '../helpers/user-socket.ts';

const server = await startTestServer(t);
const ann = await createAccount(server, 'user', 'Ann');
const bob = await createAccount(server, 'user', 'Bob');

t.test('demotion closes the producer, promotion lets the peer produce again', async (t) => {
  const a = await UserSocketClient.connect(server.baseUrl, ann.token);
  const b = await UserSocketClient.connect(server.baseUrl, bob.token);
  t.teardown(() => (a.ws.terminate(), b.ws.terminate()));
  const requestId = (await a.ask('videochat:requestDirectVideochat', { targetUser: bob.id })).data.videochatRequestId;
  await b.next('videochat:videochatRequested');
  const bobTicket = (await b.ask('videochat:acceptVideochatRequest', { videochatRequestId: requestId })).data;
  const annTicket = (await a.next('videochat:directVideochatRequestAccepted')).data;

  const annPeer = await NodePeer.connect({ signalingUrl: annTicket.videochatUrl, token: annTicket.token, produce: { audio: true } });
  t.teardown(() => annPeer.close());
  const bobPeer = await NodePeer.connect({ signalingUrl: bobTicket.videochatUrl, token: bobTicket.token, produce: { audio: true } });
  t.teardown(() => bobPeer.close());
  const bobPid = bobPeer.participantId;
  await annPeer.waitForRtp({ from: bobPid, kind: 'audio', timeoutMs: 20_000 });
  await bobPeer.waitForRtp({ from: annPeer.participantId, kind: 'audio', timeoutMs: 20_000 });
  const bobMic = bobPeer.producers.get('microphone')!;

  const demoted = await annPeer.request('setPermissions', { participantId: bobPid, permissions: { isListener: true } });
  t.match(demoted.permissions, { isListener: true, canPublish: false });
  t.match(await bobPeer.waitFor('permissions_changed'), { permissions: { isListener: true, canPublish: false } });
  t.same(await annPeer.waitFor('producer_closed', (p) => p.participantId === bobPid), { participantId: bobPid, producerId: bobMic.id }, 'the owner hears producer_closed');
  const before = (await bobPeer.inboundStats()).find((s) => s.participantId === annPeer.participantId)!;
  const after = await bobPeer.waitForRtp({ from: annPeer.participantId, kind: 'audio', minPackets: before.packetsReceived + 50 });
  t.ok(after.packetsReceived > before.packetsReceived, 'a listener keeps listening');
  bobMic.close();
  await t.rejects(bobPeer.sendTransport!.produce({ track: bobMic.track!.clone(), stopTracks: true, appData: { source: 'microphone' } }), { message: /may not publish/ }, 'a listener cannot produce: the SFU says forbidden');

  await annPeer.request('setPermissions', { participantId: bobPid, permissions: { isPromoted: true } });
  t.match(await bobPeer.waitFor('permissions_changed', (p) => p.permissions.canPublish === true), { permissions: { isPromoted: true, isListener: false } });
  const again = await bobPeer.sendTransport!.produce({ track: bobMic.track!.clone(), stopTracks: true, appData: { source: 'microphone' } });
  const announced = await annPeer.waitFor('new_producer', (p) => p.producerId === again.id);
  t.equal(announced.participantId, bobPid);
  const flowing = await annPeer.waitForRtp({ from: bobPid, kind: 'audio', timeoutMs: 20_000 });
  t.equal(flowing.producerId, again.id, "the promoted peer's new audio reaches the owner");
});
