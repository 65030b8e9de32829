/**
 * `window.callplane`: the page's live state for the end-to-end tests and the console, read from
 * the store (and the call session) whenever it is asked.
 */
import type { types } from 'mediasoup-client';
import type { UserEventEnvelope } from '../protocol/user-events.ts';
import type { Link, PaidCall, User } from './api.ts';
import type { CallSession, PageSession, ReceivedNotification } from './call.ts';
import { PlainCallSession } from './plain-call.ts';
import { pageLog, store, type PaidRole } from './store.ts';
import type { VideochatTicket } from '../protocol/videochat.ts';
import { openVideochat } from './screens/videochat.ts';

export interface CallplaneDebug {
  readonly me: User | null;
  readonly state: string;
  /** The SDK session (null in plain mode: see `plain`). */
  readonly session: CallSession | null;
  /** The plain-WebRTC session of `?mode=sdp` (its RTCPeerConnection is `plain.pc`). */
  readonly plain: PlainCallSession | null;
  readonly callId: string | null;
  readonly participantId: string | null;
  readonly device: types.Device | null;
  readonly sendTransport: types.Transport | null;
  readonly recvTransport: types.Transport | null;
  readonly producers: Record<string, types.Producer>;
  /** Remote consumers grouped by participant id. */
  readonly consumers: Record<string, types.Consumer[]>;
  readonly lastCallStatus: unknown;
  /** Every signaling notification this page received, in order (across calls). */
  readonly notifications: ReceivedNotification[];
  /** Every user-socket event this page received, in order. */
  readonly userEvents: UserEventEnvelope[];
  readonly timings: PageSession['timings'] | null;
  /** Errors shown in the status line. */
  readonly errors: string[];
  /** The paid call this page is in (or just left): its side, the latest figures, status polls so far. */
  readonly paid: { role: PaidRole; callId: string; call: PaidCall | null; polls: number } | null;
  /** The host's links, newest first. */
  readonly links: readonly Link[];
  /** Joins a call with a handshake ticket (tests: a client that holds a token but not the secret). */
  openVideochat(ticket: VideochatTicket): void;
}

declare global {
  interface Window {
    callplane: CallplaneDebug;
  }
}

export function exposeDebugHandle(): void {
  const session = () => store.get().session;
  const sdk = (): CallSession | null => {
    const current = session();
    return current && !(current instanceof PlainCallSession) ? current : null;
  };
  window.callplane = {
    get me() {
      return store.get().me;
    },
    get state() {
      return document.body.dataset.state ?? 'loading';
    },
    get session() {
      return sdk();
    },
    get plain() {
      const current = session();
      return current instanceof PlainCallSession ? current : null;
    },
    get callId() {
      return session()?.callId ?? null;
    },
    get participantId() {
      return session()?.participantId ?? null;
    },
    get device() {
      return sdk()?.device ?? null;
    },
    get sendTransport() {
      return sdk()?.sendTransport ?? null;
    },
    get recvTransport() {
      return sdk()?.recvTransport ?? null;
    },
    get producers() {
      return Object.fromEntries(sdk()?.producers ?? []);
    },
    get consumers() {
      return sdk()?.consumersByPeer ?? {};
    },
    get lastCallStatus() {
      return session()?.lastCallStatus ?? null;
    },
    notifications: pageLog.notifications,
    userEvents: pageLog.userEvents,
    get timings() {
      return session()?.timings ?? null;
    },
    errors: pageLog.errors,
    get paid() {
      const { paid } = store.get();
      return paid ? { role: paid.role, callId: paid.callId, call: paid.call, polls: paid.meter.polls } : null;
    },
    get links() {
      return store.get().links;
    },
    openVideochat(ticket) {
      openVideochat(ticket, 'Videochat');
    },
  };
}
