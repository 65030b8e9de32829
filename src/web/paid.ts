/**
 * Paid link calls on the demo page (README, "Paid link calls"): the live meter (GET /v1/calls/{id}/status
 * once a second), how a paid call's figures are merged from the several places they arrive (status
 * polls, the end answer, call.updated / call.ended on the user socket, call_status over signaling),
 * and the text the meter and the summary show.
 */
import { TERMINAL_PAID_STATUSES, type Api, type PaidCall } from './api.ts';

/** How far along the lifecycle a status is: a paid call's figures never move backwards. */
const STATUS_RANK: Record<string, number> = { pending: 0, waiting: 1, active: 2, ending: 3, completed: 4, cancelled: 4, failed: 4 };

export function isTerminal(call: Pick<PaidCall, 'status'> | null | undefined): boolean {
  return !!call && TERMINAL_PAID_STATUSES.has(call.status);
}

/**
 * The newer of two views of the same call: `next` unless it is further back in the lifecycle than
 * `current` (a status poll answered after the end answer must not bring the meter back).
 */
export function newerCall(current: PaidCall | null, next: PaidCall): PaidCall {
  if (!current || current.id !== next.id) return next;
  return (STATUS_RANK[next.status] ?? 0) >= (STATUS_RANK[current.status] ?? 0) ? next : current;
}

/**
 * Polls a paid call's status every `intervalMs` (one request at a time) and reports each answer; it
 * stops by itself once the call is completed, cancelled or failed.
 */
export class PaidMeter {
  private timer: number | null = null;
  private stopped = false;
  /** Answers received (for the tests and the console). */
  polls = 0;

  constructor(
    private readonly api: Api,
    readonly callId: string,
    private readonly onCall: (call: PaidCall) => void,
    private readonly intervalMs = 1000,
  ) {}

  get running(): boolean {
    return !this.stopped;
  }

  start(): void {
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    this.timer = null;
    try {
      const call = await this.api.paidStatus(this.callId);
      if (this.stopped) return;
      this.polls++;
      this.onCall(call);
      if (isTerminal(call)) {
        this.stop();
        return;
      }
    } catch (error) {
      // A blip (network, restart) must not stop the meter; a call that is gone for good will not come back.
      const status = (error as { status?: number }).status;
      console.warn('paid call status failed', error);
      if (status === 403 || status === 404) {
        this.stop();
        return;
      }
    }
    if (!this.stopped) this.timer = window.setTimeout(() => void this.tick(), this.intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Text

export function money(amount: string | null | undefined, currency: string): string {
  return amount === null || amount === undefined ? '–' : `${amount} ${currency.toUpperCase()}`;
}

/** 75 → "1:15", 3675 → "1:01:15". */
export function clock(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

export function timeOfDay(iso: string | null | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
}

export function rateText(call: Pick<PaidCall, 'rate_per_minute' | 'currency'>): string {
  return `${money(call.rate_per_minute, call.currency)}/min`;
}

export function windowText(minutes: number): string {
  return `billed in ${minutes}-minute window${minutes === 1 ? '' : 's'}, by the started minute`;
}

/** The meter's headline for this side of the call. */
export function meterHeadline(call: PaidCall, role: 'host' | 'guest'): string {
  switch (call.status) {
    case 'pending':
      return 'Placing the payment hold…';
    case 'waiting':
      return role === 'guest' ? `Waiting for ${call.host.display_name} to join…` : `Connecting to ${call.guest_name ?? 'the guest'}…`;
    case 'active':
      return 'Call in progress';
    case 'ending':
      return 'Ending: settling the payment…';
    case 'completed':
      return 'Call completed';
    case 'cancelled':
      return 'Call cancelled';
    case 'failed':
      return 'Call failed (billing error)';
    default:
      return call.status;
  }
}

/** The billing warning to show, if any: from /status (`ends_at`) or from a signaling `call_status`. */
export function billingWarning(call: PaidCall | null, signaled: { warning?: string; ends_at?: unknown } | null): string | null {
  const endsAt = call?.ends_at ?? (typeof signaled?.ends_at === 'string' ? signaled.ends_at : null);
  if (!endsAt && !signaled?.warning) return null;
  if (call && call.status !== 'active' && call.status !== 'waiting') return null;
  const when = endsAt ? ` at ${timeOfDay(endsAt)}` : ' at the end of this window';
  return `Payment for the next window was declined (${signaled?.warning ?? 'billing_error'}): the call ends${when}.`;
}

export function endReasonText(reason: string | null): string {
  switch (reason) {
    case null:
      return '–';
    case 'user_ended':
      return 'the guest ended the call';
    case 'host_ended':
      return 'the host ended the call';
    case 'host_rejected':
      return 'the host declined the call';
    case 'billing_error':
      return 'the next window could not be paid';
    case 'join_timeout':
      return 'the host did not answer in time';
    case 'media_lost':
      return 'the connection was lost';
    case 'link_expired':
      return 'the link expired';
    default:
      return reason.replaceAll('_', ' ');
  }
}
