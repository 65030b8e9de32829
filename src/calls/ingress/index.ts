export { IngressSessions, type CallAdmission, type IngressSessionsOptions, type IngressSfu } from './registry.ts';
export { IngressSession, type IngressCloseReason, type IngressKind, type IngressNotification } from './session.ts';
export { createIngressMetrics } from './metrics.ts';
export { IngressService, type IngressNegotiator, type IngressOptions } from './service.ts';
export { whipNegotiator } from './whip.ts';
export { whepNegotiator } from './whep.ts';
