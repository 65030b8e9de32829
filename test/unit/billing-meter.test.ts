// The window math with seed 000's numbers, then a property test: many random calls (seeded PRNG)
// driven through transition() with the in-process provider, checking that the captures always add
// up to ⌈seconds / 60⌉ × rate and that every hold ends captured or released exactly once.
import t from 'tap';
import { isDeepStrictEqual } from 'node:util';
import { ManualClock } from '../../src/shared/clock.ts';
import { formatMoney, parseMoney } from '../../src/shared/money.ts';
import {
  DECLINE_AFTER_FIRST_HOLD_CARD,
  PaymentDeclined,
  TestPaymentProvider,
  applicationFeeMinor,
  billedMinutes,
  captureSchedule,
  chargeMinor,
  defaultHoldLeadSeconds,
  estimatedChargeMinor,
  finalSummary,
  holdAmountMinor,
  isRetryable,
  meterStatus,
  transition,
  windowAt,
  windowChargeMinor,
  windowSecondsFromMinutes,
  type BillingEffect,
  type BillingEvent,
  type BillingSnapshot,
} from '../../src/billing/index.ts';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

t.test('seed 000: status at 270 s on a 2.00/min link with 10-minute windows', async (t) => {
  const config = { rateMinor: parseMoney('2.00', 'rate'), windowSeconds: windowSecondsFromMinutes(10), holdLeadSeconds: defaultHoldLeadSeconds(600) };
  const started = Date.parse('2026-03-15T14:00:30Z');
  const status = meterStatus(config, started, started + 270_000);
  t.equal(status.currentWindow, 1);
  t.equal(status.elapsedSeconds, 270);
  t.equal(iso(status.windowStartAtMs), '2026-03-15T14:00:30.000Z');
  t.equal(iso(status.nextHoldAtMs), '2026-03-15T14:09:30.000Z', 'next_hold_at = window start + 9 min');
  t.equal(formatMoney(status.estimatedChargeMinor), '9.00');
});

t.test('seed 000: ending at 450 s bills 8 minutes, 16.00', async (t) => {
  t.same(finalSummary(450, 200), { billedMinutes: 8, totalChargedMinor: 1600 });
  t.equal(formatMoney(finalSummary(450, 200).totalChargedMinor), '16.00');
});

t.test('seed 000: $3/min, 10-minute windows, 23 min 30 s → $72 in captures 30 + 30 + 12', async (t) => {
  const schedule = captureSchedule(23 * 60 + 30, { rateMinor: 300, windowSeconds: 600, holdLeadSeconds: 60 });
  t.same(schedule, [{ window: 1, amountMinor: 3000 }, { window: 2, amountMinor: 3000 }, { window: 3, amountMinor: 1200 }]);
  t.equal(formatMoney(schedule.reduce((sum, c) => sum + c.amountMinor, 0)), '72.00');
});

t.test('meter arithmetic', async (t) => {
  t.equal(estimatedChargeMinor(1, 200), 3, '3.33 cents floored: never show more than owed');
  t.equal(estimatedChargeMinor(90, 7), 10, '10.5 floored');
  t.equal(estimatedChargeMinor(1_000_000, 9_007_199), 150_119_983_333, 'exact where a float product would round');
  t.same([billedMinutes(0), billedMinutes(1), billedMinutes(60), billedMinutes(61)], [0, 1, 1, 2]);
  t.same([windowAt(0, 600), windowAt(599, 600), windowAt(600, 600)], [1, 1, 2], 'a boundary second opens the next window');
  t.same([defaultHoldLeadSeconds(600), defaultHoldLeadSeconds(60), defaultHoldLeadSeconds(10), defaultHoldLeadSeconds(15)], [60, 60, 5, 7]);
  t.equal(holdAmountMinor({ rateMinor: 200, windowSeconds: 10, holdLeadSeconds: 5 }), 200, 'a 10-second window holds one minute');
  t.equal(holdAmountMinor({ rateMinor: 200, windowSeconds: 90, holdLeadSeconds: 60 }), 400);
  const w10 = { rateMinor: 200, windowSeconds: 10, holdLeadSeconds: 5 };
  t.same([1, 2, 6, 7].map((w) => windowChargeMinor(w, w10)), [200, 0, 0, 200], 'sub-minute windows pay for the minute they open');
  t.equal(windowChargeMinor(3, w10, 15), 0, 'a window after the stop costs nothing');
  t.equal(applicationFeeMinor(1999, 1000), 199);
  t.throws(() => chargeMinor(-1, 200));
  t.throws(() => windowSecondsFromMinutes(0));
});

// ---- the simulated lifecycle ---------------------------------------------------------------

/** mulberry32: a tiny seeded PRNG, so a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Sim {
  rateMinor: number;
  windowSeconds: number;
  durationSeconds: number;
  end: 'participant' | 'media';
  card: string;
  flaky: boolean;
  /** Hold answers may come up to 1.5 windows late: billing must stop at the held money. */
  lateHolds: boolean;
  /** Media drops once mid-call and comes back within the grace period: the gap is billed as call time. */
  blip: boolean;
  rng: () => number;
}

const T0 = Date.UTC(2026, 2, 15, 14, 0, 0);
let simCount = 0;

/**
 * A runner like the future DB job runner: applies an event, executes the effects against the
 * provider (retrying outages with the same key, sometimes twice: at-least-once), turns schedules
 * and provider answers into queued events, and drops events the machine refuses (stale jobs).
 */
async function simulate(o: Sim) {
  simCount += 1;
  const callId = `01SIM${String(simCount).padStart(21, '0')}`;
  const clock = new ManualClock(T0);
  const provider = new TestPaymentProvider({ clock });
  const queue: Array<{ at: number; tie: number; event: BillingEvent }> = [];
  const executed: BillingEffect[] = [];
  const lead = defaultHoldLeadSeconds(o.windowSeconds);
  let snapshot: BillingSnapshot | null = null;
  let settlementCaptured = 0;
  let replayMismatches = 0;
  const push = (at: number, event: BillingEvent) => queue.push({ at: Math.max(at, clock.nowMs()), tie: o.rng(), event });
  // Provider answers normally arrive before the hold is needed (< lead); with lateHolds, up to 1.5 W late.
  const later = () => clock.nowMs() + Math.floor(o.rng() * (o.lateHolds ? 1.5 * o.windowSeconds : lead) * 1000);

  async function call<T>(fn: () => Promise<T>): Promise<T> {
    for (;;) {
      if (o.flaky && o.rng() < 0.15) provider.failNext();
      try {
        const result = await fn();
        // At-least-once delivery: the same request again must get the same answer and change nothing.
        if (o.rng() < 0.2 && !isDeepStrictEqual(await fn(), result)) replayMismatches += 1;
        return result;
      } catch (error) {
        if (!isRetryable(error)) throw error;
      }
    }
  }

  async function execute(effects: BillingEffect[], intoEnding: boolean): Promise<void> {
    for (const effect of effects) {
      executed.push(effect);
      if (effect.type === 'place_hold') {
        const { window } = effect;
        try {
          const { holdId } = await call(() => provider.placeHold({ ...effect, callId }));
          push(later(), { type: 'hold_placed', window, holdId });
        } catch (error) {
          if (!(error instanceof PaymentDeclined)) throw error;
          const declineCode = error.declineCode;
          push(later(), window === 1 ? { type: 'hold_refused', window, declineCode } : { type: 'next_hold_refused', window, declineCode });
        }
      } else if (effect.type === 'capture') {
        const { captured } = await call(() => provider.capture(effect));
        if (intoEnding) settlementCaptured += captured;
      } else if (effect.type === 'release_hold') {
        await call(() => provider.release(effect));
      } else if (effect.type === 'schedule') {
        push(effect.at, effect.job);
      }
    }
  }

  async function apply(event: BillingEvent): Promise<void> {
    const result = transition(snapshot, event, clock.nowMs());
    if (!result.ok) return; // a stale job or a result that lost a race: the machine said no, nothing happened
    const from = snapshot?.state;
    snapshot = result.next;
    await execute(result.effects, from === 'active' && snapshot.state === 'ending');
    if (from === 'pending' && snapshot.state === 'waiting') {
      push(clock.nowMs() + 1_000, { type: 'media_connected', dtls: { host: 'connected', guest: 'connected' } });
    }
    if (from === 'waiting' && snapshot.state === 'active') {
      const stopAt = snapshot.startedAtMs! + o.durationSeconds * 1000;
      if (o.blip) {
        const gone = snapshot.startedAtMs! + Math.floor(o.rng() * o.durationSeconds * 1000);
        const back = gone + Math.floor(o.rng() * snapshot.graceSeconds * 1000);
        if (back < stopAt) {
          push(gone, { type: 'media_gap_opened', stoppedAtMs: gone });
          push(back, { type: 'media_restored' });
        }
      }
      if (o.end === 'participant') push(stopAt, { type: 'participant_ended', by: o.rng() < 0.5 ? 'host' : 'guest' });
      else push(stopAt, { type: 'media_gap_opened', stoppedAtMs: stopAt }); // its media_lost is scheduled by the machine
    }
    if (snapshot.state === 'ending' && !snapshot.holds.some((hold) => hold.status === 'placing')) {
      await apply({ type: 'final_capture_done', capturedMinor: settlementCaptured });
    }
  }

  await apply({
    type: 'initiate_accepted', callId, currency: 'usd', rateMinor: o.rateMinor, windowSeconds: o.windowSeconds, paymentMethodId: o.card,
  });
  if (o.rateMinor === 0) push(clock.nowMs(), { type: 'hold_placed', window: 1, holdId: null }); // free links: no hold to wait for
  while (queue.length > 0 && !['completed', 'cancelled', 'failed'].includes(snapshot!.state)) {
    queue.sort((a, b) => a.at - b.at || a.tie - b.tie);
    const next = queue.shift()!;
    clock.set(next.at);
    await apply(next.event);
  }
  return { snapshot: snapshot!, holds: await provider.list(callId), executed, replayMismatches };
}

function problemsOf(o: Sim, r: Awaited<ReturnType<typeof simulate>>): string[] {
  const problems: string[] = [];
  const s = r.snapshot;
  const expect = (ok: boolean, what: string) => ok || problems.push(what);
  expect(s.state === 'completed', `ended ${s.state}`);
  expect(r.replayMismatches === 0, `${r.replayMismatches} replayed requests answered differently`);
  const active = s.settlement?.activeSeconds ?? -1;
  const captured = r.holds.reduce((sum, hold) => sum + hold.amountCapturedMinor, 0);
  expect(captured === chargeMinor(active, o.rateMinor), `captured ${captured} != ⌈${active}/60⌉ × ${o.rateMinor}`);
  expect(s.totalChargedMinor === captured, `total_charged ${s.totalChargedMinor} != captured ${captured}`);
  expect(s.billedMinutes === billedMinutes(active), 'billed_minutes');
  const d = o.durationSeconds;
  const W = o.windowSeconds;
  const refusing = o.card === DECLINE_AFTER_FIRST_HOLD_CARD && o.rateMinor > 0;
  // Active time is media time: a call whose media was lost for good at d seconds is billed d seconds
  // (never a window that started in the gap), as is one ended at d; a blip back within grace is call time.
  if (o.lateHolds && o.rateMinor > 0) {
    expect(active <= d, `late holds: billed ${active} s for ${d} s`);
  } else if (!refusing) expect(active === d, `meter ${active} s for a ${d} s call (${o.end} end)`);
  if (refusing && o.end === 'participant' && !o.lateHolds) {
    expect(active === Math.min(d, W), `refused next hold: meter ${active} s, expected ${Math.min(d, W)}`);
    expect(d <= W || s.endReason === 'billing_error', `ended ${s.endReason}, expected billing_error`);
  }
  const placed = s.holds.filter((hold) => hold.holdId !== null);
  expect(r.holds.length === placed.length, 'every provider hold is known to the machine');
  for (const hold of r.holds) {
    expect(hold.status === 'captured' || hold.status === 'released', `hold w${hold.window} left ${hold.status}`);
    const ends = r.executed.filter((e) => (e.type === 'capture' || e.type === 'release_hold') && e.holdId === hold.holdId);
    expect(ends.length === 1, `hold w${hold.window} ended by ${ends.length} intents`);
  }
  const byWindow = r.holds.filter((hold) => hold.amountCapturedMinor > 0).map((hold) => ({ window: hold.window, amountMinor: hold.amountCapturedMinor }));
  const schedule = captureSchedule(active, { rateMinor: o.rateMinor, windowSeconds: W, holdLeadSeconds: defaultHoldLeadSeconds(W) }).filter((c) => c.amountMinor > 0);
  expect(JSON.stringify(byWindow) === JSON.stringify(schedule), `captures ${JSON.stringify(byWindow)} != ${JSON.stringify(schedule)}`);
  if (o.rateMinor === 0) expect(r.holds.length === 0, 'a free link placed a hold');
  return problems;
}

t.test('seed 000 through the machine: 450 s at 2.00 → 16.00; 23:30 at 3.00 → 30 + 30 + 12', async (t) => {
  const base = { windowSeconds: 600, end: 'participant', card: 'pm_card_visa', flaky: false, lateHolds: false, blip: false, rng: prng(7) } as const;
  const short = await simulate({ ...base, rateMinor: 200, durationSeconds: 450 });
  t.match(short.snapshot, { state: 'completed', billedMinutes: 8, totalChargedMinor: 1600, settlement: { activeSeconds: 450 } });
  t.same(short.holds.map((h) => [h.window, h.status, h.amountCapturedMinor]), [[1, 'captured', 1600]]);
  const long = await simulate({ ...base, rateMinor: 300, durationSeconds: 23 * 60 + 30 });
  t.match(long.snapshot, { state: 'completed', billedMinutes: 24, totalChargedMinor: 7200 });
  t.same(long.holds.map((h) => [h.window, h.status, h.amountCapturedMinor]), [[1, 'captured', 3000], [2, 'captured', 3000], [3, 'captured', 1200]], 'no hold for window 4: the call ended before 29:00');
  t.equal(formatMoney(long.snapshot.totalChargedMinor!), '72.00');
});

t.test('property: random calls always charge ⌈seconds/60⌉ × rate and end every hold exactly once', async (t) => {
  const rng = prng(0x000c0ffe);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rng() * list.length)]!;
  const failures: Array<{ case: Omit<Sim, 'rng'>; problems: string[] }> = [];
  const RUNS = 1000;
  const seen = { billing_error: 0, media_lost: 0, free: 0, subMinute: 0, flaky: 0, clamped: 0, blip: 0 };
  for (let i = 0; i < RUNS; i += 1) {
    const windowSeconds = pick([10, 15, 30, 45, 60, 90, 120, 300, 600, 3600]);
    const o: Sim = {
      rateMinor: pick([0, 1, 7, 50, 199, 200, 300, 2500]),
      windowSeconds,
      durationSeconds: Math.floor(rng() * (windowSeconds * 12 + 120)),
      end: rng() < 0.5 ? 'participant' : 'media',
      card: rng() < 0.2 ? DECLINE_AFTER_FIRST_HOLD_CARD : 'pm_card_visa',
      flaky: rng() < 0.3,
      lateHolds: rng() < 0.2,
      blip: rng() < 0.3,
      rng,
    };
    const result = await simulate(o);
    const problems = problemsOf(o, result);
    if (result.snapshot.endReason === 'billing_error') seen.billing_error += 1;
    if (result.snapshot.endReason === 'media_lost') seen.media_lost += 1;
    if (o.rateMinor === 0) seen.free += 1;
    if (windowSeconds < 60) seen.subMinute += 1;
    if (o.flaky) seen.flaky += 1;
    if (o.blip) seen.blip += 1;
    if (result.snapshot.settlement && result.snapshot.settlement.activeSeconds < o.durationSeconds) seen.clamped += 1;
    if (problems.length > 0) failures.push({ case: { ...o, rng: undefined } as never, problems });
  }
  t.same(failures, [], `${RUNS} random calls, no invariant broken`);
  for (const [path, count] of Object.entries(seen)) t.ok(count >= 20, `the runs cover ${path} (${count})`);
});
