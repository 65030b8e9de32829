/**
 * Roles enforced by the SFU (real uWS, real media workers): listeners and unpromoted participants
 * cannot produce, one screen presenter at a time, owners and panelists change roles, mute and
 * remove over signaling; a promotion lets a peer produce, a demotion closes its producers
 * (everyone hears producer_closed); owners (both sides of a paid call) cannot be acted on.
 */
import t from 'tap';
import { roles } from '../../src/protocol/videochat.ts';
import { audio, startSignaling, video } from '../helpers/signaling.ts';

const as = (kind: Parameters<typeof roles>[0]) => {
  const r = roles(kind);
  const canPublish = !r.isListener && (r.isOwner || r.isPanelist || r.isPromoted);
  return { permissions: { ...r, canPublish, canSubscribe: true, canEndCall: r.isOwner } };
};

t.test('produce is refused to listeners and unpromoted participants; one screen presenter at a time', async (t) => {
  const s = await startSignaling(t);
  const listener = await s.join('c1', 'listener', as('listener'));
  const plain = await s.join('c1', 'plain', as('participant'));
  for (const peer of [listener, plain]) {
    t.equal(peer.welcome.permissions.canPublish, false);
    t.equal((await peer.client.ask('createTransport', { direction: 'send' })).payload.code, 'forbidden');
    await peer.client.ok('createTransport', { direction: 'recv' });
  }
  const owner = await s.join('c1', 'owner', as('owner'));
  const promoted = await s.join('c1', 'promoted', as('promoted'));
  const ot = await owner.client.ok('createTransport', { direction: 'send' });
  const pt = await promoted.client.ok('createTransport', { direction: 'send' });
  await promoted.client.ok('produce', { transportId: pt.id, kind: 'video', rtpParameters: video(10), source: 'screen' });
  const second = await owner.client.ask('produce', { transportId: ot.id, kind: 'video', rtpParameters: video(20), source: 'screen' });
  t.equal(second.type, 'error');
  t.equal(second.payload.code, 'invalid_state', 'a second screen presenter is refused');
});

t.test('a promotion lets a peer produce; a demotion closes its producers and everyone hears producer_closed', async (t) => {
  const s = await startSignaling(t);
  const owner = await s.join('c2', 'owner', as('owner'));
  const panelist = await s.join('c2', 'panelist', as('panelist'));
  const plain = await s.join('c2', 'plain', as('participant'));

  const promoted = await panelist.client.ok('setPermissions', { participantId: 'plain', permissions: { isPromoted: true } });
  t.match(promoted.permissions, { isPromoted: true, canPublish: true });
  t.match((await plain.client.next('permissions_changed')).payload.permissions, { isPromoted: true, isParticipant: true, canPublish: true });
  const st = await plain.client.ok('createTransport', { direction: 'send' });
  const mic = await plain.client.ok('produce', { transportId: st.id, kind: 'audio', rtpParameters: audio(30), source: 'microphone' });
  const cam = await plain.client.ok('produce', { transportId: st.id, kind: 'video', rtpParameters: video(40), source: 'camera' });
  await owner.client.next((f) => f.type === 'new_producer' && f.payload.producerId === cam.id);

  await owner.client.ok('setPermissions', { participantId: 'plain', permissions: { isListener: true } });
  t.match((await plain.client.next('permissions_changed')).payload.permissions, { isListener: true, isPromoted: false, canPublish: false });
  for (const peer of [owner, panelist]) {
    const closed = new Set<string>();
    for (let i = 0; i < 2; i++) closed.add((await peer.client.next((f) => f.type === 'producer_closed' && f.payload.participantId === 'plain')).payload.producerId);
    t.same([...closed].sort(), [mic.id, cam.id].sort(), 'both producers of the demoted peer closed');
  }
  const again = await plain.client.ask('produce', { transportId: st.id, kind: 'audio', rtpParameters: audio(50), source: 'microphone' });
  t.equal(again.payload.code, 'forbidden', 'a demoted peer cannot produce on its old send transport');
});

t.test('who may moderate whom', async (t) => {
  const s = await startSignaling(t);
  const owner = await s.join('c3', 'owner', as('owner'));
  const otherOwner = await s.join('c3', 'owner2', as('owner'));
  const panelist = await s.join('c3', 'panelist', as('panelist'));
  const member = await s.join('c3', 'member', as('promoted'));

  t.equal((await member.client.ask('setPermissions', { participantId: 'panelist', permissions: { isListener: true } })).payload.code, 'forbidden', 'a promoted participant does not moderate');
  t.equal((await member.client.ask('muteParticipant', { participantId: 'owner', kind: 'audio' })).payload.code, 'forbidden');
  t.equal((await panelist.client.ask('setPermissions', { participantId: 'member', permissions: { isPanelist: true } })).payload.code, 'forbidden', 'only owners make panelists');
  t.equal((await owner.client.ask('setPermissions', { participantId: 'owner2', permissions: { isListener: true } })).payload.code, 'forbidden', 'an owner cannot be demoted');
  t.equal((await owner.client.ask('removeParticipant', { participantId: 'owner2' })).payload.code, 'forbidden', 'nor removed: the two owners of a paid call cannot remove each other');
  t.equal((await otherOwner.client.ask('removeParticipant', { participantId: 'owner' })).payload.code, 'forbidden');
  t.equal((await owner.client.ask('setPermissions', { participantId: 'nobody', permissions: { isPromoted: true } })).payload.code, 'not_found');
  t.equal((await owner.client.ask('setPermissions', { participantId: 'member', permissions: {} })).payload.code, 'validation_failed', 'a change names a role');

  t.match((await owner.client.ok('setPermissions', { participantId: 'member', permissions: { isPanelist: true } })).permissions, { isPanelist: true, isModerator: true });
  t.match((await member.client.next('permissions_changed')).payload.permissions, { isPanelist: true, isModerator: true });
});

t.test('mute pauses the peer\'s tracks of that kind; remove closes its socket with 4013', async (t) => {
  const s = await startSignaling(t);
  const owner = await s.join('c4', 'owner', as('owner'));
  const member = await s.join('c4', 'member', as('promoted'));
  const st = await member.client.ok('createTransport', { direction: 'send' });
  const mic = await member.client.ok('produce', { transportId: st.id, kind: 'audio', rtpParameters: audio(60), source: 'microphone' });
  await owner.client.ok('muteParticipant', { participantId: 'member', kind: 'audio' });
  t.same((await owner.client.next('producer_paused')).payload, { participantId: 'member', producerId: mic.id });
  t.same((await member.client.next('producer_paused')).payload, { participantId: 'member', producerId: mic.id }, 'the muted peer hears it too');

  await owner.client.ok('removeParticipant', { participantId: 'member' });
  t.equal((await member.client.closed).code, 4013);
  t.same((await owner.client.next('peer_left')).payload, { participantId: 'member' });
});
