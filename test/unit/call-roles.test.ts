// Roles per call kind (src/calls/roles.ts) and what the SFU derives from them: paid calls make both
// sides owners, direct calls make the initiator the owner and everyone else a promoted
// participant, a stored change wins; listeners and unpromoted participants cannot publish.
import t from 'tap';
import type { DbHandle } from '../../src/db/database.ts';
import { permissionsFrom, rolesOf } from '../../src/calls/roles.ts';
import { applyRoleChange, canProduce, roles } from '../../src/protocol/videochat.ts';

// Paid and direct calls never read the database: a handle that throws proves it.
const noDb = new Proxy({}, { get: () => { throw new Error('no database here'); } }) as DbHandle;

t.test('paid: host and guest are both owners', async (t) => {
  for (const user of ['host', 'guest']) t.same(await rolesOf(noDb, { kind: 'paid', room_id: null, initiator_id: 'guest' }, { user_id: user, permissions: null }), roles('owner'));
});

t.test('direct: the initiator owns it, the others are promoted participants; a stored change wins', async (t) => {
  const call = { kind: 'direct' as const, room_id: null, initiator_id: 'ann' };
  t.match(await rolesOf(noDb, call, { user_id: 'ann', permissions: null }), { isOwner: true, isModerator: true });
  t.match(await rolesOf(noDb, call, { user_id: 'bob', permissions: null }), { isOwner: false, isModerator: false, isParticipant: true, isPromoted: true });
  t.match(await rolesOf(noDb, call, { user_id: 'bob', permissions: { isListener: true, isParticipant: false, isPromoted: false } }), { isListener: true, isPromoted: false });
});

t.test('what may publish', async (t) => {
  t.equal(permissionsFrom(roles('listener'), false).canPublish, false);
  t.equal(permissionsFrom(roles('participant'), false).canPublish, false);
  t.equal(permissionsFrom(roles('promoted'), false).canPublish, true);
  t.equal(permissionsFrom(roles('panelist'), false).canPublish, true);
  const demoted = applyRoleChange(roles('panelist'), { isListener: true });
  t.match(demoted, { isListener: true, isPanelist: false, isModerator: false, isPromoted: false });
  t.equal(canProduce(demoted), false);
  t.match(applyRoleChange(roles('listener'), { isPromoted: true }), { isListener: false, isParticipant: true, isPromoted: true });
  t.match(applyRoleChange(roles('participant'), { isPresenter: true }), { isPresenter: true, isListener: false });
});
