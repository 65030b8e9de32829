/** Every error a client can see. The code and HTTP status travel together and are mapped at the edge only. */
export const errorStatus = {
  validation_failed: 400,
  unauthorized: 401,
  payment_failed: 402,
  forbidden: 403,
  recording_disabled: 403,
  not_found: 404,
  link_not_found: 404,
  method_not_allowed: 405,
  invalid_state: 409,
  link_exhausted: 409,
  call_ended: 409,
  idempotency_conflict: 409,
  request_in_progress: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  host_unavailable: 503,
  media_unavailable: 503,
  service_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  /** Extra response headers, e.g. Retry-After on rate_limited. */
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.status = errorStatus[code];
    this.details = details;
    this.headers = headers;
  }

  toBody(): ErrorBody {
    return {
      error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) },
    };
  }
}

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError;
}

/** Anything that is not an AppError becomes an opaque 500: internals never leak to clients. */
export function toAppError(value: unknown): AppError {
  if (isAppError(value)) return value;
  return new AppError('internal_error', 'Internal server error');
}
