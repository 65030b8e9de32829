/**
 * The WHIP/WHEP endpoints before any media (docs/whip-whep.md): CORS on every answer, preflight,
 * the order of refusals (401, 415, 404, 409, 401 for a used token, 403 for another call's), PATCH
 * 405, unusable SDP (400 before the token is spent), and a session's close cascade: DELETE with its token, the call's end, the connect timeout.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import t from 'tap';
import type { IngressCloseReason, IngressSession } from '../../src/calls/ingress/index.ts';
import { freshToken, postOffer, roomCall } from '../helpers/ingress.ts';
import { startTestServer } from '../helpers/server.ts';

const server = await startTestServer(t, { media: { workers: 1 }, calls: { ingress_connect_timeout_seconds: 2 } });
const sessions = server.ctx.ingress.sessions;
// A Chrome offer with a sendrecv audio and video m-line: WHIP publishes it, WHEP plays into it.
const OFFER = readFileSync(new URL('../fixtures/sdp/chrome-sendrecv.sdp', import.meta.url), 'utf8').replace(/\r?\n/g, '\r\n');
const OTHER_ULID = '01ARZ3NDEKTSV4RRFFQ69G5FAV';

/** Resolves with the reason when `session` closes (fails the test after 10 s). */
function closedWith(session: IngressSession): Promise<IngressCloseReason> {
  if (session.closed) return Promise.resolve(session.closeReason!);
  return once(session, 'close', { signal: AbortSignal.timeout(10_000) }).then(([reason]) => reason as IngressCloseReason);
}

/** Resolves when the SFU says `participantId` left. */
function leaves(participantId: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${participantId} did not leave`)), 10_000);
    const listener = (e: { participantId: string }) => {
      if (e.participantId !== participantId) return;
      clearTimeout(timer);
      server.ctx.sfu.off('peerleft', listener);
      resolve(e);
    };
    server.ctx.sfu.on('peerleft', listener);
  });
}

/** A session opened through the registry (no SDP): a participant joined with a send transport. */
async function openSession(callId: string, token: string): Promise<IngressSession> {
  const identity = await sessions.admit(callId, token);
  const { session } = await sessions.open('whip', identity, token, async (s) => {
    const transport = await s.request('createTransport', { direction: 'send' });
    s.transportIds.add(transport.id);
  });
  return session;
}

for (const kind of ['whip', 'whep'] as const) {
  t.test(`${kind}: preflight and refusals carry CORS and the error envelope`, async (t) => {
    const { callId, tickets } = await roomCall(server);
    const endpoint = `/v1/calls/${callId}/${kind}`;

    const preflight = await fetch(`${server.baseUrl}${endpoint}`, { method: 'OPTIONS', headers: { origin: 'https://player.example', 'access-control-request-method': 'POST' } });
    t.equal(preflight.status, 204, 'OPTIONS answers 204');
    t.equal(preflight.headers.get('access-control-allow-origin'), '*');
    t.match(preflight.headers.get('access-control-allow-headers'), /Authorization/);
    t.match(preflight.headers.get('access-control-expose-headers'), /Location/, 'Location is exposed to scripts');
    t.equal(preflight.headers.get('accept-post'), 'application/sdp');
    const sessionPreflight = await fetch(`${server.baseUrl}${endpoint}/${OTHER_ULID}`, { method: 'OPTIONS' });
    t.equal(sessionPreflight.status, 204, 'OPTIONS on a Location answers 204');
    t.match(sessionPreflight.headers.get('allow'), /DELETE/);

    const missing = await postOffer(server, endpoint, OFFER, null);
    t.equal(missing.status, 401, 'no bearer: 401');
    t.equal(missing.body?.error?.code, 'unauthorized');
    t.equal(missing.headers.get('access-control-allow-origin'), '*', 'an error carries CORS too');
    const accessToken = await postOffer(server, endpoint, OFFER, tickets[0]!.accessToken);
    t.equal(accessToken.status, 401, 'an access token is not a signaling token: 401');

    const json = await postOffer(server, endpoint, OFFER, tickets[0]!.token, 'application/json');
    t.equal(json.status, 415, 'not application/sdp: 415');
    t.equal(json.body?.error?.code, 'unsupported_media_type');
    t.equal(json.headers.get('access-control-allow-origin'), '*');
    // The 415 did not consume the token: it still opens the signaling socket's equivalent here.
    const identity = await sessions.admit(callId, tickets[0]!.token);
    t.equal(identity.callId, callId, 'the token refused with 415 was not consumed');

    const garbage400 = await postOffer(server, endpoint, 'this is not SDP', tickets[1]!.token);
    t.equal(garbage400.status, 400, 'garbage SDP: 400');
    t.equal(garbage400.body?.error?.code, 'validation_failed');
    const noBundle = await postOffer(server, endpoint, OFFER.replace(/^a=group:BUNDLE.*\r\n/m, ''), tickets[1]!.token);
    t.equal(noBundle.status, 400, 'no BUNDLE: 400');
    t.match(noBundle.body?.error?.message, /BUNDLE/i, 'the error says why');
    const planB = await postOffer(server, endpoint, OFFER.replace(/^a=mid:1\r\n/m, 'a=mid:0\r\n'), tickets[1]!.token);
    t.equal(planB.status, 400, 'two m-lines with one mid: 400');
    const nothingUsable = await postOffer(server, endpoint, OFFER.replace(/^a=sendrecv\r\n/gm, kind === 'whip' ? 'a=recvonly\r\n' : 'a=sendonly\r\n'), tickets[1]!.token);
    t.equal(nothingUsable.status, 400, kind === 'whip' ? 'a WHIP offer that sends nothing: 400' : 'a WHEP offer that receives nothing: 400');
    t.equal(nothingUsable.body?.error?.code, 'validation_failed');
    const noCodec = await postOffer(server, endpoint, OFFER.replace(/^a=rtpmap:111 opus/m, 'a=rtpmap:111 nonsense'), tickets[1]!.token);
    t.equal(noCodec.status, 400, 'an m-line with no codec the router has: 400');
    t.match(noCodec.body?.error?.message, /m-line 0/, 'naming the m-line');
    t.equal((await fetch(`${server.baseUrl}/healthz`)).status, 200, 'the process is up');

    const used = await postOffer(server, endpoint, OFFER, tickets[0]!.token);
    t.equal(used.status, 401, 'a used token: 401');
    t.equal(used.body?.error?.code, 'unauthorized');

    // The 400s above did not consume tickets[1]'s token: it is refused below for the call, not as used.
    const nowhere = await postOffer(server, `/v1/calls/${OTHER_ULID}/${kind}`, OFFER, tickets[1]!.token);
    t.equal(nowhere.status, 404, 'no such call: 404');
    t.equal(nowhere.body?.error?.code, 'not_found');

    const other = await roomCall(server);
    const elsewhere = await postOffer(server, `/v1/calls/${other.callId}/${kind}`, OFFER, tickets[1]!.token);
    t.equal(elsewhere.status, 403, "another call's token: 403");
    t.equal(elsewhere.body?.error?.code, 'forbidden');

    const ended = await server.api(`/v1/calls/${other.callId}/end`, { method: 'POST', token: other.tickets[0]!.accessToken, body: {} });
    t.equal(ended.status, 200, 'the other call ended');
    const late = await postOffer(server, `/v1/calls/${other.callId}/${kind}`, OFFER, other.tickets[1]!.token);
    t.equal(late.status, 409, 'an ended call: 409');
    t.equal(late.body?.error?.code, 'call_ended');

    const noSession = await fetch(`${server.baseUrl}${endpoint}/${OTHER_ULID}`, { method: 'DELETE', headers: { authorization: `Bearer ${tickets[1]!.token}` } });
    t.equal(noSession.status, 404, 'DELETE of an unknown session: 404');
    t.equal((await noSession.json()).error.code, 'not_found');
    const garbage = await fetch(`${server.baseUrl}${endpoint}/not-a-ulid`, { method: 'DELETE', headers: { authorization: `Bearer ${tickets[1]!.token}` } });
    t.equal(garbage.status, 400, 'a malformed session id: 400');
  });
}

t.test('DELETE with the POST token ends the session; the participant leaves the SFU', async (t) => {
  const { callId, tickets } = await roomCall(server);
  const token = tickets[1]!.token;
  const session = await openSession(callId, token);
  const location = `/v1/calls/${callId}/whip/${session.id}`;
  const sfuPeer = () => server.ctx.sfu.get(callId)?.peers.get(session.participantId);
  t.ok(sfuPeer()?.connected, 'the session is a connected participant of the call in the SFU');
  t.equal(sfuPeer()?.transports.size, 1, 'with the transport it created');
  const metrics = async () => (await (await fetch(`${server.baseUrl}/metrics`)).text()).match(/^callplane_ingress_sessions\{kind="whip"\} (\d+)$/m)?.[1];
  t.equal(await metrics(), '1', 'the gauge counts the open WHIP session');

  const patch = await fetch(`${server.baseUrl}${location}`, { method: 'PATCH', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/trickle-ice-sdpfrag' }, body: 'a=end-of-candidates\r\n' });
  t.equal(patch.status, 405, 'PATCH: 405');
  t.equal((await patch.json()).error.code, 'method_not_allowed');
  t.equal(patch.headers.get('access-control-allow-origin'), '*');

  const stranger = await freshToken(server, callId, tickets[0]!);
  const wrong = await fetch(`${server.baseUrl}${location}`, { method: 'DELETE', headers: { authorization: `Bearer ${stranger}` } });
  t.equal(wrong.status, 401, "DELETE with another participant's token: 401");
  t.notOk(session.closed, 'and the session stays open');

  const closing = closedWith(session);
  const left = leaves(session.participantId);
  const deleted = await fetch(`${server.baseUrl}${location}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  t.equal(deleted.status, 200, 'DELETE with the POST token: 200');
  t.equal(deleted.headers.get('access-control-allow-origin'), '*');
  t.equal(await closing, 'deleted');
  t.ok(await left, 'the participant left the SFU (peer_left for the others)');
  t.equal(sfuPeer(), undefined, 'no peer (and so no transport) remains');
  t.equal(await metrics(), '0', 'the gauge is back to 0');
  const again = await fetch(`${server.baseUrl}${location}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  t.equal(again.status, 404, 'a second DELETE: 404');
  session.close('deleted');
  t.equal(session.closeReason, 'deleted', 'closing again changes nothing');
});

t.test("the call's end closes its sessions", async (t) => {
  const { callId, tickets } = await roomCall(server);
  const session = await openSession(callId, tickets[1]!.token);
  const closing = closedWith(session);
  const ended = await server.api(`/v1/calls/${callId}/end`, { method: 'POST', token: tickets[0]!.accessToken, body: {} });
  t.equal(ended.status, 200);
  t.equal(await closing, 'call_ended');
  t.equal(sessions.get(session.id), undefined, 'the registry forgot it');
});

t.test('a session whose transport never connects is closed after the connect timeout', async (t) => {
  const { callId, tickets } = await roomCall(server);
  const session = await openSession(callId, tickets[1]!.token);
  const left = leaves(session.participantId);
  t.equal(await closedWith(session), 'ice_timeout');
  t.ok(await left, 'its participant left the SFU');
  t.equal(server.ctx.sfu.get(callId)?.peers.get(session.participantId), undefined, 'its participant and transport are gone');
});

t.test('an SDK reconnect of the same participant replaces the session', async (t) => {
  const { callId, tickets } = await roomCall(server);
  const session = await openSession(callId, tickets[1]!.token);
  const closing = closedWith(session);
  const identity = await sessions.admit(callId, await freshToken(server, callId, tickets[1]!));
  const conn = await server.ctx.sfu.join(identity, { notify: () => undefined, close: () => undefined });
  t.teardown(() => conn.close());
  t.equal(await closing, 'replaced');
});
