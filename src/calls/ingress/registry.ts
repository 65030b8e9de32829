import { AppError } from '../../shared/errors.ts';
import { SafeEmitter } from '../../shared/events.ts';
import { newId } from '../../shared/ids.ts';
import type { Logger } from '../../shared/logger.ts';
import type { ParticipantIdentity, SfuRegistry } from '../../sfu/index.ts';
import { IngressSession, type IngressCloseReason, type IngressKind } from './session.ts';

/** What the sessions need from the SFU (SfuRegistry implements it). */
export type IngressSfu = Pick<SfuRegistry, 'join' | 'on' | 'off'>;

/** Whether a call takes new participants: null when there is no such call. */
export type CallAdmission = (callId: string) => Promise<'live' | 'ended' | null>;

export interface IngressSessionsOptions {
  sfu: IngressSfu;
  /** Consumes a signaling token (single use): the participant it admits, or null (unknown, expired, used). */
  resolveToken: (token: string) => Promise<ParticipantIdentity | null>;
  admission: CallAdmission;
  logger: Logger;
  /** A session whose transport has not reached DTLS 'connected' this long after its answer is closed. */
  connectTimeoutMs: number;
}

export interface IngressSessionsEvents {
  opened: [IngressSession];
  closed: [IngressSession, IngressCloseReason];
}

/**
 * Every open WHIP/WHEP session on this node. Admits a POST (call state, then the signaling token),
 * joins the session's participant to the SFU, finds a session for its Location, and closes sessions
 * whose transport failed, never connected, or whose call ended (docs/whip-whep.md).
 */
export class IngressSessions extends SafeEmitter<IngressSessionsEvents> {
  readonly #options: IngressSessionsOptions;
  readonly #logger: Logger;
  readonly #sessions = new Map<string, IngressSession>();
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(options: IngressSessionsOptions) {
    super((err, event) => options.logger.error({ err, event, component: 'ingress' }, 'ingress listener threw'));
    this.#options = options;
    this.#logger = options.logger.child({ component: 'ingress' });
    const connected = ({ transportId }: { transportId: string }): void => this.#byTransport(transportId)?.markConnected();
    const disconnected = ({ transportId }: { transportId: string }): void => this.#byTransport(transportId)?.close('dtls_failed');
    const callClosed = ({ callId }: { callId: string }): void => {
      for (const session of this.#list(callId)) session.close('call_ended');
    };
    options.sfu.on('transportconnected', connected);
    options.sfu.on('transportdisconnected', disconnected);
    options.sfu.on('callclosed', callClosed);
    this.#unsubscribe = () => {
      options.sfu.off('transportconnected', connected);
      options.sfu.off('transportdisconnected', disconnected);
      options.sfu.off('callclosed', callClosed);
    };
  }

  /** Open sessions of `kind` (the metrics gauge). */
  count(kind: IngressKind): number {
    let n = 0;
    for (const session of this.#sessions.values()) if (session.kind === kind) n++;
    return n;
  }

  /** The call exists (404) and is live (409 call_ended). */
  async admitCall(callId: string): Promise<void> {
    const state = await this.#options.admission(callId);
    if (state === null) throw new AppError('not_found', `Call ${callId} not found`);
    if (state === 'ended') throw new AppError('call_ended', 'The call has ended');
  }

  /**
   * Checks a POST: admitCall(), then consumes the token (401 when unknown, expired or used; 403
   * when it admits a participant of another call).
   */
  async admit(callId: string, token: string): Promise<ParticipantIdentity> {
    await this.admitCall(callId);
    return this.admitToken(callId, token);
  }

  async admitToken(callId: string, token: string): Promise<ParticipantIdentity> {
    const identity = await this.#options.resolveToken(token);
    if (!identity) throw new AppError('unauthorized', 'Invalid, expired or used signaling token');
    if (identity.callId !== callId) throw new AppError('forbidden', 'This signaling token is for another call');
    return identity;
  }

  /**
   * Joins `identity` to the SFU as a session of `kind`, then runs `negotiate` (which turns the offer
   * into transports, producers or consumers, and returns the answer). A failed negotiation closes the
   * session; a session that does not connect within the timeout is closed too.
   */
  async open<T>(kind: IngressKind, identity: ParticipantIdentity, token: string, negotiate: (session: IngressSession) => Promise<T>): Promise<{ session: IngressSession; result: T }> {
    if (this.#closed) throw new AppError('service_unavailable', 'The server is shutting down');
    const session = new IngressSession({ id: newId(), kind, identity, token, logger: this.#logger });
    this.#sessions.set(session.id, session);
    session.once('close', (reason) => {
      this.#sessions.delete(session.id);
      this.emitSafe('closed', session, reason);
    });
    try {
      session.attach(await this.#options.sfu.join(identity, session.sink));
      const result = await negotiate(session);
      if (session.closed) throw new AppError('call_ended', `The session closed while it was being set up (${session.closeReason})`);
      const timer = setTimeout(() => {
        if (!session.connected) session.close('ice_timeout');
      }, this.#options.connectTimeoutMs);
      timer.unref();
      session.once('close', () => clearTimeout(timer));
      this.emitSafe('opened', session);
      return { session, result };
    } catch (error) {
      session.close('negotiation_failed');
      throw error;
    }
  }

  /** The session at a Location: 404 when there is none (or it ended), 401 when `token` is not its token. */
  find(kind: IngressKind, callId: string, sessionId: string, token: string): IngressSession {
    const session = this.#sessions.get(sessionId);
    if (!session || session.kind !== kind || session.callId !== callId) throw new AppError('not_found', `No ${kind.toUpperCase()} session ${sessionId} in call ${callId}`);
    if (!session.authorizes(token)) throw new AppError('unauthorized', 'This is not the signaling token of this session');
    return session;
  }

  get(sessionId: string): IngressSession | undefined {
    return this.#sessions.get(sessionId);
  }

  /** Idempotent: every session closes (shutdown). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const session of [...this.#sessions.values()]) session.close('shutdown');
    this.#unsubscribe();
  }

  #list(callId: string): IngressSession[] {
    return [...this.#sessions.values()].filter((s) => s.callId === callId);
  }

  #byTransport(transportId: string): IngressSession | undefined {
    for (const session of this.#sessions.values()) if (session.transportIds.has(transportId)) return session;
    return undefined;
  }
}
