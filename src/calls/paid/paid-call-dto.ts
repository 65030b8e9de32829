/**
 * The paid call as the API shows it (README, "Paid link calls"): one shape for initiate, status, end and the user-socket
 * events, with the meter figures computed at the instant it is read.
 */
import { Type, type Static } from '@sinclair/typebox';
import { billingStatus, type BillingSnapshot } from '../../billing/index.ts';
import { formatMoney } from '../../shared/money.ts';
import { ShortCode } from './links.ts';

const Time = Type.String({ format: 'date-time' });
const NullableTime = Type.Union([Time, Type.Null()]);
const Money = Type.String({ pattern: '^-?\\d+\\.\\d{2}$' });

export const PaidCallSchema = Type.Object(
  {
    id: Type.String(),
    kind: Type.Literal('paid'),
    status: Type.Union(['pending', 'waiting', 'active', 'ending', 'completed', 'cancelled', 'failed'].map((s) => Type.Literal(s))),
    short_code: Type.String(),
    host: Type.Object({ id: Type.String(), display_name: Type.String() }),
    guest_name: Type.Union([Type.String(), Type.Null()]),
    rate_per_minute: Money,
    currency: Type.String(),
    window_size_minutes: Type.Integer(),
    created_at: Time,
    started_at: NullableTime,
    ended_at: NullableTime,
    end_reason: Type.Union([Type.String(), Type.Null()]),
    /** Meter figures, once the call is active (null before). */
    current_window: Type.Union([Type.Integer(), Type.Null()]),
    window_start_at: NullableTime,
    next_hold_at: NullableTime,
    elapsed_seconds: Type.Union([Type.Integer(), Type.Null()]),
    /** Elapsed minutes × rate, not rounded up. */
    estimated_charge: Type.Union([Money, Type.Null()]),
    /** Set once the meter stopped (ending and after). */
    duration_seconds: Type.Union([Type.Integer(), Type.Null()]),
    billed_minutes: Type.Union([Type.Integer(), Type.Null()]),
    total_charged: Type.Union([Money, Type.Null()]),
    /** A refused next hold: the call ends at this instant with billing_error. */
    ends_at: NullableTime,
  },
  { title: 'PaidCall' },
);
export type PaidCallDto = Static<typeof PaidCallSchema>;

export interface PaidCallFacts {
  callId: string;
  shortCode: string;
  host: { id: string; display_name: string };
  guestName: string | null;
  windowSizeMinutes: number;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function toPaidCallDto(facts: PaidCallFacts, s: BillingSnapshot, nowMs: number): PaidCallDto {
  const meter = billingStatus(s, nowMs);
  const stopped = s.settlement !== null;
  const cutoffEnd = s.cutoffWindow !== null && s.startedAtMs !== null ? s.startedAtMs + s.cutoffWindow * s.windowSeconds * 1000 : null;
  return {
    id: facts.callId,
    kind: 'paid',
    status: s.state,
    short_code: facts.shortCode,
    host: facts.host,
    guest_name: facts.guestName,
    rate_per_minute: formatMoney(s.rateMinor),
    currency: s.currency,
    window_size_minutes: facts.windowSizeMinutes,
    created_at: new Date(s.createdAtMs).toISOString(),
    started_at: iso(s.startedAtMs),
    ended_at: iso(s.endedAtMs),
    end_reason: s.endReason,
    current_window: meter?.currentWindow ?? null,
    window_start_at: iso(meter?.windowStartAtMs ?? null),
    next_hold_at: iso(meter?.nextHoldAtMs ?? null),
    elapsed_seconds: meter?.elapsedSeconds ?? null,
    estimated_charge: meter ? formatMoney(meter.estimatedChargeMinor) : null,
    duration_seconds: stopped ? s.settlement!.activeSeconds : s.state === 'cancelled' ? 0 : null,
    billed_minutes: s.billedMinutes,
    total_charged: s.totalChargedMinor === null ? null : formatMoney(s.totalChargedMinor),
    ends_at: s.state === 'active' ? iso(cutoffEnd) : null,
  };
}

export const InitiatePaidCallBody = Type.Object(
  {
    short_code: ShortCode,
    payment_method_id: Type.String({ minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9_]+$' }),
    guest_name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  },
  { additionalProperties: false },
);
export type InitiatePaidCallInput = Static<typeof InitiatePaidCallBody>;
