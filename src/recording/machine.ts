/**
 * The recording lifecycle (docs/recording.md, "Lifecycle"): ONE transition table of
 * {from, event, to, guard, effects}. Guards are pure functions of (facts, event) returning why the
 * event is refused, or null; effects are data that the recording service applies in the
 * transaction that changes the row (webhook events, jobs) or after its commit (capture).
 *
 *   (none) --start--> recording --stop--> processing --finished--> ready
 *                         |                    |
 *                         +--capture_failed--> failed <--failed--+
 *
 * A pair with no row, or whose guard refuses, is refused: 409 invalid_state unless the guard
 * names another code (403 recording_disabled, 403 forbidden, 503 service_unavailable).
 */
import type { RecordingStatus } from '../db/schema.ts';
import type { ErrorCode } from '../shared/errors.ts';

/** Why capture ended (stored as stop_reason). */
export type StopReason = 'stopped' | 'call_ended' | 'shutdown' | 'server_restarted' | 'spool_full';
/** Why a recording failed (recording.failed `reason`). */
export type FailureReason = 'capture_failed' | 'no_media' | 'compose_failed' | 'upload_failed';

export type RecordingEvent =
  | { type: 'start' }
  | { type: 'stop'; reason: StopReason }
  | { type: 'capture_failed' }
  | { type: 'finished' }
  | { type: 'failed'; reason: FailureReason };

export type RecordingEventType = RecordingEvent['type'];
type EventOf<T extends RecordingEventType> = Extract<RecordingEvent, { type: T }>;

/** What the guards know, gathered by the service before the transition (all plain values). */
export interface RecordingFacts {
  /** The call has ended (or was never live). */
  callEnded: boolean;
  /** The tenant switch (PUT /v1/settings {recording_enabled}). */
  recordingEnabled: boolean;
  /** An admin, the API key, or power ≥ 100 in the call's room. */
  mayRecord: boolean;
  /** Another recording of this call is `recording`. */
  anotherRunning: boolean;
  /** The spool is at recording.spool_max_bytes. */
  spoolFull: boolean;
  /** Storage confirmed the composed file and every raw track. */
  uploaded: boolean;
}

export type RefusalReason =
  | 'not_allowed'
  | 'recording_disabled'
  | 'call_not_live'
  | 'already_recording'
  | 'spool_full'
  | 'not_uploaded'
  | 'no_transition';

export interface Refusal {
  code: ErrorCode;
  reason: RefusalReason;
  message: string;
}

export type RecordingEffect =
  | { type: 'emit'; event: 'recording.started' | 'recording.finished' }
  | { type: 'emit_failed'; reason: FailureReason }
  | { type: 'start_capture' }
  | { type: 'stop_capture' }
  | { type: 'enqueue_compose' };

export interface RecordingRule<T extends RecordingEventType = RecordingEventType> {
  from: RecordingStatus | null;
  event: T;
  to: RecordingStatus;
  guard?: (facts: RecordingFacts, event: EventOf<T>) => Refusal | null;
  effects: (event: EventOf<T>) => RecordingEffect[];
}

export type RecordingTransition =
  | { ok: true; to: RecordingStatus; effects: RecordingEffect[] }
  | { ok: false; refusal: Refusal };

function rule<T extends RecordingEventType>(r: RecordingRule<T>): RecordingRule {
  return r as unknown as RecordingRule;
}

const refuse = (code: ErrorCode, reason: RefusalReason, message: string): Refusal => ({ code, reason, message });

/** The start guards, in the order a client should hear them: who, the switch, the call, the others, the disk. */
function startProblem(f: RecordingFacts): Refusal | null {
  if (!f.mayRecord) return refuse('forbidden', 'not_allowed', 'Recording needs power 100 in the room, or an admin');
  if (!f.recordingEnabled) return refuse('recording_disabled', 'recording_disabled', 'Recording is turned off for this tenant (PUT /v1/settings)');
  if (f.callEnded) return refuse('invalid_state', 'call_not_live', 'The call is not live');
  if (f.anotherRunning) return refuse('invalid_state', 'already_recording', 'This call is already being recorded; stop that recording first');
  if (f.spoolFull) return refuse('service_unavailable', 'spool_full', 'The recording spool is full (recording.spool_max_bytes); uploads must drain first');
  return null;
}

export const RECORDING_TRANSITIONS: readonly RecordingRule[] = [
  rule({
    from: null,
    event: 'start',
    to: 'recording',
    guard: startProblem,
    effects: () => [{ type: 'emit', event: 'recording.started' }, { type: 'start_capture' }],
  }),
  rule({
    from: 'recording',
    event: 'stop',
    to: 'processing',
    // Only the API's stop is the caller's to authorize; the call's end, a shutdown or a full spool stop it regardless.
    guard: (f, e) => (e.reason === 'stopped' && !f.mayRecord ? refuse('forbidden', 'not_allowed', 'Stopping a recording needs power 100 in the room, or an admin') : null),
    effects: () => [{ type: 'stop_capture' }, { type: 'enqueue_compose' }],
  }),
  rule({
    from: 'recording',
    event: 'capture_failed',
    to: 'failed',
    effects: () => [{ type: 'stop_capture' }, { type: 'emit_failed', reason: 'capture_failed' }],
  }),
  rule({
    from: 'processing',
    event: 'finished',
    to: 'ready',
    guard: (f) => (f.uploaded ? null : refuse('invalid_state', 'not_uploaded', 'Storage has not confirmed every file of the recording')),
    effects: () => [{ type: 'emit', event: 'recording.finished' }],
  }),
  rule({
    from: 'processing',
    event: 'failed',
    to: 'failed',
    effects: (e) => [{ type: 'emit_failed', reason: e.reason }],
  }),
];

/** The one entry point: the rule for (from, event) whose guard passes, or why none does. */
export function transition(from: RecordingStatus | null, event: RecordingEvent, facts: RecordingFacts): RecordingTransition {
  const rules = RECORDING_TRANSITIONS.filter((r) => r.from === from && r.event === event.type);
  if (rules.length === 0) {
    return { ok: false, refusal: refuse('invalid_state', 'no_transition', `A recording that is ${from ?? 'not started'} cannot take ${event.type}`) };
  }
  let refusal: Refusal | null = null;
  for (const r of rules) {
    refusal = r.guard?.(facts, event as never) ?? null;
    if (!refusal) return { ok: true, to: r.to, effects: r.effects(event as never) };
  }
  return { ok: false, refusal: refusal! };
}
