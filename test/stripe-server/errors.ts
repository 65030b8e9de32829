/**
 * Stripe's error objects: HTTP status plus `{"error": {type, code?, decline_code?, message, param?,
 * payment_intent?, charge?, doc_url?, request_log_url?}}`. The official SDK turns `type` into its error
 * classes (card_error → StripeCardError, invalid_request_error → StripeInvalidRequestError, api_error →
 * StripeAPIError, idempotency_error → StripeIdempotencyError; 401 → StripeAuthenticationError whatever the type).
 */

export type StripeErrorType =
  | 'api_error'
  | 'card_error'
  | 'idempotency_error'
  | 'invalid_request_error'
  | 'rate_limit_error';

export interface StripeErrorObject {
  type: StripeErrorType;
  message: string;
  code?: string;
  decline_code?: string;
  param?: string;
  doc_url?: string;
  charge?: string;
  payment_intent?: object;
  payment_method?: object;
  request_log_url?: string;
}

/** Thrown by the endpoints; the server writes it as Stripe does. */
export class StripeApiError extends Error {
  readonly status: number;
  readonly error: StripeErrorObject;

  constructor(status: number, error: StripeErrorObject) {
    super(error.message);
    this.status = status;
    this.error = error;
  }

  body(): { error: StripeErrorObject } {
    return { error: this.error };
  }
}

const docs = (code: string) => `https://stripe.com/docs/error-codes/${code.replace(/_/g, '-')}`;

export function invalidRequest(message: string, extra: Partial<StripeErrorObject> = {}, status = 400): StripeApiError {
  return new StripeApiError(status, {
    type: 'invalid_request_error',
    message,
    ...(extra.code ? { doc_url: docs(extra.code) } : {}),
    ...extra,
  });
}

export function unknownParameter(name: string): StripeApiError {
  return invalidRequest(`Received unknown parameter: ${name}`, { param: name, code: 'parameter_unknown' });
}

export function missingParameter(name: string): StripeApiError {
  return invalidRequest(`Missing required param: ${name}.`, { param: name, code: 'parameter_missing' });
}

export function invalidInteger(name: string, value: unknown): StripeApiError {
  return invalidRequest(`Invalid integer: ${String(value)}`, { param: name, code: 'parameter_invalid_integer' });
}

/** An unknown object: 404 for the object's own URL, 400 when a parameter names it (`customer=cus_…`). */
export function noSuch(kind: string, id: string, param: string, status = 404): StripeApiError {
  return invalidRequest(`No such ${kind}: '${id}'`, { param, code: 'resource_missing' }, status);
}

export function unexpectedState(
  action: 'captured' | 'canceled' | 'confirmed',
  pi: { status: string },
  allowed: string[],
): StripeApiError {
  const verb = action === 'canceled' ? 'cancel' : action === 'captured' ? 'capture' : 'confirm';
  return invalidRequest(
    `You cannot ${verb} this PaymentIntent because it has a status of ${pi.status}. ` +
      `Only a PaymentIntent with one of the following statuses may be ${action}: ${allowed.join(', ')}.`,
    { code: 'payment_intent_unexpected_state', payment_intent: pi },
  );
}

export function unauthorized(message: string): StripeApiError {
  return new StripeApiError(401, { type: 'invalid_request_error', message });
}

export function idempotencyMismatch(key: string): StripeApiError {
  return new StripeApiError(400, {
    type: 'idempotency_error',
    message:
      `Keys for idempotent requests can only be used with the same parameters they were first used with. ` +
      `Try using a key other than '${key}' if you meant to execute a different request.`,
  });
}

export function apiError(): StripeApiError {
  return new StripeApiError(500, { type: 'api_error', message: 'An unknown error occurred' });
}

export function unrecognizedUrl(method: string, path: string): StripeApiError {
  return invalidRequest(
    `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
    {},
    404,
  );
}

/** The decline a test card (or a `decline` fault) produces; messages as Stripe words them. */
export interface Decline {
  code: string;
  decline_code?: string;
  message: string;
}

export const DECLINES: Record<string, Decline> = {
  generic_decline: { code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' },
  insufficient_funds: {
    code: 'card_declined',
    decline_code: 'insufficient_funds',
    message: 'Your card has insufficient funds.',
  },
  lost_card: { code: 'card_declined', decline_code: 'lost_card', message: 'Your card was declined.' },
  stolen_card: { code: 'card_declined', decline_code: 'stolen_card', message: 'Your card was declined.' },
  expired_card: { code: 'expired_card', message: 'Your card has expired.' },
  incorrect_cvc: { code: 'incorrect_cvc', message: "Your card's security code is incorrect." },
  processing_error: {
    code: 'processing_error',
    message: 'An error occurred while processing your card. Try again in a little bit.',
  },
};

export function declineFor(declineCode: string): Decline {
  return DECLINES[declineCode] ?? { code: 'card_declined', decline_code: declineCode, message: 'Your card was declined.' };
}
