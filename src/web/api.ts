/**
 * The REST calls the demo page makes (SPEC §5, §6.3), against the page's own origin.
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

  demoLogin(displayName: string): Promise<{ user: User; access_token: string; expires_at: string }> {
    return this.request('POST', '/v1/demo/login', { display_name: displayName });
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

  async endCall(callId: string): Promise<Call> {
    return (await this.request<{ call: Call }>('POST', `/v1/calls/${encodeURIComponent(callId)}/end`)).call;
  }

  /** Declines ringing (SPEC §6.3 `reject`). */
  async rejectCall(callId: string): Promise<void> {
    await this.request('POST', `/v1/calls/${encodeURIComponent(callId)}/reject`);
  }

  async getCall(callId: string): Promise<Call> {
    return (await this.request<{ call: Call }>('GET', `/v1/calls/${encodeURIComponent(callId)}`)).call;
  }
}
