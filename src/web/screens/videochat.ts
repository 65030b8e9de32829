/**
 * Direct videochat in the demo page (docs/videochat.md): the lobby's online users with a Call
 * button each, an incoming call that rings with Accept and Decline, the outgoing call waiting for
 * an answer, and Invite during a call. It speaks the handshake on the user socket
 * (src/protocol/videochat.ts); the call itself runs in the shared call screen.
 */
import type { UserEventEnvelope } from '../../protocol/user-events.ts';
import { PRESENCE_CHANGED_EVENT, PresenceEndpoint, VideochatEndpoint, VideochatEvent, type UserSimple, type VideochatRequestedData, type VideochatTicket } from '../../protocol/videochat.ts';
import type { SessionTicket } from '../call.ts';
import { $, coalesced, h, showError, showScreen, status } from '../page.ts';
import { store } from '../store.ts';
import { inCall, openSession } from './call.ts';

type OnlineUser = UserSimple & { available: boolean };

const ringing = new Map<string, VideochatRequestedData>();
let outgoing: { requestId: string; name: string } | null = null;
let online: OnlineUser[] = [];
/** The call's end-to-end secret while the page is in a videochat (the call screen reads it). */
export let currentSecret: string | null = null;

const nameOf = (user: UserSimple): string => `${user.firstName} ${user.lastName}`.trim() || user.id;

function socket() {
  const userSocket = store.get().userSocket;
  if (!userSocket) throw new Error('not signed in');
  return userSocket;
}

export const refreshOnlineSoon = coalesced(150, () => {
  if (!store.get().me) return;
  socket()
    .request<{ users: OnlineUser[] }>(PresenceEndpoint.onlineUsers)
    .then(({ users }) => {
      online = users;
      renderOnline();
    })
    .catch((error: unknown) => console.warn('online users failed', error));
});

function renderOnline(): void {
  const list = $('online-users');
  list.replaceChildren();
  if (!online.length) list.append(h('li', { 'data-testid': 'no-online-users' }, 'Nobody else is online.'));
  for (const user of online) {
    const call = h('button', { type: 'button', 'data-testid': 'call-user' }, 'Call');
    call.addEventListener('click', () => callUser(user));
    list.append(h('li', { 'data-testid': 'online-user', 'data-user-id': user.id, 'data-available': String(user.available) }, h('span', {}, nameOf(user)), call));
  }
  const select = $<HTMLSelectElement>('invite-user');
  select.replaceChildren(...online.map((user) => h('option', { value: user.id }, nameOf(user))));
}

function renderRinging(): void {
  const box = $('videochat-incoming');
  box.replaceChildren();
  for (const request of ringing.values()) {
    const accept = h('button', { type: 'button', 'data-testid': 'videochat-accept' }, 'Accept');
    const decline = h('button', { type: 'button', 'data-testid': 'videochat-decline' }, 'Decline');
    accept.addEventListener('click', () => answer(request.videochatRequestId, true));
    decline.addEventListener('click', () => answer(request.videochatRequestId, false));
    const more = request.counter > 0 ? ` (${request.counter} in the call)` : '';
    box.append(h('div', { class: 'invite', 'data-testid': 'videochat-ringing', 'data-request-id': request.videochatRequestId }, h('span', {}, `${nameOf(request.user)} is calling you${more}`), accept, decline));
  }
}

function callUser(user: OnlineUser): void {
  if (inCall()) return status('Finish the current call first', true);
  status(`Calling ${nameOf(user)}…`);
  socket()
    .request<{ videochatRequestId: string }>(VideochatEndpoint.requestDirect, { targetUser: user.id })
    .then(({ videochatRequestId }) => {
      outgoing = { requestId: videochatRequestId, name: nameOf(user) };
      $('lobby').dataset.outgoing = videochatRequestId;
    })
    .catch(showError);
}

function answer(requestId: string, accept: boolean): void {
  ringing.delete(requestId);
  renderRinging();
  if (!accept) {
    socket().request(VideochatEndpoint.decline, { videochatRequestId: requestId }).catch(showError);
    return;
  }
  socket()
    .request<VideochatTicket>(VideochatEndpoint.accept, { videochatRequestId: requestId })
    .then((ticket) => openVideochat(ticket, 'Videochat'))
    .catch(showError);
}

/** Opens the call of a ticket; with the E2EE box ticked, media is encrypted with the call's secret. */
export function openVideochat(ticket: VideochatTicket, title: string): void {
  currentSecret = ticket.sharedSecret;
  const encrypt = $<HTMLInputElement>('e2ee').checked && Boolean(ticket.sharedSecret);
  $('call').dataset.e2ee = String(encrypt);
  const session: SessionTicket = {
    call: { id: ticket.videochatId, type: 'video' },
    signaling_url: ticket.videochatUrl,
    signaling_token: ticket.token,
    ...(ticket.turn_credentials ? { turn_credentials: ticket.turn_credentials as NonNullable<SessionTicket['turn_credentials']> } : {}),
  };
  openSession(session, {
    title,
    kind: 'room',
    e2eeSecret: encrypt ? ticket.sharedSecret : null,
    finished(reason, message) {
      currentSecret = null;
      showScreen(store.get().me ? 'lobby' : 'signin');
      status(message, reason === 'error');
      refreshOnlineSoon();
    },
  });
}

/** Handles the videochat and presence events; false for anything else. */
export function onVideochatEvent(envelope: UserEventEnvelope): boolean {
  const name = envelope.event.name;
  const data = envelope.data as Record<string, unknown>;
  if (name === PRESENCE_CHANGED_EVENT) {
    refreshOnlineSoon();
    return true;
  }
  if (name === VideochatEvent.requested) {
    ringing.set(String(data.videochatRequestId), data as unknown as VideochatRequestedData);
    renderRinging();
    return true;
  }
  if (name === VideochatEvent.accepted || name === VideochatEvent.declined) {
    const requestId = String(data.videochatRequestId);
    ringing.delete(requestId);
    renderRinging();
    if (outgoing?.requestId === requestId && name === VideochatEvent.declined) {
      status(`${outgoing.name} did not answer`);
      outgoing = null;
    }
    return true;
  }
  if (name === VideochatEvent.directAccepted) {
    const ticket = data as unknown as VideochatTicket;
    const with_ = outgoing?.name ?? 'a user';
    outgoing = null;
    if (inCall()) return true; // another socket of this user may take it (POST /v1/calls/{id}/token)
    openVideochat(ticket, `Videochat with ${with_}`);
    return true;
  }
  return false;
}

export function mountVideochat(): void {
  $('invite').addEventListener('click', () => {
    const callId = store.get().session?.callId;
    const targetUser = $<HTMLSelectElement>('invite-user').value;
    if (!callId || !targetUser) return;
    socket()
      .request(VideochatEndpoint.invite, { targetUser, videochatId: callId })
      .then(() => status('Invitation sent'))
      .catch(showError);
  });
}
