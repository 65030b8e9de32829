/* eslint-disable @typescript-eslint/no-explicit-any -- frames read off the wire are JSON of many shapes */
/**
 * The reconnect storm of docs/known-issues.md ("A socket could be dropped right after its upgrade"):
 * sequential cycles of a refused socket (4001) followed by a good reconnect that must get its first
 * server frame, answer one round trip and close cleanly. Used by test/integration/ws-storm.test.ts
 * and by scripts/bench/ws-storm.ts (the same storm outside tap). No tap import here.
 */
import WebSocket from 'ws';

/** A step that never comes is a drop, not a hang: the storm stays bounded. */
const STEP_TIMEOUT_MS = 10_000;

export interface StormResult {
  cycles: number;
  /** A refused socket that did not close with 4001 (e.g. 1006). */
  refusalDrops: number;
  /** A good socket closed with 1006 or before its first frame, or that did not answer the round trip. */
  drops: number;
  /** The first few failures, for the report. */
  failures: string[];
  ms: number;
}

export interface StormCycle {
  /** A URL the server must refuse with 4001. */
  refusedUrl(): Promise<string> | string;
  /** A URL the server must accept. */
  goodUrl(): Promise<string> | string;
  /** The server frame every accepted socket gets first (welcome, presence, hello). */
  isFirstFrame(frame: any): boolean;
  /** A frame to send once the first frame came, and how its answer is recognised. */
  probe: { frame: object; isAnswer(frame: any): boolean };
}

interface Outcome {
  ok: boolean;
  detail: string;
}

/** Waits for one socket event (or the step timeout) and says what happened. */
function step(ws: WebSocket, want: 'close' | ((frame: any) => boolean)): Promise<{ kind: 'frame'; frame: any } | { kind: 'close'; code: number; reason: string } | { kind: 'timeout' }> {
  return new Promise((resolve) => {
    const done = (value: Parameters<typeof resolve>[0]) => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      resolve(value);
    };
    const onMessage = (data: WebSocket.RawData) => {
      if (want === 'close') return;
      const frame = JSON.parse(String(data));
      if (want(frame)) done({ kind: 'frame', frame });
    };
    const onClose = (code: number, reason: Buffer) => done({ kind: 'close', code, reason: String(reason) });
    const timer = setTimeout(() => done({ kind: 'timeout' }), STEP_TIMEOUT_MS);
    ws.on('message', onMessage);
    ws.on('close', onClose);
  });
}

async function refused(url: string): Promise<Outcome> {
  const ws = new WebSocket(url);
  ws.on('error', () => undefined);
  const closed = await step(ws, 'close');
  if (closed.kind !== 'close') return { ok: false, detail: 'refused socket never closed' };
  return closed.code === 4001 ? { ok: true, detail: '' } : { ok: false, detail: `refused socket closed with ${closed.code} (${closed.reason})` };
}

async function accepted(url: string, cycle: StormCycle): Promise<Outcome> {
  const ws = new WebSocket(url);
  ws.on('error', () => undefined);
  // Listeners are attached before the upgrade completes: no frame can be missed.
  const first = await step(ws, (f) => cycle.isFirstFrame(f));
  if (first.kind !== 'frame') {
    ws.terminate();
    return { ok: false, detail: first.kind === 'close' ? `closed with ${first.code} before the first frame` : 'no first frame' };
  }
  const answer = step(ws, (f) => cycle.probe.isAnswer(f));
  ws.send(JSON.stringify(cycle.probe.frame));
  const answered = await answer;
  if (answered.kind !== 'frame') {
    ws.terminate();
    return { ok: false, detail: answered.kind === 'close' ? `closed with ${answered.code} after the first frame` : 'no answer to the probe' };
  }
  const closing = step(ws, 'close');
  ws.close(1000, 'storm cycle done');
  const closed = await closing;
  if (closed.kind !== 'close') return { ok: false, detail: 'clean close never completed' };
  return closed.code === 1000 ? { ok: true, detail: '' } : { ok: false, detail: `clean close ended with ${closed.code}` };
}

/** Runs `cycles` refusal → reconnect cycles one after the other. */
export async function runStorm(cycles: number, cycle: StormCycle): Promise<StormResult> {
  const started = performance.now();
  const result: StormResult = { cycles, refusalDrops: 0, drops: 0, failures: [], ms: 0 };
  for (let i = 0; i < cycles; i++) {
    const refusal = await refused(await cycle.refusedUrl());
    if (!refusal.ok) {
      result.refusalDrops += 1;
      if (result.failures.length < 10) result.failures.push(`cycle ${i}: ${refusal.detail}`);
    }
    const good = await accepted(await cycle.goodUrl(), cycle);
    if (!good.ok) {
      result.drops += 1;
      if (result.failures.length < 10) result.failures.push(`cycle ${i}: ${good.detail}`);
    }
  }
  result.ms = Math.round(performance.now() - started);
  return result;
}

type Api = (path: string, init?: { method?: string; body?: unknown; token?: string }) => Promise<{ status: number; body: any }>;

/** fetch() with JSON in and out against a running server. */
export function jsonApi(baseUrl: string): Api {
  return async (path, init = {}) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method: init.method ?? 'GET',
      headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(init.token ? { authorization: `Bearer ${init.token}` } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
}

/**
 * Signaling cycles on a real server (demo mode): one call; each cycle reuses the last (used) token,
 * which is refused with 4001, then asks POST /v1/calls/{id}/token and reconnects: welcome, then a
 * request answered with an error (the socket is alive), then a clean close.
 */
export async function signalingStorm(baseUrl: string, cycles: number): Promise<StormResult> {
  const api = jsonApi(baseUrl);
  const login = await api('/v1/demo/login', { method: 'POST', body: { display_name: 'Storm Ann' } });
  const token = login.body.access_token as string;
  const room = (await api('/v1/rooms', { method: 'POST', token, body: { name: 'Storm', members: [] } })).body.room;
  const started = await api('/v1/calls/initiate', { method: 'POST', token, body: { room_id: room.id, type: 'video' } });
  if (started.status !== 201) throw new Error(`initiate failed: ${started.status} ${JSON.stringify(started.body)}`);
  const callId = started.body.call.id as string;
  const url = started.body.signaling_url as string;
  /** The last token a good socket used: the next cycle's refused one. */
  let used = started.body.signaling_token as string;
  const cycle: StormCycle = {
    refusedUrl: () => `${url}?token=${used}`,
    goodUrl: async () => {
      const answer = await api(`/v1/calls/${callId}/token`, { method: 'POST', token });
      if (answer.status !== 200) throw new Error(`token failed: ${answer.status} ${JSON.stringify(answer.body)}`);
      used = answer.body.signaling_token as string;
      return `${url}?token=${used}`;
    },
    isFirstFrame: (f) => f.type === 'welcome',
    probe: { frame: { type: 'pauseConsumer', id: 'probe', payload: { consumerId: 'none' } }, isAnswer: (f) => f.type === 'error' && f.id === 'probe' },
  };
  try {
    // The initiate's token is used once first, so that every cycle's refused token is a used one.
    const warmUp = await accepted(`${url}?token=${used}`, cycle);
    if (!warmUp.ok) throw new Error(`the first signaling socket failed: ${warmUp.detail}`);
    return await runStorm(cycles, cycle);
  } finally {
    await api(`/v1/calls/${callId}/end`, { method: 'POST', token, body: {} });
  }
}

/** User-socket cycles on a real server: a forged token (4001), then the user's token: presence, ping → pong, close. */
export async function userSocketStorm(baseUrl: string, cycles: number): Promise<StormResult> {
  const api = jsonApi(baseUrl);
  const login = await api('/v1/demo/login', { method: 'POST', body: { display_name: 'Storm Bob' } });
  const token = login.body.access_token as string;
  const wsUrl = `${baseUrl.replace('http', 'ws')}/v1/ws`;
  return runStorm(cycles, {
    refusedUrl: () => `${wsUrl}?token=forged.token.here`,
    goodUrl: () => `${wsUrl}?token=${token}`,
    isFirstFrame: (f) => f.event?.name === 'presence',
    probe: { frame: { endpoint: 'ping', data: {}, event: { id: 'probe', date: new Date().toISOString() } }, isAnswer: (f) => f.event?.id === 'probe' && f.data?.pong === true },
  });
}
