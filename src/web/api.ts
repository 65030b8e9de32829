/**
 * The REST calls the demo page makes (docs/api.md, README "Room calls"), against the page's own origin.
 * Errors arrive as {"error": {"code", "message"}} and are thrown as ApiError.
 */

export interface User {
  id: string;
  display_name: string;
  role?: string;
}

export interface RoomMember {
  user_id: string;
  display_name?: string;
  power: number;
}

export interface Room {
  id: string;
  name: string;
  created_by: string;
  members: RoomMember[];
  active_call_id: string | null;
}

export interface Participant {
  participant_id: string;
  user_id: string;
  display_name: string;
  joined_at: string;
  left_at: string | null;
  video_on: boolean;
  audio_on: boolean;
}

export interface Call {
  id: string;
  room_id: string;
  type: 'audio' | 'video';
  status: string;
  initiator_id: string;
  started_at?: string;
  ended_at?: string | null;
  participants?: Participant[];
}

export interface TurnCredentials {
  urls: string[];
  username: string;
  credential: string;
}

export interface CallTicket {
  call: Call;
  signaling_url: string;
  signaling_token: string;
  turn_credentials?: TurnCredentials;
}

export type SignalingTicket = Omit<CallTicket, 'call'>;

// ---- Paid link calls (README, "Paid link calls") -----------------------------------------------------

export type PaidCallStatus = 'pending' | 'waiting' | 'active' | 'ending' | 'completed' | 'cancelled' | 'failed';

/** A paid call as initiate, join, status, end and the user-socket events show it (src/calls/paid/paid-call-dto.ts). */
export interface PaidCall {
  id: string;
  kind: 'paid';
  status: PaidCallStatus;
  short_code: string;
  host: { id: string; display_name: string };
  guest_name: string | null;
  rate_per_minute: string;
  currency: string;
  window_size_minutes: number;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  end_reason: string | null;
  current_window: number | null;
  window_start_at: string | null;
  next_hold_at: string | null;
  elapsed_seconds: number | null;
  estimated_charge: string | null;
  duration_seconds: number | null;
  billed_minutes: number | null;
  total_charged: string | null;
  /** A refused next hold: the call ends at this instant (billing_error). */
  ends_at: string | null;
}

export interface PaidCallTicket {
  call: PaidCall;
  signaling_url: string;
  signaling_token: string;
  turn_credentials?: TurnCredentials;
}

export interface Link {
  id: string;
  short_code: string;
  host: { id: string; display_name: string };
  rate_per_minute: string;
  currency: string;
  window_size_minutes: number;
  max_uses: number | null;
  uses: number;
  expires_at: string | null;
  created_at: string;
  url: string;
}

export interface PublicLink {
  short_code: string;
  host: { id: string; display_name: string };
  rate_per_minute: string;
  currency: string;
  window_size_minutes: number;
  available: boolean;
  exhausted: boolean;
}

export interface CreateLinkInput {
  rate_per_minute: string;
  currency: string;
  window_size_minutes?: number;
  max_uses?: number;
  expires_at?: string;
}

export interface Availability {
  available: boolean;
  online: boolean;
  accepting_calls: boolean;
}

export const TERMINAL_PAID_STATUSES: ReadonlySet<string> = new Set(['completed', 'cancelled', 'failed']);

export function isPaidCall(call: unknown): call is PaidCall {
  return typeof call === 'object' && call !== null && (call as { kind?: unknown }).kind === 'paid';
}

interface ListEnvelope<T> {
  success: boolean;
  data: T[];
  pagination: { page: number; per_page: number; total: number; total_pages: number };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export class Api {
  token: string | null = null;

  constructor(private readonly base = '') {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (error) {
      throw new ApiError(0, 'network_error', `${method} ${path}: ${(error as Error).message}`);
    }
    const text = await response.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(response.status, error?.code ?? `http_${response.status}`, error?.message ?? `${method} ${path} answered ${response.status}`);
    }
    return json as T;
  }

  /** `role` is only sent when asked for (a demo host); servers whose demo login has no role field refuse it. */
  demoLogin(displayName: string, role?: 'host'): Promise<{ user: User; access_token: string; expires_at: string }> {
    return this.request('POST', '/v1/demo/login', { display_name: displayName, ...(role ? { role } : {}) });
  }

  async me(): Promise<User> {
    return (await this.request<{ user: User }>('GET', '/v1/users/me')).user;
  }

  async demoUsers(): Promise<User[]> {
    return (await this.request<ListEnvelope<User>>('GET', '/v1/demo/users')).data;
  }

  async rooms(): Promise<Room[]> {
    return (await this.request<ListEnvelope<Room>>('GET', '/v1/rooms?per_page=100')).data;
  }

  async createRoom(name: string, members: Array<{ user_id: string; power: number }>): Promise<Room> {
    return (await this.request<{ room: Room }>('POST', '/v1/rooms', { name, members })).room;
  }

  initiateCall(roomId: string, type: 'audio' | 'video'): Promise<CallTicket> {
    return this.request('POST', '/v1/calls/initiate', { room_id: roomId, type });
  }

  joinCall(callId: string): Promise<CallTicket> {
    return this.request('POST', `/v1/calls/${encodeURIComponent(callId)}/join`);
  }

  signalingToken(callId: string): Promise<SignalingTicket> {
    return this.request('POST', `/v1/calls/${encodeURIComponent(callId)}/token`);
  }

  async leaveCall(callId: string): Promise<Call> {
    return (await this.request<{ call: Call }>('POST', `/v1/calls/${encodeURIComponent(callId)}/leave`)).call;
  }

  /** Ends a call; a paid call answers with its billing summary (a PaidCall). */
  async endCall<C = Call>(callId: string): Promise<C> {
    return (await this.request<{ call: C }>('POST', `/v1/calls/${encodeURIComponent(callId)}/end`)).call;
  }

  /** Declines ringing (README "Room calls": `reject`). */
  async rejectCall(callId: string): Promise<void> {
    await this.request('POST', `/v1/calls/${encodeURIComponent(callId)}/reject`);
  }

  async getCall(callId: string): Promise<Call> {
    return (await this.request<{ call: Call }>('GET', `/v1/calls/${encodeURIComponent(callId)}`)).call;
  }

  // ---- Paid link calls

  async createLink(input: CreateLinkInput): Promise<Link> {
    return (await this.request<{ link: Link }>('POST', '/v1/links', input)).link;
  }

  async links(): Promise<Link[]> {
    return (await this.request<ListEnvelope<Link>>('GET', '/v1/links?per_page=100')).data;
  }

  /** The public view of a link (no token needed). */
  async publicLink(shortCode: string): Promise<PublicLink> {
    return (await this.request<{ link: PublicLink }>('GET', `/v1/links/${encodeURIComponent(shortCode)}`)).link;
  }

  /** A guest user and a token scoped to the link. */
  guestToken(shortCode: string, guestName: string): Promise<{ user: User; access_token: string; expires_at: string }> {
    return this.request('POST', `/v1/links/${encodeURIComponent(shortCode)}/guest`, { guest_name: guestName });
  }

  async availability(): Promise<Availability> {
    return (await this.request<{ availability: Availability }>('GET', '/v1/hosts/me/availability')).availability;
  }

  async setAvailability(available: boolean): Promise<Availability> {
    return (await this.request<{ availability: Availability }>('PUT', '/v1/hosts/me/availability', { available })).availability;
  }

  /** Pays (the window-1 hold) and starts a paid call: 402 payment_failed when the card is declined. */
  initiatePaidCall(shortCode: string, paymentMethodId: string, guestName?: string): Promise<PaidCallTicket> {
    return this.request('POST', '/v1/calls/initiate', { short_code: shortCode, payment_method_id: paymentMethodId, ...(guestName ? { guest_name: guestName } : {}) });
  }

  /** The host answers a paid call. */
  joinPaidCall(callId: string): Promise<PaidCallTicket> {
    return this.request('POST', `/v1/calls/${encodeURIComponent(callId)}/join`);
  }

  /** The call now, with the live meter. */
  async paidStatus(callId: string): Promise<PaidCall> {
    return (await this.request<{ call: PaidCall }>('GET', `/v1/calls/${encodeURIComponent(callId)}/status`)).call;
  }
}
