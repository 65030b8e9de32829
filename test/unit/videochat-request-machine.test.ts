// The videochat request transition table, one test per (state × event) pair: pairs listed in
// ALLOWED reach their state with exactly their effects; every other pair is refused with
// invalid_state (409) and changes nothing. Guards are tested with the time passed in.
import t from 'tap';
import { REQUEST_EVENTS, REQUEST_STATES, requestTransition, type RequestEvent, type RequestEventType, type RequestSnapshot } from '../../src/calls/direct/request-machine.ts';

const T0 = Date.UTC(2026, 0, 1);
const INITIATOR = 'A';
const TARGET = 'B';
const base: RequestSnapshot = { id: 'R', kind: 'direct', initiatorId: INITIATOR, targetId: TARGET, callId: null, state: 'requested', expiresAtMs: T0 + 30_000 };

const events: Record<RequestEventType, RequestEvent> = {
  accept: { type: 'accept', by: TARGET },
  decline: { type: 'decline', by: TARGET },
  expire: { type: 'expire' },
  merge: { type: 'merge', by: TARGET, callId: 'X' },
};
// expire is allowed once due; the others before.
const at = (e: RequestEventType) => (e === 'expire' ? T0 + 30_000 : T0 + 1_000);

const ALLOWED: Record<string, { to: string; effects: unknown[] }> = {
  'requested × accept': { to: 'accepted', effects: [{ type: 'create_direct_call' }, { type: 'announce_accepted' }] },
  'requested × decline': { to: 'declined', effects: [{ type: 'announce_declined', reason: 'declined' }] },
  'requested × expire': { to: 'expired', effects: [{ type: 'announce_declined', reason: 'expired' }] },
  'requested × merge': { to: 'merged', effects: [{ type: 'add_participant', callId: 'X', userId: INITIATOR }, { type: 'announce_accepted' }] },
};

for (const state of REQUEST_STATES) {
  for (const type of REQUEST_EVENTS) {
    const pair = `${state} × ${type}`;
    t.test(pair, async (t) => {
      const s = { ...base, state };
      const result = requestTransition(s, events[type], at(type));
      const expected = ALLOWED[pair];
      if (expected) {
        t.ok(result.ok, 'allowed');
        if (!result.ok) return;
        t.equal(result.next.state, expected.to);
        t.same(result.effects, expected.effects);
      } else {
        t.notOk(result.ok, 'refused');
        if (result.ok) return;
        t.equal(result.refusal.code, 'invalid_state');
      }
    });
  }
}

t.test('guards', async (t) => {
  const refused = (e: RequestEvent, now: number, s: RequestSnapshot = base) => {
    const r = requestTransition(s, e, now);
    return r.ok ? null : r.refusal.code;
  };
  t.equal(refused({ type: 'accept', by: INITIATOR }, T0), 'forbidden', 'the initiator cannot accept');
  t.equal(refused({ type: 'accept', by: 'C' }, T0), 'forbidden', 'nor can a third user');
  t.equal(refused({ type: 'accept', by: TARGET }, T0 + 30_000), 'invalid_state', 'not once it is due to expire');
  t.equal(refused({ type: 'decline', by: INITIATOR }, T0), null, 'the initiator may decline (cancel)');
  t.equal(refused({ type: 'decline', by: 'C' }, T0), 'forbidden');
  t.equal(refused({ type: 'expire' }, T0 + 29_999), 'invalid_state', 'expiry waits for its time');
  t.equal(refused({ type: 'merge', by: INITIATOR, callId: 'X' }, T0), 'forbidden', 'only the target merges');
  t.equal(refused({ type: 'merge', by: TARGET, callId: 'X' }, T0, { ...base, kind: 'invite', callId: 'Y' }), 'invalid_state', 'an invite is not merged');
  const invite = requestTransition({ ...base, kind: 'invite', callId: 'Y' }, { type: 'accept', by: TARGET }, T0);
  t.same(invite.ok && invite.effects, [{ type: 'add_participant', callId: 'Y', userId: TARGET }, { type: 'announce_accepted' }], 'an accepted invite adds the target to its call');
});
