import type { IngressService } from '../../calls/ingress/index.ts';
import type { AnyRoute } from '../types.ts';
import { ingressRoutes } from './whip.ts';

/** WHEP playback of the active speaker, or of `?participant=` (docs/whip-whep.md). */
export function whepRoutes(deps: { ingress: IngressService }): AnyRoute[] {
  return ingressRoutes('whep', deps.ingress, {
    publishes: "WHEP: play the call's active speaker (or ?participant=) from a recvonly SDP offer (bearer: a signaling token)",
    query: true,
  });
}
