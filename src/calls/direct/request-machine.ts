/**
 * The videochat request lifecycle (docs/videochat.md, "Request lifecycle"): ONE transition table of
 * {from, event, to, guard, effects}. Guards are pure functions of (snapshot, event, now) returning
 * why the event is refused; effects are data the service carries out in the deciding transaction
 * (the call, a participant) or after its commit (the notifications).
 *
 *   requested → accepted  (accept, by the target, before it expires)
 *   requested → declined  (decline, by either side)
 *   requested → expired   (expire, once due: the durable job at expires_at)
 *   requested → merged    (merge, by the target of a direct request, into a call it moderates)
 *
 * Any other (state, event) pair is 409: the request was already answered or has expired.
 */
import type { VideochatRequestState } from '../../db/schema.ts';

export const REQUEST_STATES: readonly VideochatRequestState[] = ['requested', 'accepted', 'declined', 'expired', 'merged'];

export interface RequestSnapshot {
  id: string;
  kind: 'direct' | 'invite';
  initiatorId: string;
  targetId: string;
  /** The call an invite is for (null for a direct request until it is accepted). */
  callId: string | null;
  state: VideochatRequestState;
  expiresAtMs: number;
}

export type RequestEvent =
  | { type: 'accept'; by: string }
  | { type: 'decline'; by: string }
  | { type: 'expire' }
  | { type: 'merge'; by: string; callId: string };
export type RequestEventType = RequestEvent['type'];
export const REQUEST_EVENTS: readonly RequestEventType[] = ['accept', 'decline', 'expire', 'merge'];
type EventOf<T extends RequestEventType> = Extract<RequestEvent, { type: T }>;

export type RequestEffect =
  /** Accepting a direct request: a `direct` call with the initiator (owner) and the target. */
  | { type: 'create_direct_call' }
  /** `userId` becomes a participant of `callId` (an accepted invite, a merged request). */
  | { type: 'add_participant'; callId: string; userId: string }
  /** Tickets and videochatAccepted / directVideochatRequestAccepted, after the commit. */
  | { type: 'announce_accepted' }
  /** videochatDeclined to every socket of both sides but the one that asked. */
  | { type: 'announce_declined'; reason: 'declined' | 'expired' };

/** Why an event is refused, with the user-socket error it becomes. */
export interface Refusal {
  code: 'forbidden' | 'invalid_state';
  reason: string;
}

interface Ctx<E> {
  readonly s: RequestSnapshot;
  readonly e: E;
  readonly now: number;
}

export interface RequestRule<T extends RequestEventType = RequestEventType> {
  from: VideochatRequestState;
  event: T;
  to: VideochatRequestState;
  guard?: (c: Ctx<EventOf<T>>) => Refusal | null;
  effects: (c: Ctx<EventOf<T>>) => RequestEffect[];
}

export type RequestTransition = { ok: true; next: RequestSnapshot; effects: RequestEffect[] } | { ok: false; refusal: Refusal };

function rule<T extends RequestEventType>(r: RequestRule<T>): RequestRule {
  return r as unknown as RequestRule;
}

const forbidden = (reason: string): Refusal => ({ code: 'forbidden', reason });
const conflict = (reason: string): Refusal => ({ code: 'invalid_state', reason });

const byTarget = ({ s, e }: Ctx<{ by: string }>): Refusal | null => (e.by === s.targetId ? null : forbidden('Only the user this request is addressed to may answer it this way'));
const notExpired = ({ s, now }: Ctx<unknown>): Refusal | null => (now < s.expiresAtMs ? null : conflict('The request has expired'));

export const REQUEST_TRANSITIONS: readonly RequestRule[] = [
  rule({
    from: 'requested',
    event: 'accept',
    to: 'accepted',
    guard: (c) => byTarget(c) ?? notExpired(c),
    effects: ({ s }) =>
      s.kind === 'direct' ? [{ type: 'create_direct_call' }, { type: 'announce_accepted' }] : [{ type: 'add_participant', callId: s.callId!, userId: s.targetId }, { type: 'announce_accepted' }],
  }),
  rule({
    from: 'requested',
    event: 'decline',
    to: 'declined',
    guard: ({ s, e }) => (e.by === s.targetId || e.by === s.initiatorId ? null : forbidden('Only the two sides of a request may decline it')),
    effects: () => [{ type: 'announce_declined', reason: 'declined' }],
  }),
  rule({
    from: 'requested',
    event: 'expire',
    to: 'expired',
    guard: ({ s, now }) => (now >= s.expiresAtMs ? null : conflict('The request is not due to expire yet')),
    effects: () => [{ type: 'announce_declined', reason: 'expired' }],
  }),
  rule({
    from: 'requested',
    event: 'merge',
    to: 'merged',
    guard: (c) => (c.s.kind !== 'direct' ? conflict('Only a direct request can be merged into a call') : (byTarget(c) ?? notExpired(c))),
    effects: ({ s, e }) => [{ type: 'add_participant', callId: e.callId, userId: s.initiatorId }, { type: 'announce_accepted' }],
  }),
];

/** The next snapshot and its effects, or why the event is refused. Pure. */
export function requestTransition(s: RequestSnapshot, e: RequestEvent, now: number): RequestTransition {
  const rules = REQUEST_TRANSITIONS.filter((r) => r.from === s.state && r.event === e.type);
  if (rules.length === 0) return { ok: false, refusal: conflict(s.state === 'expired' ? 'The request has expired' : `The request was already answered (${s.state})`) };
  let refusal: Refusal | null = null;
  for (const r of rules) {
    refusal = r.guard?.({ s, e, now }) ?? null;
    if (refusal) continue;
    const next: RequestSnapshot = { ...s, state: r.to, ...(e.type === 'merge' ? { callId: e.callId } : {}) };
    return { ok: true, next, effects: r.effects({ s, e, now }) };
  }
  return { ok: false, refusal: refusal! };
}
