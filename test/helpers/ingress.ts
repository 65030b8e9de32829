/* eslint-disable @typescript-eslint/no-explicit-any -- REST answers are JSON of many shapes */
/**
 * Room calls for the WHIP/WHEP tests: demo users, a room, a call started by the first and joined by
 * the others, and each participant's signaling token; plus POST/DELETE of SDP against the endpoints.
 */
import type { TestServer } from './server.ts';

export interface Ticket {
  userId: string;
  accessToken: string;
  signalingUrl: string;
  token: string;
}

let users = 0;

/** A room of `size` demo users and a video call in it that all of them joined: one ticket each. */
export async function roomCall(server: TestServer, size = 2): Promise<{ callId: string; tickets: Ticket[] }> {
  const people = [];
  for (let i = 0; i < size; i++) {
    const login = await server.api('/v1/demo/login', { method: 'POST', body: { display_name: `Ingress user ${++users}` } });
    if (login.status !== 200 && login.status !== 201) throw new Error(`demo login: ${login.status} ${JSON.stringify(login.body)}`);
    people.push({ id: login.body.user.id as string, token: login.body.access_token as string });
  }
  const [first, ...others] = people;
  const room = await server.api('/v1/rooms', { method: 'POST', token: first!.token, body: { name: `Ingress room ${users}`, members: others.map((p) => ({ user_id: p.id })) } });
  if (room.status !== 201) throw new Error(`POST /v1/rooms: ${room.status} ${JSON.stringify(room.body)}`);
  const started = await server.api('/v1/calls/initiate', { method: 'POST', token: first!.token, body: { room_id: room.body.room.id, type: 'video' } });
  if (started.status !== 201) throw new Error(`initiate: ${started.status} ${JSON.stringify(started.body)}`);
  const callId = started.body.call.id as string;
  const ticket = (person: { id: string; token: string }, body: any): Ticket => ({ userId: person.id, accessToken: person.token, signalingUrl: body.signaling_url, token: body.signaling_token });
  const tickets = [ticket(first!, started.body)];
  for (const person of others) {
    const joined = await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: person.token });
    if (joined.status !== 200) throw new Error(`join: ${joined.status} ${JSON.stringify(joined.body)}`);
    tickets.push(ticket(person, joined.body));
  }
  return { callId, tickets };
}

/** A fresh signaling token for the participant of `ticket` (POST /v1/calls/{id}/token). */
export async function freshToken(server: TestServer, callId: string, ticket: Ticket): Promise<string> {
  const answer = await server.api(`/v1/calls/${callId}/token`, { method: 'POST', token: ticket.accessToken });
  if (answer.status !== 200 && answer.status !== 201) throw new Error(`token: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body.signaling_token as string;
}

/** POSTs an SDP offer the way a WHIP/WHEP client does. */
export async function postOffer(server: TestServer, path: string, sdp: string, token: string | null, contentType = 'application/sdp'): Promise<{ status: number; headers: Headers; text: string; body: any }> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${server.baseUrl}${path}`, { method: 'POST', headers, body: sdp });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, text, body };
}
