/**
 * The REST calls the load tester makes (docs/api.md): users and their tokens with the operator API
 * key, rooms, room calls and their signaling tokens. Failures that mean "this target cannot be
 * load-tested" (unreachable, the key refused) are TargetErrors, which the command turns into exit 2.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export class TargetError extends Error {
  override name = 'TargetError';
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface JoinAnswer {
  call: { id: string };
  signaling_url: string;
  signaling_token: string;
}

/** 429s are retried after their Retry-After, this many times (token minting is rate-limited per IP). */
const MAX_RATE_LIMITED_RETRIES = 20;
const REQUEST_TIMEOUT_MS = 15_000;

export class CallplaneApi {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly apiKey: string,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  /** Checks that the target answers and takes the key: a TargetError says why not. */
  async verify(): Promise<void> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/healthz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } catch (error) {
      throw new TargetError(`cannot reach ${this.baseUrl}: ${causeOf(error)}`);
    }
    if (!response.ok) throw new TargetError(`${this.baseUrl}/healthz answered ${response.status}: is this a callplane server?`);
    try {
      await this.request('GET', '/v1/users?per_page=1', { apiKey: true });
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        throw new TargetError(`the API key was refused by ${this.baseUrl} (${error.status} ${error.code}): pass the operator key with --api-key or CALLPLANE_API_KEY`);
      }
      throw error;
    }
  }

  async createUser(displayName: string): Promise<string> {
    const body = await this.request<{ user: { id: string } }>('POST', '/v1/users', { apiKey: true, body: { display_name: displayName } });
    return body.user.id;
  }

  async mintToken(userId: string): Promise<string> {
    const body = await this.request<{ access_token: string }>('POST', '/v1/auth/token', { apiKey: true, body: { user_id: userId } });
    return body.access_token;
  }

  async createRoom(name: string, memberIds: string[], ownerToken: string): Promise<string> {
    const members = memberIds.map((user_id) => ({ user_id, power: 0 }));
    const body = await this.request<{ room: { id: string } }>('POST', '/v1/rooms', { token: ownerToken, body: { name, members } });
    return body.room.id;
  }

  initiate(roomId: string, type: 'audio' | 'video', token: string): Promise<JoinAnswer> {
    return this.request<JoinAnswer>('POST', '/v1/calls/initiate', { token, body: { room_id: roomId, type } });
  }

  join(callId: string, token: string): Promise<JoinAnswer> {
    return this.request<JoinAnswer>('POST', `/v1/calls/${callId}/join`, { token });
  }

  async endCall(callId: string): Promise<void> {
    await this.request('POST', `/v1/calls/${callId}/end`, { apiKey: true, body: {} }).catch((error: unknown) => {
      if (!(error instanceof ApiError && error.code === 'call_ended')) throw error;
    });
  }

  async deleteRoom(roomId: string): Promise<void> {
    await this.request('DELETE', `/v1/rooms/${roomId}`, { apiKey: true });
  }

  /** The target's Prometheus text, or null when it does not answer. */
  async metrics(): Promise<string | null> {
    try {
      const response = await fetch(`${this.baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
      return response.ok ? await response.text() : null;
    } catch {
      return null;
    }
  }

  async request<T = unknown>(method: string, path: string, init: { apiKey?: boolean; token?: string; body?: unknown }): Promise<T> {
    const headers: Record<string, string> = {};
    if (init.apiKey) headers['x-api-key'] = this.apiKey;
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(`${this.baseUrl}${path}`, {
          method,
          headers,
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        });
      } catch (error) {
        throw new TargetError(`${method} ${path}: cannot reach ${this.baseUrl}: ${causeOf(error)}`);
      }
      const text = await response.text();
      if (response.status === 429 && attempt < MAX_RATE_LIMITED_RETRIES) {
        const seconds = Number(response.headers.get('retry-after') ?? '1');
        await sleep(Math.min(60, Number.isFinite(seconds) && seconds > 0 ? seconds : 1) * 1000);
        continue;
      }
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: reported below with the status
      }
      if (!response.ok) {
        const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
        throw new ApiError(response.status, error?.code ?? 'http_error', `${method} ${path}: ${response.status} ${error?.code ?? ''} ${error?.message ?? text.slice(0, 200)}`.trim());
      }
      return parsed as T;
    }
  }
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
