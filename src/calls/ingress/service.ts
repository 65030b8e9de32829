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
  check(offer: string, options: IngressOptions): Checked;
  apply(session: IngressSession, checked: Checked, options: IngressOptions): Promise<string>;
}

/** The WHIP and WHEP endpoints' one entry (src/http/routes/whip.ts and whep.ts; docs/whip-whep.md). */
export class IngressService {
  constructor(
    readonly sessions: IngressSessions,
    private readonly negotiators: Partial<Record<IngressKind, IngressNegotiator>>,
  ) {}

  /** A POST: checks the offer and the call, consumes the token, joins and negotiates. */
  async open(kind: IngressKind, callId: string, token: string, offer: string, options: IngressOptions = {}): Promise<{ sessionId: string; answer: string }> {
    const negotiator = this.negotiators[kind];
    if (offer.trim() === '') throw new AppError('validation_failed', 'The body must be an SDP offer', { errors: [{ in: 'body', path: '/', message: 'empty SDP' }] });
    const checked = negotiator?.check(offer, options);
    const identity = await this.sessions.admit(callId, token);
    if (!negotiator) throw new AppError('service_unavailable', `${kind.toUpperCase()} is not available on this server`);
    const { session, result } = await this.sessions.open(kind, identity, token, (s) => negotiator.apply(s, checked, options));
    return { sessionId: session.id, answer: result };
  }

  /** A DELETE on a Location: that session ends (404 when there is none, 401 for another token). */
  end(kind: IngressKind, callId: string, sessionId: string, token: string): void {
    this.sessions.find(kind, callId, sessionId, token).close('deleted');
  }
}
