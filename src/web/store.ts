/**
 * The demo page's state: one store that every screen reads and updates, and that renders subscribe
 * to (each screen watches the slices it shows). Updates replace values rather than mutate them, so
 * a watcher sees a change as a new object.
 */
import type { NotificationPayloads } from '../protocol/signaling.ts';
import type { UserEventEnvelope } from '../protocol/user-events.ts';
import type { Call, Link, PaidCall, PublicLink, Room, User } from './api.ts';
import type { PageSession, ReceivedNotification } from './call.ts';
import type { PaidMeter } from './paid.ts';
import type { UserSocket } from './user-socket.ts';

export interface Store<S extends object> {
  get(): Readonly<S>;
  /** Merges `change` into the state and tells every subscriber, synchronously. */
  update(change: Partial<S> | ((state: Readonly<S>) => Partial<S>)): void;
  /** Calls `listener` after every update; returns the unsubscribe function. */
  subscribe(listener: (state: Readonly<S>) => void): () => void;
}

export function createStore<S extends object>(initial: S): Store<S> {
  let state: Readonly<S> = Object.freeze({ ...initial });
  const listeners = new Set<(state: Readonly<S>) => void>();
  return {
    get: () => state,
    update(change) {
      state = Object.freeze({ ...state, ...(typeof change === 'function' ? change(state) : change) });
      // Listeners read the live state, not this round's: when one updates in turn, the rest of
      // this round already sees the newer state (and watchers skip a value they have seen).
      for (const listener of [...listeners]) listener(state);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** Calls `onChange` whenever `select` picks a different value (by identity) than it last did. */
export function watch<S extends object, T>(source: Store<S>, select: (state: Readonly<S>) => T, onChange: (value: T) => void): () => void {
  let last = select(source.get());
  return source.subscribe((state) => {
    const value = select(state);
    if (Object.is(value, last)) return;
    last = value;
    onChange(value);
  });
}

export type Screen = 'loading' | 'signin' | 'lobby' | 'call' | 'guest' | 'summary';
export type PaidRole = 'host' | 'guest';

/** A room call ringing this user. */
export interface Invite {
  call: Call;
  room?: { id?: string; name?: string };
  from?: { id?: string; display_name?: string };
}

/** The paid call this page is in, or whose summary it shows. */
export interface PaidContext {
  role: PaidRole;
  callId: string;
  call: PaidCall | null;
  meter: PaidMeter;
  /** The last billing warning received over signaling (call_status with `warning`). */
  signaled: NotificationPayloads['call_status'] | null;
}

export interface AppState {
  screen: Screen;
  me: User | null;
  session: PageSession | null;
  userSocket: UserSocket | null;
  rooms: readonly Room[];
  /** Ringing room calls by call id. */
  invites: ReadonlyMap<string, Invite>;
  /** Paid calls ringing this host, by call id. */
  paidIncoming: ReadonlyMap<string, PaidCall>;
  /** Paid calls seen ended: a late call.incoming for one of them is ignored. */
  paidEnded: ReadonlySet<string>;
  paid: PaidContext | null;
  /** The host's links, newest first. */
  links: readonly Link[];
  /** The guest's identity for the link (one guest user per name, reused across attempts). */
  guest: { token: string; name: string; user: User } | null;
  publicLink: PublicLink | null;
}

export const store = createStore<AppState>({
  screen: 'loading',
  me: null,
  session: null,
  userSocket: null,
  rooms: [],
  invites: new Map(),
  paidIncoming: new Map(),
  paidEnded: new Set(),
  paid: null,
  links: [],
  guest: null,
  publicLink: null,
});

/**
 * What the page received and reported, in order, for the tests and the console: append-only logs
 * (the call session appends to `notifications` itself), so they stay outside the store's updates.
 */
export const pageLog = {
  /** Every signaling notification, across calls. */
  notifications: [] as ReceivedNotification[],
  /** Every user-socket event. */
  userEvents: [] as UserEventEnvelope[],
  /** Errors shown in the status line. */
  errors: [] as string[],
};

export function mapWith<K, V>(map: ReadonlyMap<K, V>, key: K, value: V): ReadonlyMap<K, V> {
  return new Map(map).set(key, value);
}

export function mapWithout<K, V>(map: ReadonlyMap<K, V>, key: K): ReadonlyMap<K, V> {
  const copy = new Map(map);
  copy.delete(key);
  return copy;
}
