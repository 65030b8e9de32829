import type { types } from 'mediasoup';
import { AppError } from '../../shared/errors.ts';
import type { IngressSessions } from './registry.ts';
import type { IngressKind, IngressSession } from './session.ts';

/** What a POST may ask besides its offer (WHEP: `?participant=`). */
export interface IngressOptions {
  participant?: string;
}

/**
 * One kind's SDP work. `check` runs before the signaling token is consumed, so an offer that
 * cannot be used costs the client no token; `apply` runs on the joined session and returns the answer.
 */
export interface IngressNegotiator<Checked = unknown> {
  /** Throws validation_failed (naming the m-line) for an offer the call's router cannot take. */
  check(offer: string, options: IngressOptions, router: types.RtpCapabilities): Checked;
  apply(session: IngressSession, checked: Checked, options: IngressOptions): Promise<string>;
}

/** The WHIP and WHEP endpoints' one entry (src/http/routes/whip.ts and whep.ts; docs/whip-whep.md). */
export class IngressService {
  constructor(
    readonly sessions: IngressSessions,
    private readonly negotiators: Partial<Record<IngressKind, IngressNegotiator>>,
    /** The call's router capabilities (its SFU session is prepared on the way). */
    private readonly routerCapabilities: (callId: string) => Promise<types.RtpCapabilities>,
  ) {}

  /** A POST: checks the offer and the call, consumes the token, joins and negotiates. */
  async open(kind: IngressKind, callId: string, token: string, offer: string, options: IngressOptions = {}): Promise<{ sessionId: string; answer: string }> {
    const negotiator = this.negotiators[kind];
    if (offer.trim() === '') throw new AppError('validation_failed', 'The body must be an SDP offer', { errors: [{ in: 'body', path: '/', message: 'empty SDP' }] });
    if (!negotiator) throw new AppError('service_unavailable', `${kind.toUpperCase()} is not available on this server`);
    await this.sessions.admitCall(callId);
    const checked = negotiator.check(offer, options, await this.routerCapabilities(callId));
    const identity = await this.sessions.admitToken(callId, token);
    const { session, result } = await this.sessions.open(kind, identity, token, (s) => negotiator.apply(s, checked, options));
    return { sessionId: session.id, answer: result };
  }

  /** A DELETE on a Location: that session ends (404 when there is none, 401 for another token). */
  end(kind: IngressKind, callId: string, sessionId: string, token: string): void {
    this.sessions.find(kind, callId, sessionId, token).close('deleted');
  }
}
