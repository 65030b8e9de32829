import { timingSafeEqual } from 'node:crypto';
import { SignalCloseCode, type NotificationPayloads, type NotificationType, type RequestType, type ResponsePayloads } from '../../protocol/signaling.ts';
import { AppError } from '../../shared/errors.ts';
import { SafeEmitter } from '../../shared/events.ts';
import { sha256Hex } from '../../shared/ids.ts';
import type { Logger } from '../../shared/logger.ts';
import type { ParticipantIdentity, PeerConnection, PeerSink, SfuRequestPayload } from '../../sfu/types.ts';

export type IngressKind = 'whip' | 'whep';

/** Why a WHIP/WHEP session ended (docs/whip-whep.md, "Session lifetime"). */
export type IngressCloseReason =
  | 'deleted' // DELETE on its Location
  | 'call_ended'
  | 'removed' // a moderator removed the participant, or it left
  | 'replaced' // the same participant connected again (SDK socket or another session)
  | 'media_interrupted' // the call's media worker died
  | 'dtls_failed' // its transport's DTLS failed or closed
  | 'ice_timeout' // ICE/DTLS did not connect in time
  | 'negotiation_failed' // the offer could not be applied
  | 'shutdown';

/** A notification the SFU sent this session's participant (WHEP follows the speaker with them). */
export type IngressNotification = { [T in NotificationType]: { type: T; payload: NotificationPayloads[T] } }[NotificationType];

export interface IngressSessionEvents {
  /** Every SFU notification for this participant, `welcome` first. */
  notification: [IngressNotification];
  close: [IngressCloseReason];
}

const REASON_BY_CLOSE_CODE: Record<number, IngressCloseReason> = {
  [SignalCloseCode.callEnded]: 'call_ended',
  [SignalCloseCode.replaced]: 'replaced',
  [SignalCloseCode.left]: 'removed',
  [SignalCloseCode.reconnect]: 'media_interrupted',
  [SignalCloseCode.goingAway]: 'shutdown',
};

/**
 * One WHIP publisher or WHEP player: a participant of its call like an SDK client, joined through
 * the SFU's PeerConnection with a sink of its own (no socket). The signaling token its POST consumed
 * is kept as a hash: it is the only credential for the session's Location. close() is idempotent and
 * makes the participant leave the call (its producers close, others get producer_closed).
 */
export class IngressSession extends SafeEmitter<IngressSessionEvents> {
  readonly id: string;
  readonly kind: IngressKind;
  readonly identity: ParticipantIdentity;
  /** Transports this session created (the registry matches the SFU's DTLS events against them). */
  readonly transportIds = new Set<string>();
  readonly logger: Logger;
  readonly #tokenHash: Buffer;
  #conn: PeerConnection | null = null;
  #welcome: NotificationPayloads['welcome'] | null = null;
  #connected = false;
  #closed: IngressCloseReason | null = null;

  constructor(options: { id: string; kind: IngressKind; identity: ParticipantIdentity; token: string; logger: Logger }) {
    super((err, event) => options.logger.error({ err, event }, 'ingress session listener threw'));
    this.id = options.id;
    this.kind = options.kind;
    this.identity = options.identity;
    this.#tokenHash = Buffer.from(sha256Hex(options.token), 'hex');
    this.logger = options.logger.child({ ingress: options.kind, session: options.id, callId: options.identity.callId, participantId: options.identity.participantId });
  }

  get callId(): string {
    return this.identity.callId;
  }

  get participantId(): string {
    return this.identity.participantId;
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  get closeReason(): IngressCloseReason | null {
    return this.#closed;
  }

  /** What the SFU said on join: the router's capabilities and the peers already there with their producers. */
  get welcome(): NotificationPayloads['welcome'] | null {
    return this.#welcome;
  }

  /** DTLS reached 'connected' on one of its transports. */
  get connected(): boolean {
    return this.#connected;
  }

  /** Whether `token` is the one this session's POST consumed (the bearer for DELETE/PATCH). */
  authorizes(token: string): boolean {
    return timingSafeEqual(Buffer.from(sha256Hex(token), 'hex'), this.#tokenHash);
  }

  /** Where the SFU writes to this participant: notifications become events; a close closes the session. */
  readonly sink: PeerSink = {
    notify: <T extends NotificationType>(type: T, payload: NotificationPayloads[T]): void => {
      if (type === 'welcome') this.#welcome = payload as NotificationPayloads['welcome'];
      if (!this.closed) this.emitSafe('notification', { type, payload } as IngressNotification);
    },
    close: (code: number): void => {
      this.#conn = null; // the SFU already let go of this participant
      this.close(REASON_BY_CLOSE_CODE[code] ?? 'removed');
    },
  };

  attach(conn: PeerConnection): void {
    if (this.closed) {
      conn.close();
      return;
    }
    this.#conn = conn;
  }

  /** One SFU request as this participant; invalid_state once the session closed. */
  async request<T extends RequestType>(type: T, payload: SfuRequestPayload<T>): Promise<ResponsePayloads[T]> {
    const conn = this.#conn;
    if (this.closed || !conn || conn.stale) throw new AppError('invalid_state', 'This session has ended');
    return conn.request(type, payload);
  }

  markConnected(): void {
    this.#connected = true;
  }

  /** Idempotent: the participant leaves the call (its transports close with it). */
  close(reason: IngressCloseReason): void {
    if (this.closed) return;
    this.#closed = reason;
    const conn = this.#conn;
    this.#conn = null;
    if (conn && !conn.stale) {
      // leave removes the participant now (peer_left for the others), not after the reconnect grace.
      conn.request('leave', {}).catch(() => conn.close());
    }
    this.logger.info({ reason }, 'ingress session closed');
    this.emitSafe('close', reason);
    this.removeAllListeners('notification');
  }
}
