// Counts a TAP stream's results with tap's own parser (tap-parser, which ships with tap).
//
// What is counted: every leaf test point, i.e. every `ok` / `not ok` line at any nesting
// depth that does not merely close a subtest (t.ok, t.equal, ... and also t.pass/t.fail).
// A subtest's closing point is not counted on its own, with one exception: when it fails
// (or is skipped) although nothing inside it failed (or nothing ran at all), e.g. a test
// file that exited non-zero, timed out, crashed before its first assertion or missed its
// plan, that closing point counts as one failure (or one skip) itself. So a failure is
// never hidden by the choice to count leaves. These are the numbers tap prints itself in
// its `# { total, pass, fail, todo, skip }` summary comment.
//
// `# SKIP` points count as skipped, `# TODO` points as todo (neither as passed or failed).
import { Parser } from 'tap-parser';

export function createTally() {
  const tally = { passed: 0, failed: 0, skipped: 0, todo: 0, failures: [], bailout: null };
  const parser = new Parser();

  /** state: { failures, leaves, parent, lastChild } for one (sub)test parser. */
  function watch(p, parent) {
    const state = { failures: 0, leaves: 0, parent, lastChild: null };
    p.on('child', (child) => {
      state.lastChild = watch(child, state);
    });
    p.on('assert', (res) => {
      const closed = res.closingTestPoint ? state.lastChild : null;
      if (closed) {
        state.lastChild = null;
        const unexplainedFailure = !res.ok && !res.todo && !res.skip && closed.failures === 0;
        if (closed.leaves > 0 && !unexplainedFailure) return; // its leaves were counted
      }
      record(res, state);
    });
    return state;
  }

  function record(res, state) {
    let failure = false;
    if (res.skip) tally.skipped++;
    else if (res.todo) tally.todo++;
    else if (res.ok) tally.passed++;
    else {
      tally.failed++;
      failure = true;
      tally.failures.push(res.fullname || res.name || `test point ${res.id}`);
    }
    for (let s = state; s; s = s.parent) {
      s.leaves++;
      if (failure) s.failures++;
    }
  }

  const root = watch(parser, null);
  parser.on('bailout', (reason) => {
    tally.bailout = reason || 'bail out';
  });

  /** Call once the stream has ended; accounts for a run that broke off. */
  function finish() {
    return new Promise((resolve) => {
      const done = (summary) => {
        // The stream ended badly (plan not met, bail out) with no failing point to show for it.
        if (summary && !summary.ok && root.failures === 0) {
          tally.failed++;
          tally.failures.push(tally.bailout ? `bail out: ${tally.bailout}` : 'the TAP stream ended incomplete (plan not met)');
        }
        resolve(tally);
      };
      if (parser.results) done(parser.results);
      else {
        parser.once('complete', done);
        parser.end();
      }
    });
  }

  return { parser, tally, finish };
}
