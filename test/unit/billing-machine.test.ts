// The billing transition table, one test per (state × event) pair. The pairs are generated from
// BILLING_STATES × BILLING_EVENTS (plus "no call yet"), so a new state or event cannot go untested:
// a pair listed in ALLOWED must reach the expected state with exactly the expected effects, any other
// pair must be refused with 409 invalid_state and leave the snapshot untouched.
import t from 'tap';
import { ManualClock } from '../../src/shared/clock.ts';
import { AppError } from '../../src/shared/errors.ts';
import {
  BILLING_EVENTS,
  BILLING_STATES,
  TRANSITIONS,
  idempotencyKey,
  transition,
  type BillingEffect,
  type BillingEvent,
  type BillingEventType,
  type BillingSnapshot,
  type BillingState,
  type IdempotencyOperation,
} from '../../src/billing/index.ts';

const CALL = '01JTESTCALL000000000000000A';
const T0 = Date.UTC(2026, 2, 15, 14, 0, 0);
const W = 10; // seconds: tests run windows in seconds (hold lead is then W/2 = 5 s)
const S = T0 + 2_000; // started_at of every active fixture
const key = (window: number, op: IdempotencyOperation) => idempotencyKey(CALL, window, op);

type Step = [offsetMs: number, event: BillingEvent];
type From = BillingState | 'none';

const ev = {
  initiate: {
    type: 'initiate_accepted', callId: CALL, currency: 'usd', rateMinor: 200, windowSeconds: W,
    paymentMethodId: 'pm_card_visa', linkExpiresAtMs: T0 + 60_000,
  },
  held: (window: number, holdId: string): BillingEvent => ({ type: 'hold_placed', window, holdId }),
  due: (window: number): BillingEvent => ({ type: 'next_hold_due', window }),
  refused: (window: number): BillingEvent => ({ type: 'next_hold_refused', window, declineCode: 'insufficient_funds' }),
  boundary: (window: number): BillingEvent => ({ type: 'window_boundary', window }),
  ended: (by: 'host' | 'guest'): BillingEvent => ({ type: 'participant_ended', by }),
  gap: (stoppedAtMs: number): BillingEvent => ({ type: 'media_gap_opened', stoppedAtMs }),
  canceled: (holdId: string): BillingEvent => ({ type: 'hold_canceled', holdId, reason: 'stripe: canceled (automatic)' }),
} as const satisfies Record<string, BillingEvent | ((...args: never[]) => BillingEvent)>;

const PENDING: Step[] = [[0, ev.initiate]];
const WAITING: Step[] = [...PENDING, [1_000, ev.held(1, 'pi_1')]];
const ACTIVE: Step[] = [...WAITING, [2_000, { type: 'media_connected', dtls: { host: 'connected', guest: 'connected' } }]];
const ENDING: Step[] = [...ACTIVE, [5_000, ev.ended('guest')]]; // 3 s of call: 1 minute, 2.00
const FIXTURES: Record<From, Step[]> = {
  none: [],
  pending: PENDING,
  waiting: WAITING,
  active: ACTIVE,
  ending: ENDING,
  completed: [...ENDING, [6_000, { type: 'final_capture_done', capturedMinor: 200 }]],
  cancelled: [...WAITING, [3_000, { type: 'guest_ended' }]],
  failed: [...ENDING, [6_000, { type: 'capture_impossible', window: 1, reason: 'authorization_expired' }]],
};

/** A plausible event of each type: refusals in the matrix come from the state, not from a malformed payload. */
const PROBE: Record<BillingEventType, BillingEvent> = {
  initiate_accepted: ev.initiate,
  hold_placed: ev.held(1, 'pi_1'),
  hold_refused: { type: 'hold_refused', window: 1, declineCode: 'generic_decline' },
  media_connected: { type: 'media_connected', dtls: { host: 'connected', guest: 'connected' } },
  media_gap_opened: ev.gap(S + 3_000),
  media_restored: { type: 'media_restored' },
  guest_ended: { type: 'guest_ended' },
  host_rejected: { type: 'host_rejected' },
  join_timeout: { type: 'join_timeout' },
  link_expired: { type: 'link_expired' },
  next_hold_due: ev.due(2),
  window_boundary: ev.boundary(1),
  next_hold_refused: ev.refused(2),
  participant_ended: ev.ended('guest'),
  media_lost: { type: 'media_lost', stoppedAtMs: S + 3_000 },
  final_capture_done: { type: 'final_capture_done', capturedMinor: 200 },
  capture_impossible: { type: 'capture_impossible', window: 1, reason: 'authorization_expired' },
  hold_canceled: { type: 'hold_canceled', holdId: 'pi_1', reason: 'stripe: canceled (automatic)' },
};

const fx = {
  hold: (window: number): BillingEffect => ({
    type: 'place_hold', window, amountMinor: 200, currency: 'usd', paymentMethodId: 'pm_card_visa',
    customerRef: null, destination: null, idempotencyKey: key(window, 'hold'),
  }),
  capture: (window: number, amountMinor: number): BillingEffect => ({ type: 'capture', window, holdId: `pi_${window}`, amountMinor, idempotencyKey: key(window, 'capture') }),
  release: (window: number): BillingEffect => ({ type: 'release_hold', window, holdId: `pi_${window}`, idempotencyKey: key(window, 'release') }),
  schedule: (at: number, job: BillingEvent): BillingEffect => ({ type: 'schedule', at, job }),
  status: (data: Record<string, unknown>): BillingEffect => ({ type: 'notify', to: 'both', message: 'call_status', data }),
  endMedia: (reason: string): BillingEffect => ({ type: 'end_media', reason } as BillingEffect),
  ending: (reason: string, endedAt: number, seconds: number): BillingEffect =>
    fx.status({ status: 'ending', reason, ended_at: endedAt, duration_seconds: seconds }),
  cancelled: (reason: string): BillingEffect[] => [fx.release(1), fx.endMedia(reason), fx.status({ status: 'cancelled', reason })],
  operator: (amountMinor: number): BillingEffect => ({
    type: 'notify', to: 'operator', message: 'billing.capture_failed',
    data: { call_id: CALL, window: 1, amount_minor: amountMinor, currency: 'usd', reason: 'authorization_expired' },
  }),
};

interface Case {
  name: string;
  /** Replaces the state's fixture when the pair needs a particular history (e.g. a hold in flight). */
  fixture?: Step[];
  at: number;
  event?: BillingEvent;
  to: BillingState;
  effects: BillingEffect[];
  /** Fields the next snapshot must match (partially). */
  expect?: Record<string, unknown>;
}

const NEXT_HOLD_IN_FLIGHT: Step[] = [...ACTIVE, [7_000, ev.due(2)]];
const ENDED_WITH_HOLD_IN_FLIGHT: Step[] = [...NEXT_HOLD_IN_FLIGHT, [8_000, ev.ended('guest')]];
const NEXT_HOLD_HELD: Step[] = [...NEXT_HOLD_IN_FLIGHT, [8_000, ev.held(2, 'pi_2')]];
/** Media gone 3 s after the start, noticed 2 s later (the grace period of 30 s ends at S + 33 s). */
const IN_GAP: Step[] = [...ACTIVE, [5_000, ev.gap(S + 3_000)]];

const ALLOWED: Partial<Record<From, Partial<Record<BillingEventType, Case[]>>>> = {
  none: {
    initiate_accepted: [{
      name: 'call row, link use reserved, window-1 hold requested', at: 0, to: 'pending',
      effects: [{ type: 'reserve_link_use' }, fx.hold(1)],
      expect: { holds: [{ window: 1, amountMinor: 200, status: 'placing', holdId: null, capturedMinor: 0 }], holdLeadSeconds: 5, createdAtMs: T0 },
    }],
  },
  pending: {
    hold_placed: [{
      name: 'signaling token issued, host notified, timeouts scheduled', at: 1_000, to: 'waiting',
      effects: [
        { type: 'notify', to: 'host', message: 'call.incoming', data: { call_id: CALL } },
        fx.schedule(T0 + 121_000, { type: 'join_timeout' }),
        fx.schedule(T0 + 60_000, { type: 'link_expired' }),
      ],
    }],
    hold_refused: [{
      name: '402 payment_failed, link use released', at: 1_000, to: 'cancelled',
      effects: [{ type: 'release_link_use' }],
      expect: { endReason: 'payment_failed', declineCode: 'generic_decline', holds: [{ status: 'refused' }], totalChargedMinor: 0 },
    }],
  },
  waiting: {
    media_connected: [{
      name: 'started_at set, window 1 starts', at: 2_000, to: 'active',
      effects: [fx.status({ status: 'active', started_at: S }), fx.schedule(S + 10_000, ev.boundary(1)), fx.schedule(S + 5_000, ev.due(2))],
      expect: { startedAtMs: S, currentWindow: 1 },
    }],
    guest_ended: [{ name: 'hold released, nothing charged', at: 3_000, to: 'cancelled', effects: fx.cancelled('user_ended') }],
    host_rejected: [{ name: 'hold released, nothing charged', at: 3_000, to: 'cancelled', effects: fx.cancelled('host_rejected') }],
    join_timeout: [{ name: 'after 120 s: hold released', at: 121_000, to: 'cancelled', effects: fx.cancelled('join_timeout') }],
    link_expired: [{ name: 'at expiry: hold released', at: 60_000, to: 'cancelled', effects: fx.cancelled('link_expired') }],
    hold_canceled: [{
      name: 'the provider dropped the window-1 hold: cancelled with billing_error, nothing charged, no release for it', at: 3_000, to: 'cancelled',
      effects: [fx.endMedia('billing_error'), fx.status({ status: 'cancelled', reason: 'billing_error' })],
      expect: { endReason: 'billing_error', endedAtMs: T0 + 3_000, totalChargedMinor: 0, billedMinutes: 0, capturedMinor: 0, holds: [{ window: 1, status: 'released', holdId: 'pi_1', capturedMinor: 0 }] },
    }],
  },
  active: {
    next_hold_due: [{
      name: 'at window start + W − lead: hold for window 2', at: 7_000, to: 'active', effects: [fx.hold(2)],
      expect: { holds: [{ status: 'held' }, { window: 2, status: 'placing' }] },
    }],
    hold_placed: [{
      name: 'hold 2 secured, hold 3 scheduled', fixture: NEXT_HOLD_IN_FLIGHT, at: 8_000, event: ev.held(2, 'pi_2'), to: 'active',
      effects: [fx.schedule(S + 15_000, ev.due(3))],
      expect: { holds: [{ status: 'held' }, { status: 'held', holdId: 'pi_2' }] },
    }],
    next_hold_refused: [
      {
        name: 'both sides warned, the call ends at the window end', fixture: NEXT_HOLD_IN_FLIGHT, at: 8_000, to: 'active',
        effects: [fx.status({ status: 'active', warning: 'billing_error', decline_code: 'insufficient_funds', ends_at: S + 10_000 })],
        expect: { cutoffWindow: 1, holds: [{ status: 'held' }, { status: 'refused' }] },
      },
      {
        name: 'refused after its window began: ends now, billed through the held window',
        fixture: [...NEXT_HOLD_IN_FLIGHT, [12_000, ev.boundary(1)]], at: 14_000, to: 'ending',
        effects: [fx.endMedia('billing_error'), fx.ending('billing_error', S + 12_000, 10)],
        expect: { endReason: 'billing_error', meterStoppedAtMs: S + 10_000, billedMinutes: 1, totalChargedMinor: 200 },
      },
    ],
    window_boundary: [
      {
        name: 'window 1 captured in full', at: 12_000, to: 'active', effects: [fx.capture(1, 200), fx.schedule(S + 20_000, ev.boundary(2))],
        expect: { currentWindow: 2, capturedMinor: 200, holds: [{ status: 'captured', capturedMinor: 200 }] },
      },
      {
        name: 'after a refused hold: the call ends at the boundary with billing_error',
        fixture: [...NEXT_HOLD_IN_FLIGHT, [8_000, ev.refused(2)]], at: 12_000, to: 'ending',
        effects: [fx.endMedia('billing_error'), fx.ending('billing_error', S + 10_000, 10), fx.capture(1, 200)],
        expect: { endReason: 'billing_error', meterStoppedAtMs: S + 10_000, billedMinutes: 1, totalChargedMinor: 200 },
      },
    ],
    participant_ended: [
      {
        name: 'meter stops, last window captured for its started minutes', at: 5_000, to: 'ending',
        effects: [fx.endMedia('user_ended'), fx.ending('user_ended', S + 3_000, 3), fx.capture(1, 200)],
        expect: {
          billedMinutes: 1, totalChargedMinor: 200, settlement: { activeSeconds: 3, captures: [{ window: 1, amountMinor: 200 }], releases: [], finalCaptureMinor: 200 },
          endRequest: { by: 'guest', receivedAtMs: S + 3_000, requestKey: null },
        },
      },
      {
        name: 'an end during an outage: the meter stopped at the gap\'s start, not at the end',
        fixture: IN_GAP, at: 9_000, to: 'ending',
        effects: [fx.endMedia('user_ended'), fx.ending('user_ended', S + 7_000, 3), fx.capture(1, 200)],
        expect: { meterStoppedAtMs: S + 3_000, endedAtMs: S + 7_000, settlement: { activeSeconds: 3 } },
      },
      {
        name: 'an end retried after a crash: settled as of its first receipt, 26 s before the retry',
        at: 30_000, event: { type: 'participant_ended', by: 'guest', receivedAtMs: S + 2_000, requestKey: 'end-1' }, to: 'ending',
        effects: [fx.endMedia('user_ended'), fx.ending('user_ended', S + 2_000, 2), fx.capture(1, 200)],
        expect: { meterStoppedAtMs: S + 2_000, endedAtMs: S + 2_000, endRequest: { by: 'guest', receivedAtMs: S + 2_000, requestKey: 'end-1' }, settlement: { activeSeconds: 2 } },
      },
      {
        name: 'host ends: the unused next hold is released',
        fixture: [...NEXT_HOLD_IN_FLIGHT, [8_000, ev.held(2, 'pi_2')]], at: 9_000, event: ev.ended('host'), to: 'ending',
        effects: [fx.endMedia('host_ended'), fx.ending('host_ended', S + 7_000, 7), fx.capture(1, 200), fx.release(2)],
      },
    ],
    media_gap_opened: [{
      name: 'a gap opens where media stopped; its decision is due when the grace period ends', at: 5_000, to: 'active',
      effects: [fx.schedule(S + 33_000, { type: 'media_lost', stoppedAtMs: S + 3_000 })],
      expect: { mediaGapSinceMs: S + 3_000, currentWindow: 1 },
    }],
    media_restored: [
      {
        name: 'both back within the grace period: the gap is call time, nothing to reschedule', fixture: IN_GAP, at: 6_000, to: 'active', effects: [],
        expect: { mediaGapSinceMs: null },
      },
      {
        name: 'both back after the window-1 boundary fell due in the gap: the boundary runs now', fixture: IN_GAP, at: 20_000, to: 'active',
        effects: [fx.schedule(S + 10_000, ev.boundary(1))],
        expect: { mediaGapSinceMs: null, currentWindow: 1 },
      },
    ],
    media_lost: [{
      name: 'after the grace period: billed up to when media stopped', fixture: IN_GAP, at: 35_000, to: 'ending',
      effects: [fx.endMedia('media_lost'), fx.ending('media_lost', S + 33_000, 3), fx.capture(1, 200)],
      expect: { meterStoppedAtMs: S + 3_000, endedAtMs: S + 33_000, endReason: 'media_lost' },
    }],
    hold_canceled: [
      {
        name: 'the current window\'s hold is gone: ends now, billed only what boundaries captured (nothing yet)', at: 5_000, to: 'ending',
        effects: [fx.endMedia('billing_error'), fx.ending('billing_error', S + 3_000, 0)],
        expect: {
          endReason: 'billing_error', meterStoppedAtMs: S, billedMinutes: 0, totalChargedMinor: 0, capturedMinor: 0,
          holds: [{ window: 1, status: 'released', holdId: 'pi_1', capturedMinor: 0 }],
          settlement: { activeSeconds: 0, captures: [], releases: [], finalCaptureMinor: 0 },
        },
      },
      {
        name: 'the next window\'s hold is gone while in window 1: ends now, window 1 captured for its started minutes',
        fixture: NEXT_HOLD_HELD, at: 9_000, event: ev.canceled('pi_2'), to: 'ending',
        effects: [fx.endMedia('billing_error'), fx.ending('billing_error', S + 7_000, 7), fx.capture(1, 200)],
        expect: {
          meterStoppedAtMs: S + 7_000, billedMinutes: 1, totalChargedMinor: 200, capturedMinor: 200,
          holds: [{ status: 'captured', capturedMinor: 200 }, { window: 2, status: 'released', holdId: 'pi_2', capturedMinor: 0 }],
          settlement: { activeSeconds: 7, captures: [{ window: 1, amountMinor: 200 }], releases: [], finalCaptureMinor: 200 },
        },
      },
      {
        name: 'the window-2 hold is gone while in window 2: billed only window 1, captured at its boundary',
        fixture: [...NEXT_HOLD_HELD, [12_000, ev.boundary(1)]], at: 14_000, event: ev.canceled('pi_2'), to: 'ending',
        effects: [fx.endMedia('billing_error'), fx.ending('billing_error', S + 12_000, 10)],
        expect: {
          meterStoppedAtMs: S + 10_000, billedMinutes: 1, totalChargedMinor: 200, capturedMinor: 200,
          holds: [{ status: 'captured', capturedMinor: 200 }, { status: 'released', holdId: 'pi_2', capturedMinor: 0 }],
          settlement: { activeSeconds: 10, captures: [], releases: [], finalCaptureMinor: 0 },
        },
      },
      {
        name: 'the window-2 hold is gone while window 3 is held: window 3 released, the cancelled hold untouched',
        fixture: [...NEXT_HOLD_HELD, [12_000, ev.boundary(1)], [17_000, ev.due(3)], [18_000, ev.held(3, 'pi_3')]], at: 19_000, event: ev.canceled('pi_2'), to: 'ending',
        effects: [fx.endMedia('billing_error'), fx.ending('billing_error', S + 17_000, 10), fx.release(3)],
        expect: {
          meterStoppedAtMs: S + 10_000, billedMinutes: 1, totalChargedMinor: 200,
          holds: [{ status: 'captured' }, { status: 'released', holdId: 'pi_2' }, { status: 'released', holdId: 'pi_3' }],
          settlement: { activeSeconds: 10, captures: [], releases: [3], finalCaptureMinor: 0 },
        },
      },
    ],
    capture_impossible: [{
      name: 'a boundary capture failed for good: operator alerted, call over',
      fixture: [...ACTIVE, [12_000, ev.boundary(1)]], at: 13_000, to: 'failed',
      effects: [fx.endMedia('capture_failed'), fx.operator(200), fx.status({ status: 'failed', reason: 'billing_error' })],
      expect: { holds: [{ status: 'capture_failed' }], totalChargedMinor: 0, endReason: 'capture_failed' },
    }],
  },
  ending: {
    hold_placed: [{
      name: 'a hold confirmed after the end is released at once', fixture: ENDED_WITH_HOLD_IN_FLIGHT, at: 9_000, event: ev.held(2, 'pi_2'), to: 'ending',
      effects: [fx.release(2)],
      expect: { holds: [{ status: 'captured' }, { status: 'released', holdId: 'pi_2' }] },
    }],
    next_hold_refused: [{
      name: 'a hold refused after the end needs nothing', fixture: ENDED_WITH_HOLD_IN_FLIGHT, at: 9_000, to: 'ending', effects: [],
      expect: { holds: [{ status: 'captured' }, { status: 'refused' }] },
    }],
    final_capture_done: [{
      // The summary is announced by the transition itself (call.ended on both users' sockets), from these figures.
      name: 'completed with the summary figures', at: 6_000, to: 'completed',
      effects: [],
      expect: { totalChargedMinor: 200, completedAtMs: T0 + 6_000, billedMinutes: 1, currency: 'usd', endedAtMs: S + 3_000, settlement: { activeSeconds: 3 } },
    }],
    capture_impossible: [{
      name: 'operator alerted (the log; webhooks later)', at: 6_000, to: 'failed',
      effects: [fx.operator(200), fx.status({ status: 'failed', reason: 'billing_error' })],
      expect: { holds: [{ status: 'capture_failed' }], totalChargedMinor: 0, endReason: 'user_ended' },
    }],
  },
};

/** Plays `steps` through transition() with a ManualClock; every step must be accepted. */
function drive(steps: Step[], clock: ManualClock): BillingSnapshot | null {
  let snapshot: BillingSnapshot | null = null;
  for (const [offset, event] of steps) {
    clock.set(T0 + offset);
    const result = transition(snapshot, event, clock.nowMs());
    if (!result.ok) throw new Error(`fixture step ${event.type} refused: ${result.error.message}`);
    snapshot = result.next;
  }
  return snapshot;
}

const FROMS: From[] = ['none', ...BILLING_STATES];

t.test('the matrix lists exactly the rows of the transition table', async (t) => {
  const rows = new Set(TRANSITIONS.map((row) => `${row.from ?? 'none'} × ${row.event}`));
  const allowed = new Set(FROMS.flatMap((from) => Object.keys(ALLOWED[from] ?? {}).map((event) => `${from} × ${event}`)));
  t.same([...allowed].sort(), [...rows].sort());
  t.equal(FROMS.length * BILLING_EVENTS.length, 144, '8 × 18 pairs, each tested below');
});

for (const from of FROMS) {
  for (const event of BILLING_EVENTS) {
    const cases = ALLOWED[from]?.[event];
    t.test(`${from} × ${event}: ${cases ? 'allowed' : 'refused'}`, async (t) => {
      if (!cases) {
        const clock = new ManualClock(T0);
        const before = drive(FIXTURES[from], clock);
        const frozen = structuredClone(before);
        clock.advance(1_000);
        const result = transition(before, PROBE[event], clock.nowMs());
        t.equal(result.ok, false);
        if (result.ok) return;
        t.ok(result.error instanceof AppError);
        t.equal(result.error.code, 'invalid_state');
        t.equal(result.error.status, 409);
        t.match(result.error.message, /no such transition/);
        t.same(result.error.details, { state: from === 'none' ? null : from, event });
        t.same(before, frozen, 'the snapshot is untouched');
        return;
      }
      for (const c of cases) {
        const clock = new ManualClock(T0);
        const before = drive(c.fixture ?? FIXTURES[from], clock);
        const frozen = structuredClone(before);
        clock.set(T0 + c.at);
        const result = transition(before, c.event ?? PROBE[event], clock.nowMs());
        if (!result.ok) {
          t.fail(`${c.name}: refused: ${result.error.message}`);
          continue;
        }
        t.equal(result.next.state, c.to, `${c.name}: → ${c.to}`);
        t.same(result.effects, c.effects, `${c.name}: effects`);
        t.same(before, frozen, `${c.name}: the previous snapshot is untouched`);
        t.match(result.log, { at: T0 + c.at, type: event, fromStatus: from === 'none' ? null : from, toStatus: c.to }, `${c.name}: event log row`);
        if (c.expect) t.match(result.next, c.expect, `${c.name}: snapshot fields`);
      }
    });
  }
}
