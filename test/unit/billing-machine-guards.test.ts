// The guards of the billing table (each refusal is a 409 invalid_state, the snapshot unchanged) and
// the paths the matrix cannot show in one step: free links, late hold results, media loss across a
// boundary, destination fees, determinism. ManualClock, 10-second windows (hold lead 5 s).
import t, { type Test } from 'tap';
import { ManualClock } from '../../src/shared/clock.ts';
import {
  billingStatus,
  endEventFor,
  transition,
  type BillingEffect,
  type BillingEvent,
  type BillingSnapshot,
  type InitiateAccepted,
} from '../../src/billing/index.ts';

const CALL = '01JTESTCALL000000000000000B';
const T0 = Date.UTC(2026, 2, 15, 14, 0, 0);
const S = T0 + 2_000;
const initiate: InitiateAccepted = { type: 'initiate_accepted', callId: CALL, currency: 'usd', rateMinor: 200, windowSeconds: 10, paymentMethodId: 'pm_card_visa' };
const connected: BillingEvent = { type: 'media_connected', dtls: { host: 'connected', guest: 'connected' } };

type Step = [offsetMs: number, event: BillingEvent];

/** A ManualClock-driven call: `ok` applies an event that must be accepted, `no` one that must be refused. */
function call(t: Test, steps: Step[] = [], first: InitiateAccepted = initiate) {
  const clock = new ManualClock(T0);
  let snapshot: BillingSnapshot | null = null;
  let effects: BillingEffect[] = [];
  const ok = (offset: number, event: BillingEvent): BillingEffect[] => {
    clock.set(T0 + offset);
    const result = transition(snapshot, event, clock.nowMs());
    if (!result.ok) throw new Error(`${event.type} refused: ${result.error.message}`);
    snapshot = result.next;
    effects = result.effects;
    return effects;
  };
  const no = (offset: number, event: BillingEvent, why: RegExp): void => {
    clock.set(T0 + offset);
    const before = structuredClone(snapshot);
    const result = transition(snapshot, event, clock.nowMs());
    t.equal(result.ok, false, `${event.type} at +${offset} ms is refused`);
    if (!result.ok) {
      t.equal(result.error.code, 'invalid_state');
      t.match(result.error.message, why);
    }
    t.same(snapshot, before, 'nothing changed');
  };
  ok(0, first);
  for (const [offset, event] of steps) ok(offset, event);
  return { ok, no, clock, get s(): BillingSnapshot { return snapshot!; }, get effects() { return effects; } };
}

const WAITING: Step[] = [[1_000, { type: 'hold_placed', window: 1, holdId: 'pi_1' }]];
const ACTIVE: Step[] = [...WAITING, [2_000, connected]];
const moneyOf = (effects: BillingEffect[]) => effects.filter((e) => ['place_hold', 'capture', 'release_hold'].includes(e.type));

t.test('the meter starts only with both transports DTLS-connected (as the SFU sees them)', async (t) => {
  const c = call(t, WAITING);
  c.no(2_000, { type: 'media_connected', dtls: { host: 'new', guest: 'connected' } }, /both transports/);
  c.no(2_000, { type: 'media_connected', dtls: { host: 'connected', guest: 'connecting' } }, /both transports/);
  c.no(2_000, { type: 'media_connected', dtls: { host: 'failed', guest: 'connected' } }, /both transports/);
  t.equal(c.s.state, 'waiting');
});

t.test('waiting: the join timeout and the link expiry only fire when due', async (t) => {
  const c = call(t, WAITING, { ...initiate, linkExpiresAtMs: T0 + 600_000 });
  t.notOk(c.effects.some((e) => e.type === 'schedule' && e.job.type === 'link_expired'), 'an expiry after the join timeout is not scheduled');
  c.no(120_999, { type: 'join_timeout' }, /still has time/);
  c.no(120_999, { type: 'link_expired' }, /not expired/);
  c.ok(121_000, { type: 'join_timeout' });
  t.equal(c.s.endReason, 'join_timeout');
  const noExpiry = call(t, WAITING);
  noExpiry.no(10_000_000, { type: 'link_expired' }, /not expired/);
});

t.test('window_boundary: not early, not twice, not without a hold', async (t) => {
  const c = call(t, ACTIVE);
  c.no(11_999, { type: 'window_boundary', window: 1 }, /not ended yet/);
  c.ok(12_000, { type: 'window_boundary', window: 1 });
  c.no(12_500, { type: 'window_boundary', window: 1 }, /not the current window/);
  c.no(22_000, { type: 'window_boundary', window: 2 }, /no hold to capture/);
});

t.test('next_hold_due: on time, in order, one at a time, never for free links or after a refusal', async (t) => {
  const c = call(t, ACTIVE);
  c.no(6_999, { type: 'next_hold_due', window: 2 }, /not due yet/);
  c.no(7_000, { type: 'next_hold_due', window: 3 }, /next hold is for window 2/);
  c.ok(7_000, { type: 'next_hold_due', window: 2 });
  c.no(17_000, { type: 'next_hold_due', window: 3 }, /still being placed/);
  c.no(7_500, { type: 'hold_placed', window: 2, holdId: '' }, /hold id is required/);
  c.ok(8_000, { type: 'next_hold_refused', window: 2, declineCode: 'insufficient_funds' });
  c.no(17_000, { type: 'next_hold_due', window: 3 }, /a hold was refused/);
  c.no(8_500, { type: 'hold_placed', window: 2, holdId: 'pi_2' }, /no hold is being placed/);
  const free = call(t, [[1_000, { type: 'hold_placed', window: 1, holdId: null }], [2_000, connected]], { ...initiate, rateMinor: 0 });
  free.no(7_000, { type: 'next_hold_due', window: 2 }, /free link/);
});

t.test('pending: only the window-1 hold result counts, once', async (t) => {
  const c = call(t);
  c.no(1_000, { type: 'hold_placed', window: 2, holdId: 'pi_2' }, /window-1/);
  c.no(1_000, { type: 'hold_refused', window: 2, declineCode: 'x' }, /window-1/);
  c.no(1_000, { type: 'hold_placed', window: 1, holdId: null }, /hold id is required/);
  c.ok(1_000, { type: 'hold_placed', window: 1, holdId: 'pi_1' });
  c.no(1_500, { type: 'hold_placed', window: 1, holdId: 'pi_1' }, /no such transition/);
});

t.test('media gaps: opened once, never before the start or in the future; media_lost only for the open gap, after its grace period', async (t) => {
  const c = call(t, ACTIVE);
  c.no(2_000 + 60_000, { type: 'media_lost', stoppedAtMs: S + 3_000 }, /no gap is open/);
  c.no(2_000 + 5_000, { type: 'media_restored' }, /no media gap is open/);
  c.no(2_000 + 5_000, { type: 'media_gap_opened', stoppedAtMs: S - 1 }, /before the call started/);
  c.no(2_000 + 5_000, { type: 'media_gap_opened', stoppedAtMs: S + 5_001 }, /in the future/);
  c.ok(2_000 + 5_000, { type: 'media_gap_opened', stoppedAtMs: S + 3_000 });
  c.no(2_000 + 6_000, { type: 'media_gap_opened', stoppedAtMs: S + 6_000 }, /already open/);
  c.no(2_000 + 32_999, { type: 'media_lost', stoppedAtMs: S + 3_000 }, /grace period/);
  c.no(2_000 + 60_000, { type: 'media_lost', stoppedAtMs: S + 4_000 }, /another gap/);
  c.no(2_000 + 33_000, { type: 'media_restored' }, /grace period ran out/);
  c.ok(2_000 + 33_000, { type: 'media_lost', stoppedAtMs: S + 3_000 });
  t.match(c.s, { state: 'ending', endReason: 'media_lost', meterStoppedAtMs: S + 3_000, settlement: { activeSeconds: 3 } });
});

t.test('a gap that closed: its media_lost job is refused, a later gap has its own', async (t) => {
  const c = call(t, [...ACTIVE, [5_000, { type: 'media_gap_opened', stoppedAtMs: S + 3_000 }], [6_000, { type: 'media_restored' }]], { ...initiate, windowSeconds: 600 });
  c.no(2_000 + 33_000, { type: 'media_lost', stoppedAtMs: S + 3_000 }, /media came back/);
  c.ok(2_000 + 40_000, { type: 'media_gap_opened', stoppedAtMs: S + 40_000 });
  c.no(2_000 + 69_999, { type: 'media_lost', stoppedAtMs: S + 40_000 }, /grace period/);
  c.ok(2_000 + 70_000, { type: 'media_lost', stoppedAtMs: S + 40_000 });
  t.match(c.s, { meterStoppedAtMs: S + 40_000, settlement: { activeSeconds: 40 } }, 'the first gap was billed as call time, the second ended the call at its start');
});

t.test('ending: completes only once every hold is settled and the captured sum is the settlement', async (t) => {
  const c = call(t, [...ACTIVE, [7_000, { type: 'next_hold_due', window: 2 }], [8_000, { type: 'participant_ended', by: 'guest' }]]);
  c.no(8_500, { type: 'final_capture_done', capturedMinor: 200 }, /still being placed/);
  c.ok(9_000, { type: 'hold_placed', window: 2, holdId: 'pi_2' });
  c.no(9_500, { type: 'final_capture_done', capturedMinor: 199 }, /captures 200, not 199/);
  c.no(9_500, { type: 'capture_impossible', window: 2, reason: 'x' }, /has no capture/);
  c.ok(10_000, { type: 'final_capture_done', capturedMinor: 200 });
  t.match(c.s, { state: 'completed', billedMinutes: 1, totalChargedMinor: 200, holds: [{ status: 'captured' }, { status: 'released' }] });
});

t.test('capture_impossible while the next hold is being placed: the call fails at once (the failure is not dropped)', async (t) => {
  const c = call(t, [...ACTIVE, [7_000, { type: 'next_hold_due', window: 2 }], [12_000, { type: 'window_boundary', window: 1 }]]);
  t.match(c.s.holds, [{ window: 1, status: 'captured' }, { window: 2, status: 'placing' }]);
  const effects = c.ok(12_500, { type: 'capture_impossible', window: 1, reason: 'the authorisation expired' });
  t.equal(c.s.state, 'failed');
  t.match(effects, [{ type: 'end_media' }, { type: 'notify', to: 'operator', message: 'billing.capture_failed', data: { window: 1 } }], 'media ends, the operator is alerted');
  c.no(13_000, { type: 'hold_placed', window: 2, holdId: 'pi_2' }, /no such transition/);
});

t.test('initiate_accepted: parameters the meter cannot honour are refused', async (t) => {
  for (const [bad, why] of [
    [{ rateMinor: -1 }, /rate/],
    [{ rateMinor: 1.5 }, /rate/],
    [{ currency: 'USD' }, /currency/],
    [{ windowSeconds: 1 }, /window/],
    [{ holdLeadSeconds: 11 }, /hold lead/],
    [{ callId: 'a:b' }, /call id/],
    [{ paymentMethodId: '' }, /payment method/],
    [{ graceSeconds: 0 }, /grace/],
    [{ destination: { accountId: 'acct_1', feeBps: 20_000 } }, /fee/],
  ] as const) {
    const result = transition(null, { ...initiate, ...bad }, T0);
    t.equal(result.ok, false, JSON.stringify(bad));
    if (!result.ok) t.match(result.error.message, why);
  }
});

t.test('a free link (rate 0) runs the same lifecycle with no money effects at all', async (t) => {
  const c = call(t, [], { ...initiate, rateMinor: 0 });
  const all: BillingEffect[] = [...c.effects];
  c.no(1_000, { type: 'hold_placed', window: 1, holdId: 'pi_1' }, /free link has no hold/);
  all.push(...c.ok(1_000, { type: 'hold_placed', window: 1, holdId: null }));
  all.push(...c.ok(2_000, connected));
  all.push(...c.ok(12_000, { type: 'window_boundary', window: 1 }));
  all.push(...c.ok(22_000, { type: 'window_boundary', window: 2 }));
  all.push(...c.ok(27_000, { type: 'participant_ended', by: 'host' }));
  all.push(...c.ok(28_000, { type: 'final_capture_done', capturedMinor: 0 }));
  t.same(moneyOf(all), [], 'no hold, capture or release');
  t.match(c.s, { state: 'completed', holds: [], billedMinutes: 1, totalChargedMinor: 0, settlement: { activeSeconds: 25 } });
});

t.test('billing never runs past held money: a hold still in flight at the boundary is not billed', async (t) => {
  const c = call(t, [...ACTIVE, [7_000, { type: 'next_hold_due', window: 2 }], [12_000, { type: 'window_boundary', window: 1 }]]);
  t.same(moneyOf(c.ok(17_000, { type: 'participant_ended', by: 'guest' })), [], 'window 1 already captured, window 2 unheld');
  t.match(c.s, { meterStoppedAtMs: S + 10_000, billedMinutes: 1, totalChargedMinor: 200 });
  t.match(c.ok(18_000, { type: 'hold_placed', window: 2, holdId: 'pi_2' }), [{ type: 'release_hold', window: 2 }], 'the late hold is released');
  c.ok(19_000, { type: 'final_capture_done', capturedMinor: 0 });
});

t.test('a hold answered after its window began revives that window\'s boundary job', async (t) => {
  const c = call(t, [...ACTIVE, [7_000, { type: 'next_hold_due', window: 2 }], [12_000, { type: 'window_boundary', window: 1 }]]);
  c.no(22_000, { type: 'window_boundary', window: 2 }, /no hold to capture/); // the runner drops it
  t.same(c.ok(23_000, { type: 'hold_placed', window: 2, holdId: 'pi_2' }).filter((e) => e.type === 'schedule'), [
    { type: 'schedule', at: S + 15_000, job: { type: 'next_hold_due', window: 3 } },
    { type: 'schedule', at: S + 20_000, job: { type: 'window_boundary', window: 2 } },
  ]);
  c.ok(23_000, { type: 'window_boundary', window: 2 });
  t.equal(c.s.currentWindow, 3);
});

t.test('a boundary inside an open gap waits; the gap resolves as media lost: nothing after the gap\'s start is captured', async (t) => {
  // 10-second windows: media stopped at 3 s, window 1's boundary fell due at 10 s, the grace ran out at 33 s.
  const c = call(t, [...ACTIVE, [7_000, { type: 'next_hold_due', window: 2 }], [8_000, { type: 'hold_placed', window: 2, holdId: 'pi_2' }], [5_000, { type: 'media_gap_opened', stoppedAtMs: S + 3_000 }]]);
  c.no(12_000, { type: 'window_boundary', window: 1 }, /boundary waits for the gap's outcome/);
  c.no(24_000, { type: 'window_boundary', window: 1 }, /boundary waits/);
  const effects = c.ok(35_000, { type: 'media_lost', stoppedAtMs: S + 3_000 });
  t.same(moneyOf(effects), [
    { type: 'capture', window: 1, holdId: 'pi_1', amountMinor: 200, idempotencyKey: `callplane:${CALL}:w1:capture` },
    { type: 'release_hold', window: 2, holdId: 'pi_2', idempotencyKey: `callplane:${CALL}:w2:release` },
  ], 'window 1 captured for its one used minute, window 2 (which started in the gap) released');
  t.match(c.s, { meterStoppedAtMs: S + 3_000, billedMinutes: 1, totalChargedMinor: 200, settlement: { activeSeconds: 3 } });
  // Real 10-minute windows, the case: media gone for good at 595 s, the window-1 boundary at 600 s
  // and the window-2 start lie in the gap: billed ⌈595/60⌉ = 10 minutes, window 2 never captured.
  const real = call(t, [], { ...initiate, windowSeconds: 600, rateMinor: 30 });
  const start = T0 + 2_000;
  for (const [offset, event] of [
    [1_000, { type: 'hold_placed', window: 1, holdId: 'pi_1' }],
    [2_000, connected],
    [2_000 + 540_000, { type: 'next_hold_due', window: 2 }],
    [2_000 + 541_000, { type: 'hold_placed', window: 2, holdId: 'pi_2' }],
    [2_000 + 596_000, { type: 'media_gap_opened', stoppedAtMs: start + 595_000 }],
  ] as Step[]) real.ok(offset, event);
  real.no(2_000 + 600_000, { type: 'window_boundary', window: 1 }, /waits/);
  real.ok(2_000 + 625_000, { type: 'media_lost', stoppedAtMs: start + 595_000 });
  t.match(real.s, { billedMinutes: 10, totalChargedMinor: 300, capturedMinor: 300, holds: [{ status: 'captured', capturedMinor: 300 }, { status: 'released' }], settlement: { activeSeconds: 595 } });
});

t.test('a boundary inside an open gap waits; the gap resolves as back: the boundary then captures, the gap is call time', async (t) => {
  const c = call(t, [...ACTIVE, [7_000, { type: 'next_hold_due', window: 2 }], [8_000, { type: 'hold_placed', window: 2, holdId: 'pi_2' }], [9_000, { type: 'media_gap_opened', stoppedAtMs: S + 6_000 }]]);
  c.no(12_000, { type: 'window_boundary', window: 1 }, /waits/);
  t.same(c.ok(20_000, { type: 'media_restored' }), [{ type: 'schedule', at: S + 10_000, job: { type: 'window_boundary', window: 1 } }], 'the refused boundary is scheduled again');
  t.same(moneyOf(c.ok(20_000, { type: 'window_boundary', window: 1 })), [{ type: 'capture', window: 1, holdId: 'pi_1', amountMinor: 200, idempotencyKey: `callplane:${CALL}:w1:capture` }]);
  c.ok(17_000, { type: 'participant_ended', by: 'host' });
  t.match(c.s, { meterStoppedAtMs: S + 15_000, settlement: { activeSeconds: 15 }, billedMinutes: 1, totalChargedMinor: 200 }, 'billed through the gap up to the end');
});

t.test('an end right after a restart: the meter stops where media was last seen, not at the end', async (t) => {
  // The server died at 51.9 s (media last recorded at 47.2 s) and answered the end at 57.7 s (the case).
  const c = call(t, [...ACTIVE, [2_000 + 53_000, { type: 'media_gap_opened', stoppedAtMs: S + 47_200 }]], { ...initiate, windowSeconds: 60, rateMinor: 150 });
  c.ok(2_000 + 57_700, { type: 'participant_ended', by: 'guest' });
  t.match(c.s, { meterStoppedAtMs: S + 47_200, settlement: { activeSeconds: 48 }, billedMinutes: 1, totalChargedMinor: 150 });
});

t.test('an end retried after a crash settles as of its first receipt, and is recognised by its key', async (t) => {
  const c = call(t, ACTIVE, { ...initiate, windowSeconds: 60 });
  c.no(2_000 + 1_000, { type: 'participant_ended', by: 'guest', receivedAtMs: T0 - 1 }, /before the call existed/);
  c.ok(2_000 + 300_000, { type: 'participant_ended', by: 'guest', receivedAtMs: S + 29_700, requestKey: 'end-7' });
  t.match(c.s, { meterStoppedAtMs: S + 29_700, endedAtMs: S + 29_700, settlement: { activeSeconds: 30 }, billedMinutes: 1, endRequest: { by: 'guest', receivedAtMs: S + 29_700, requestKey: 'end-7' } });
  t.equal(c.s.holds.filter((h) => h.status === 'captured').length, 1, 'one window captured, not the five the retry\'s time would cover');
});

t.test('duration_seconds is ⌈active milliseconds / 1000⌉ exactly, and billed minutes ⌈duration / 60⌉', async (t) => {
  for (const [activeMs, seconds, minutes] of [[0, 0, 0], [1, 1, 1], [999, 1, 1], [1_000, 1, 1], [37_001, 38, 1], [60_000, 60, 1], [60_001, 61, 2]] as const) {
    const c = call(t, ACTIVE, { ...initiate, windowSeconds: 600 });
    c.ok(2_000 + activeMs, { type: 'participant_ended', by: 'host' });
    t.match(c.s, { settlement: { activeSeconds: seconds }, billedMinutes: minutes, totalChargedMinor: minutes * 200, meterStoppedAtMs: S + activeMs }, `${activeMs} ms → ${seconds} s, ${minutes} min`);
  }
});

t.test('destination charges carry the platform fee on the hold', async (t) => {
  const c = call(t, [], { ...initiate, rateMinor: 1999, destination: { accountId: 'acct_host', feeBps: 1_000 } });
  t.match(c.effects[1], { type: 'place_hold', amountMinor: 1999, destination: { accountId: 'acct_host', applicationFeeMinor: 199 } }, 'fee floored: 199.9 → 199');
});

t.test('transition is deterministic and logs its cause', async (t) => {
  const a = transition(null, initiate, T0);
  t.same(transition(null, initiate, T0), a, 'same inputs, same result');
  if (!a.ok) return;
  const refused = transition(a.next, { type: 'hold_refused', window: 1, declineCode: 'generic_decline' }, T0 + 1_000);
  t.match(refused, { ok: true, log: { type: 'hold_refused', fromStatus: 'pending', toStatus: 'cancelled', cause: 'payment_failed', data: { window: 1, declineCode: 'generic_decline' } } });
  t.throws(() => transition(a.next, { type: 'guest_ended' }, Number.NaN), /epoch milliseconds/);
});

t.test('endEventFor maps POST /calls/{id}/end to the right event', async (t) => {
  t.same(endEventFor('waiting', 'guest'), { type: 'guest_ended' });
  t.same(endEventFor('waiting', 'host'), { type: 'host_rejected' });
  t.same(endEventFor('active', 'host'), { type: 'participant_ended', by: 'host' });
  t.equal(endEventFor('completed', 'guest'), null);
});

t.test('billingStatus follows the clock, and announces no next hold after a refusal', async (t) => {
  const c = call(t, WAITING);
  t.equal(billingStatus(c.s, T0 + 1_500), null, 'nothing to show before media connects');
  c.ok(2_000, connected);
  t.same(billingStatus(c.s, S + 7_000), { elapsedSeconds: 7, currentWindow: 1, windowStartAtMs: S, nextHoldAtMs: S + 5_000, estimatedChargeMinor: 23 });
  c.ok(7_000, { type: 'next_hold_due', window: 2 });
  c.ok(8_000, { type: 'next_hold_refused', window: 2, declineCode: 'insufficient_funds' });
  t.equal(billingStatus(c.s, S + 8_000)!.nextHoldAtMs, null);
  c.ok(12_000, { type: 'window_boundary', window: 1 });
  t.match(billingStatus(c.s, S + 60_000), { elapsedSeconds: 10, currentWindow: 1, nextHoldAtMs: null }, 'frozen where the meter stopped');
});

const canceled = (holdId: string): BillingEvent => ({ type: 'hold_canceled', holdId, reason: 'stripe: canceled (automatic)' });

t.test('hold_canceled: only for a hold the call still holds; a repeated webhook is refused', async (t) => {
  const waiting = call(t, WAITING);
  waiting.no(1_500, canceled('pi_other'), /hold pi_other is not held by this call/);
  waiting.ok(1_600, canceled('pi_1'));
  waiting.no(1_700, canceled('pi_1'), /not allowed when the call is cancelled: no such transition/);

  const c = call(t, [...ACTIVE, [7_000, { type: 'next_hold_due', window: 2 }]]);
  c.no(7_500, canceled('pi_2'), /hold pi_2 is not held/); // still being placed: the id is not even known
  c.ok(8_000, { type: 'hold_placed', window: 2, holdId: 'pi_2' });
  c.ok(12_000, { type: 'window_boundary', window: 1 });
  c.no(13_000, canceled('pi_1'), /hold pi_1 is not held/); // captured at the boundary: Stripe cannot cancel it any more
  c.ok(14_000, canceled('pi_2'));
  t.match(c.s, { state: 'ending', endReason: 'billing_error' });
  c.no(14_500, canceled('pi_2'), /not allowed when the call is ending: no such transition/);

  // ending: the settlement already decided each hold; a failing capture takes capture_impossible.
  const ending = call(t, [...ACTIVE, [5_000, { type: 'participant_ended', by: 'guest' }]]);
  ending.no(6_000, canceled('pi_1'), /when the call is ending: no such transition/);
  t.match(ending.ok(6_500, { type: 'capture_impossible', window: 1, reason: 'the hold was canceled' }), [{ type: 'notify', to: 'operator' }]);

  const free = call(t, [[1_000, { type: 'hold_placed', window: 1, holdId: null }], [2_000, connected]], { ...initiate, rateMinor: 0 });
  free.no(3_000, canceled('pi_1'), /not held/);
});

/** Real windows: 10 minutes at 2.00/min (a full window is 2000). */
const REAL: InitiateAccepted = { ...initiate, windowSeconds: 600 };
const realStart = T0 + 2_000;
const realActive: Step[] = [[1_000, { type: 'hold_placed', window: 1, holdId: 'pi_1' }], [2_000, connected]];
const at = (seconds: number) => 2_000 + seconds * 1000; // offset of `seconds` after started_at

t.test('a cancelled window-2 hold while in window 2: billed only window 1, which the boundary captured', async (t) => {
  const c = call(t, [...realActive, [at(540), { type: 'next_hold_due', window: 2 }], [at(541), { type: 'hold_placed', window: 2, holdId: 'pi_2' }]], REAL);
  const boundary = c.ok(at(600), { type: 'window_boundary', window: 1 });
  t.match(moneyOf(boundary), [{ type: 'capture', window: 1, holdId: 'pi_1', amountMinor: 2000 }]);
  const ended = c.ok(at(615), canceled('pi_2'));
  t.same(moneyOf(ended), [], 'no capture of the cancelled hold, no release of it either');
  t.match(c.s, {
    state: 'ending', endReason: 'billing_error', endedAtMs: realStart + 615_000, meterStoppedAtMs: realStart + 600_000,
    billedMinutes: 10, totalChargedMinor: 2000, capturedMinor: 2000,
    settlement: { activeSeconds: 600, captures: [], finalCaptureMinor: 0 },
    holds: [{ window: 1, status: 'captured', capturedMinor: 2000 }, { window: 2, status: 'released', capturedMinor: 0 }],
  });
  c.no(at(616), { type: 'final_capture_done', capturedMinor: 1 }, /captures 0, not 1/);
  c.ok(at(616), { type: 'final_capture_done', capturedMinor: 0 });
  t.match(c.s, { state: 'completed', totalChargedMinor: 2000, billedMinutes: 10 });
});

t.test('a cancelled next-window hold while in window 1: ends now, window 1 captured for ⌈s/60⌉ × rate', async (t) => {
  // A 300 s hold lead puts the window-2 hold at 300 s, so the call can end well inside window 1.
  const c = call(t, [...realActive, [at(300), { type: 'next_hold_due', window: 2 }], [at(301), { type: 'hold_placed', window: 2, holdId: 'pi_2' }]], { ...REAL, holdLeadSeconds: 300 });
  t.same(moneyOf(c.ok(at(425), canceled('pi_2'))), [{ type: 'capture', window: 1, holdId: 'pi_1', amountMinor: 1600, idempotencyKey: `callplane:${CALL}:w1:capture` }]);
  t.match(c.s, { state: 'ending', endReason: 'billing_error', meterStoppedAtMs: realStart + 425_000, billedMinutes: 8, totalChargedMinor: 1600, capturedMinor: 1600 });
  t.match(c.s.holds, [{ window: 1, status: 'captured', capturedMinor: 1600 }, { window: 2, status: 'released', holdId: 'pi_2', capturedMinor: 0 }]);
});

t.test('hold_canceled keeps the invariant: total = ⌈active seconds / 60⌉ × rate = the sum of captures, never the cancelled hold', async (t) => {
  let checked = 0;
  for (const which of ['current', 'next'] as const) {
    for (const seconds of [0, 1, 59, 61, 299, 540, 541, 599, 600, 601, 660, 1139, 1141, 1199]) {
      // Held windows follow the clock: hold k+1 at 540 s of window k, boundaries at 600 s.
      const steps: Step[] = [...realActive];
      const window = Math.floor(seconds / 600) + 1;
      for (let k = 1; k < window; k += 1) {
        steps.push([at(k * 600 - 60), { type: 'next_hold_due', window: k + 1 }], [at(k * 600 - 59), { type: 'hold_placed', window: k + 1, holdId: `pi_${k + 1}` }]);
        steps.push([at(k * 600), { type: 'window_boundary', window: k }]);
      }
      const nextHeld = seconds % 600 >= 541;
      if (nextHeld) steps.push([at(window * 600 - 60), { type: 'next_hold_due', window: window + 1 }], [at(window * 600 - 59), { type: 'hold_placed', window: window + 1, holdId: `pi_${window + 1}` }]);
      if (which === 'next' && !nextHeld) continue;
      const cancelledId = which === 'current' ? `pi_${window}` : `pi_${window + 1}`;
      const c = call(t, steps, REAL);
      const capturedBefore = c.s.capturedMinor;
      const effects = c.ok(at(seconds) + 500, canceled(cancelledId));
      const s = c.s;
      const label = `${which} hold cancelled at ${seconds} s`;
      const captures = effects.filter((e): e is Extract<BillingEffect, { type: 'capture' }> => e.type === 'capture');
      t.notOk(moneyOf(effects).some((e) => 'holdId' in e && e.holdId === cancelledId), `${label}: no intent for the cancelled hold`);
      // Cancelled at `seconds` + 0.5 s: duration_seconds is ⌈active ms / 1000⌉, so the next-hold case bills seconds + 1.
      t.equal(s.settlement!.activeSeconds, which === 'current' ? (window - 1) * 600 : seconds + 1, `${label}: the meter stops at the held money`);
      t.equal(s.capturedMinor, Math.ceil(s.settlement!.activeSeconds / 60) * 200, `${label}: ⌈s/60⌉ × rate`);
      t.equal(capturedBefore + captures.reduce((sum, e) => sum + e.amountMinor, 0), s.capturedMinor, `${label}: the captures sum to it`);
      t.equal(s.totalChargedMinor, s.capturedMinor, `${label}: total_charged`);
      t.equal(s.billedMinutes, Math.ceil(s.settlement!.activeSeconds / 60), `${label}: billed minutes`);
      t.ok(s.holds.every((h) => h.status === 'captured' || h.status === 'released'), `${label}: every hold ends captured or released`);
      c.ok(at(seconds) + 1_000, { type: 'final_capture_done', capturedMinor: s.settlement!.finalCaptureMinor });
      t.equal(c.s.totalChargedMinor, s.capturedMinor, `${label}: completed with the same total`);
      checked += 1;
    }
  }
  t.equal(checked, 14 + 4, 'every current-hold case and every next-hold case ran');
});
