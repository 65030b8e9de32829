/** Billing of paid calls: the state machine, the meter, idempotency keys and payment providers. */
export * from './model.ts';
export { TRANSITIONS, transition, endEventFor } from './machine.ts';
export { DEFAULT_GRACE_SECONDS, DEFAULT_JOIN_TIMEOUT_SECONDS, billingStatus } from './lifecycle.ts';
export type { TransitionRule, TransitionResult } from './machine.ts';
export * from './meter.ts';
export { heldThroughSeconds } from './holds.ts';
export * from './idempotency.ts';
export * from './providers/types.ts';
export { TestPaymentProvider, TEST_CARDS, DECLINE_AFTER_FIRST_HOLD_CARD } from './providers/test.ts';
export type { TestHold } from './providers/test.ts';
