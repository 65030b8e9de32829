import t from 'tap';
import { RECORDING_TRANSITIONS, transition, type RecordingFacts } from '../../src/recording/machine.ts';

const facts = (over: Partial<RecordingFacts> = {}): RecordingFacts => ({
  callEnded: false,
  recordingEnabled: true,
  mayRecord: true,
  anotherRunning: false,
  spoolFull: false,
  uploaded: false,
  ...over,
});

t.test('start: (none) → recording, emits recording.started and starts capture', async (t) => {
  const r = transition(null, { type: 'start' }, facts());
  t.same(r, { ok: true, to: 'recording', effects: [{ type: 'emit', event: 'recording.started' }, { type: 'start_capture' }] });
});

t.test('start guards: each refusal has its code and reason, in order who → switch → call → others → disk', async (t) => {
  const cases: Array<[Partial<RecordingFacts>, string, string]> = [
    [{ mayRecord: false, recordingEnabled: false }, 'forbidden', 'not_allowed'],
    [{ recordingEnabled: false, callEnded: true }, 'recording_disabled', 'recording_disabled'],
    [{ callEnded: true, anotherRunning: true }, 'invalid_state', 'call_not_live'],
    [{ anotherRunning: true, spoolFull: true }, 'invalid_state', 'already_recording'],
    [{ spoolFull: true }, 'service_unavailable', 'spool_full'],
  ];
  for (const [over, code, reason] of cases) {
    const r = transition(null, { type: 'start' }, facts(over));
    t.notOk(r.ok, JSON.stringify(over));
    if (!r.ok) t.same([r.refusal.code, r.refusal.reason], [code, reason], JSON.stringify(over));
  }
});

t.test('stop: recording → processing, stops capture and enqueues the composition', async (t) => {
  const r = transition('recording', { type: 'stop', reason: 'stopped' }, facts());
  t.same(r, { ok: true, to: 'processing', effects: [{ type: 'stop_capture' }, { type: 'enqueue_compose' }] });
});

t.test('stop by the API needs the right to record; the call end does not', async (t) => {
  const byApi = transition('recording', { type: 'stop', reason: 'stopped' }, facts({ mayRecord: false }));
  t.equal(byApi.ok ? 'ok' : byApi.refusal.code, 'forbidden');
  const byEnd = transition('recording', { type: 'stop', reason: 'call_ended' }, facts({ mayRecord: false }));
  t.equal(byEnd.ok && byEnd.to, 'processing');
});

t.test('capture_failed: recording → failed with recording.failed capture_failed', async (t) => {
  const r = transition('recording', { type: 'capture_failed' }, facts());
  t.same(r, { ok: true, to: 'failed', effects: [{ type: 'stop_capture' }, { type: 'emit_failed', reason: 'capture_failed' }] });
});

t.test('finished: processing → ready only once storage confirmed every file', async (t) => {
  const early = transition('processing', { type: 'finished' }, facts({ uploaded: false }));
  t.equal(early.ok ? 'ok' : early.refusal.reason, 'not_uploaded');
  const r = transition('processing', { type: 'finished' }, facts({ uploaded: true }));
  t.same(r, { ok: true, to: 'ready', effects: [{ type: 'emit', event: 'recording.finished' }] });
});

t.test('failed: processing → failed, recording.failed carries the reason', async (t) => {
  const r = transition('processing', { type: 'failed', reason: 'no_media' }, facts());
  t.same(r, { ok: true, to: 'failed', effects: [{ type: 'emit_failed', reason: 'no_media' }] });
});

t.test('pairs without a row are refused as invalid_state (replayed jobs, double stops)', async (t) => {
  for (const [from, event] of [
    ['recording', { type: 'start' }],
    ['processing', { type: 'stop', reason: 'stopped' }],
    ['ready', { type: 'failed', reason: 'compose_failed' }],
    ['failed', { type: 'finished' }],
    [null, { type: 'stop', reason: 'stopped' }],
  ] as const) {
    const r = transition(from, event, facts({ uploaded: true }));
    t.equal(r.ok ? 'ok' : `${r.refusal.code}/${r.refusal.reason}`, 'invalid_state/no_transition', `${from} + ${event.type}`);
  }
  t.equal(RECORDING_TRANSITIONS.length, 5, 'one test above per row of the table');
});
