/**
 * The one interface every payment provider implements (stripe, test). Amounts are integer minor
 * units; every mutating call carries the caller's deterministic idempotency key
 * (src/billing/idempotency.ts), so a call repeated after a crash is answered once.
 *
 * Errors: PaymentDeclined (the card said no; final), ProviderUnavailable (network, 5xx, rate
 * limit: retry later with the same key), AppError invalid_state (the hold is not in a state that
 * allows it) and AppError idempotency_conflict (a key reused with other arguments).
 */
import { AppError } from '../../shared/errors.ts';

export interface PlaceHoldInput {
  callId: string;
  window: number;
  amountMinor: number;
  /** Lowercase ISO code. */
  currency: string;
  paymentMethodId: string;
  customerRef?: string | null;
  /** Destination charge to a host's Connect account, keeping the platform fee. */
  destination?: { accountId: string; applicationFeeMinor: number } | null;
  idempotencyKey: string;
}

export interface CaptureInput {
  holdId: string;
  /** 1 ≤ amount ≤ the hold's amount; the rest of the hold is released by the capture. */
  amountMinor: number;
  idempotencyKey: string;
}

export interface ReleaseInput {
  holdId: string;
  idempotencyKey: string;
}

export type ProviderHoldStatus = 'held' | 'captured' | 'released' | 'failed';

export interface PaymentProvider {
  placeHold(input: PlaceHoldInput): Promise<{ holdId: string; status: 'held' }>;
  capture(input: CaptureInput): Promise<{ captured: number }>;
  release(input: ReleaseInput): Promise<void>;
  /** For the reconciler: where a hold stands now. */
  retrieve(holdId: string): Promise<{ status: ProviderHoldStatus; amountCapturedMinor: number }>;
}

/** The card was declined: a 402 payment_failed carrying the provider's decline code. */
export class PaymentDeclined extends AppError {
  readonly declineCode: string;
  constructor(declineCode: string, message = 'Your card was declined.') {
    super('payment_failed', message, { decline_code: declineCode });
    this.name = 'PaymentDeclined';
    this.declineCode = declineCode;
  }
}

/** The provider could not be reached or answered 5xx/429: retry later with the same idempotency key. */
export class ProviderUnavailable extends AppError {
  readonly retryable = true;
  constructor(message = 'The payment provider is unavailable', options: { cause?: unknown } = {}) {
    super('service_unavailable', message);
    this.name = 'ProviderUnavailable';
    if (options.cause !== undefined) this.cause = options.cause;
  }
}

/** Only ProviderUnavailable is worth retrying; everything else will fail the same way again. */
export function isRetryable(error: unknown): boolean {
  return error instanceof ProviderUnavailable;
}
