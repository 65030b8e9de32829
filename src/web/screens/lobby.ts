/**
 * The lobby: rooms (create, start or join a call), ringing invites from the user socket and, for
 * hosts, paid links, availability and the paid calls ringing through those links.
 */
import type { UserEventEnvelope } from '../../protocol/user-events.ts';
import { ApiError, isPaidCall, type Availability, type Call, type Link, type PaidCall, type Room, type User } from '../api.ts';
import type { SessionTicket } from '../call.ts';
import { isTerminal, rateText } from '../paid.ts';
import { $, api, coalesced, guestCode, h, isHost, showError, showScreen, status } from '../page.ts';
import { mapWith, mapWithout, pageLog, store, watch, type Invite } from '../store.ts';
import { inCall, openSession } from './call.ts';
import { openPaidSession, updatePaid } from './meter.ts';
import { onVideochatEvent } from './videochat.ts';

// ---------------------------------------------------------------------------------------------
// Rooms and invites

export async function loadRooms(): Promise<void> {
  store.update({ rooms: await api.rooms() });
}

export async function loadMembers(): Promise<void> {
  const fieldset = $('room-members');
  fieldset.querySelectorAll('label, p').forEach((node) => node.remove());
  let users: User[] = [];
  try {
    users = await api.demoUsers();
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
  }
  const others = users.filter((user) => user.id !== store.get().me?.id);
  if (!others.length) fieldset.append(h('p', {}, 'No other demo users yet: they appear here once they sign in.'));
  for (const user of others) {
    fieldset.append(
      h('label', { 'data-testid': 'member-option', 'data-user-id': user.id }, h('input', { type: 'checkbox', name: 'member', value: user.id }), ` ${user.display_name}`),
    );
  }
}

function renderRooms(rooms: readonly Room[]): void {
  const list = $('rooms');
  list.replaceChildren();
  if (!rooms.length) list.append(h('li', { 'data-testid': 'no-rooms' }, 'No rooms yet: create one below.'));
  for (const room of rooms) {
    const names = room.members.map((member) => member.display_name ?? member.user_id).join(', ');
    const item = h(
      'li',
      { 'data-testid': 'room', 'data-room-id': room.id, 'data-room-name': room.name },
      h('span', { 'data-testid': 'room-name' }, room.name),
      h('small', {}, names),
    );
    if (room.active_call_id) {
      const join = h('button', { type: 'button', 'data-testid': 'join-call', 'data-call-id': room.active_call_id }, 'Join call');
      join.addEventListener('click', () => joinCall(room.active_call_id!, room.name));
      item.append(join);
    } else {
      for (const type of ['video', 'audio'] as const) {
        const start = h('button', { type: 'button', 'data-testid': `start-${type}` }, type === 'video' ? 'Video call' : 'Audio call');
        start.addEventListener('click', () => startCall(room, type));
        item.append(start);
      }
    }
    list.append(item);
  }
}

const roomsRefresh = coalesced(200, () => {
  if (store.get().me) loadRooms().catch((error: unknown) => console.warn('rooms refresh failed', error));
});

export function refreshRoomsSoon(): void {
  if (store.get().me) roomsRefresh();
}

function removeInvite(callId: string): void {
  store.update(({ invites }) => (invites.has(callId) ? { invites: mapWithout(invites, callId) } : {}));
}

function onRoomCallEvent(name: string, data: { call?: Call; room?: Invite['room']; from?: Invite['from'] }): void {
  const { call } = data;
  const { me, session } = store.get();
  switch (name) {
    case 'call.invite':
    case 'call.incoming':
      if (!call || data.from?.id === me?.id || session?.callId === call.id) break;
      store.update(({ invites }) => ({ invites: mapWith(invites, call.id, { call, ...(data.room ? { room: data.room } : {}), ...(data.from ? { from: data.from } : {}) }) }));
      refreshRoomsSoon();
      break;
    case 'call.updated':
      if (call && call.status !== 'active') removeInvite(call.id);
      refreshRoomsSoon();
      break;
    case 'call.ended':
      if (call) removeInvite(call.id);
      refreshRoomsSoon();
      break;
    default:
      break;
  }
}

function renderInvites(invites: ReadonlyMap<string, Invite>): void {
  const box = $('invites');
  box.replaceChildren();
  for (const { call, room, from } of invites.values()) {
    const roomName = room?.name ?? store.get().rooms.find((r) => r.id === call.room_id)?.name ?? 'a room';
    const join = h('button', { type: 'button', 'data-testid': 'invite-join' }, 'Join');
    const decline = h('button', { type: 'button', 'data-testid': 'invite-decline' }, 'Decline');
    join.addEventListener('click', () => {
      removeInvite(call.id);
      joinCall(call.id, roomName);
    });
    decline.addEventListener('click', () => {
      removeInvite(call.id);
      api.rejectCall(call.id).catch((error: unknown) => console.warn('reject failed', error));
    });
    box.append(
      h(
        'div',
        { class: 'invite', 'data-testid': 'invite', 'data-call-id': call.id, 'data-room-id': call.room_id },
        h('span', {}, `${from?.display_name ?? 'Someone'} is calling (${call.type}) in ${roomName}`),
        join,
        decline,
      ),
    );
  }
}

function openRoomSession(ticket: SessionTicket, title: string): void {
  openSession(ticket, {
    title,
    kind: 'room',
    finished(reason, message) {
      showScreen(store.get().me ? 'lobby' : 'signin');
      status(message, reason === 'error');
      refreshRoomsSoon();
    },
  });
}

function startCall(room: Room, type: 'audio' | 'video'): void {
  if (inCall()) return;
  status(`Starting a ${type} call in ${room.name}…`);
  api
    .initiateCall(room.id, type)
    .then((ticket) => openRoomSession(ticket, `${type === 'video' ? 'Video' : 'Audio'} call in ${room.name}`))
    .catch(showError);
}

function joinCall(callId: string, roomName: string): void {
  if (inCall()) return;
  status(`Joining the call in ${roomName}…`);
  api
    .joinCall(callId)
    .then((ticket) => openRoomSession(ticket, `${ticket.call.type === 'video' ? 'Video' : 'Audio'} call in ${roomName}`))
    .catch((error: unknown) => {
      showError(error);
      refreshRoomsSoon();
    });
}

// ---------------------------------------------------------------------------------------------
// Paid links (hosts)

const shareUrl = (shortCode: string): string => `${location.origin}/?link=${encodeURIComponent(shortCode)}`;

export async function loadHostTools(): Promise<void> {
  const host = isHost(store.get().me);
  $('host-tools').hidden = !host;
  $('links-note').hidden = host;
  if (!host) return;
  const [links, availability] = await Promise.all([api.links(), api.availability()]);
  store.update({ links });
  renderAvailability(availability);
}

export function renderAvailability(availability: Availability): void {
  $<HTMLInputElement>('host-available').checked = availability.accepting_calls;
  const text = availability.available ? 'guests can call you now' : !availability.online ? 'offline: guests cannot call until this page is connected' : 'not accepting calls';
  $('host-availability').textContent = `(${text})`;
  $('host-availability').dataset.available = String(availability.available);
}

function renderLinks(links: readonly Link[]): void {
  const list = $('link-list');
  list.replaceChildren();
  if (!links.length) list.append(h('li', { 'data-testid': 'no-links' }, 'No links yet: create one above and share its address.'));
  for (const link of links) {
    const url = shareUrl(link.short_code);
    const copy = h('button', { type: 'button', 'data-testid': 'link-copy' }, 'Copy');
    copy.addEventListener('click', () => {
      if (!navigator.clipboard) return status(`Share ${url}`);
      navigator.clipboard.writeText(url).then(
        () => status('Link copied'),
        () => status(`Share ${url}`),
      );
    });
    list.append(
      h(
        'li',
        { 'data-testid': 'link', 'data-short-code': link.short_code },
        h('a', { href: url, target: '_blank', rel: 'noopener', 'data-testid': 'link-share-url' }, url),
        copy,
        h(
          'small',
          { 'data-testid': 'link-terms' },
          `${rateText(link)} · ${link.window_size_minutes}-min windows · used ${link.uses}${link.max_uses !== null ? `/${link.max_uses}` : ''}×`,
        ),
      ),
    );
  }
}

const linksRefresh = coalesced(300, () => {
  loadHostTools().catch((error: unknown) => console.warn('links refresh failed', error));
});

export function refreshLinksSoon(): void {
  if (isHost(store.get().me) && !guestCode) linksRefresh();
}

function renderPaidIncoming(paidIncoming: ReadonlyMap<string, PaidCall>): void {
  const box = $('paid-incoming');
  box.replaceChildren();
  for (const call of paidIncoming.values()) {
    const accept = h('button', { type: 'button', 'data-testid': 'incoming-accept' }, 'Accept');
    const reject = h('button', { type: 'button', 'data-testid': 'incoming-reject' }, 'Reject');
    accept.addEventListener('click', () => acceptPaidCall(call));
    reject.addEventListener('click', () => {
      stopRinging(call.id);
      api
        .rejectCall(call.id)
        .then(() => status(`You declined ${call.guest_name ?? 'the guest'}'s call`))
        .catch(showError);
    });
    box.append(
      h(
        'div',
        { class: 'invite', 'data-testid': 'incoming-call', 'data-call-id': call.id, 'data-short-code': call.short_code },
        h('span', { 'data-testid': 'incoming-text' }, `${call.guest_name ?? 'A guest'} is calling through link ${call.short_code} (${rateText(call)}, paid)`),
        accept,
        reject,
      ),
    );
  }
}

function stopRinging(callId: string): void {
  store.update(({ paidIncoming }) => (paidIncoming.has(callId) ? { paidIncoming: mapWithout(paidIncoming, callId) } : {}));
}

function acceptPaidCall(call: PaidCall): void {
  if (inCall()) {
    status('Finish the current call first', true);
    return;
  }
  stopRinging(call.id);
  status(`Joining ${call.guest_name ?? 'the guest'}'s call…`);
  api
    .joinPaidCall(call.id)
    .then((ticket) => openPaidSession(ticket, 'host'))
    .catch(showError);
}

function onPaidCallEvent(name: string, call: PaidCall): void {
  updatePaid(call);
  if (isTerminal(call)) store.update(({ paidEnded }) => ({ paidEnded: new Set(paidEnded).add(call.id) }));
  const { me, session, paidEnded } = store.get();
  switch (name) {
    case 'call.incoming':
      if (call.host.id !== me?.id || call.status !== 'waiting' || paidEnded.has(call.id) || session?.callId === call.id) break;
      store.update(({ paidIncoming }) => ({ paidIncoming: mapWith(paidIncoming, call.id, call) }));
      status(`${call.guest_name ?? 'A guest'} is calling`);
      break;
    case 'call.updated':
    case 'call.ended':
      // The guest is still waiting while the call is; anything else answers or drops the ring.
      if (call.status !== 'waiting' && call.status !== 'pending') stopRinging(call.id);
      if (name === 'call.ended') refreshLinksSoon();
      break;
    default:
      break;
  }
}

/** Everything the user socket brings: paid calls (the meter, the host's ring) and room calls. */
export function onUserEvent(envelope: UserEventEnvelope): void {
  pageLog.userEvents.push(envelope);
  if (onVideochatEvent(envelope)) return;
  if (isPaidCall(envelope.data.call)) {
    onPaidCallEvent(envelope.event.name, envelope.data.call);
    return;
  }
  onRoomCallEvent(envelope.event.name, envelope.data as { call?: Call; room?: Invite['room']; from?: Invite['from'] });
}

// ---------------------------------------------------------------------------------------------

export function mountLobby(): void {
  watch(store, (state) => state.rooms, renderRooms);
  watch(store, (state) => state.invites, renderInvites);
  watch(store, (state) => state.links, renderLinks);
  watch(store, (state) => state.paidIncoming, renderPaidIncoming);

  $('refresh-rooms').addEventListener('click', () => {
    Promise.all([loadRooms(), loadMembers()]).catch(showError);
  });

  $('room-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = $<HTMLInputElement>('room-name').value.trim();
    const members = [...$('room-members').querySelectorAll<HTMLInputElement>('input[name=member]:checked')].map((input) => ({ user_id: input.value, power: 0 }));
    api
      .createRoom(name, members)
      .then(async (room) => {
        $<HTMLInputElement>('room-name').value = '';
        status(`Room "${room.name}" created`);
        await loadRooms();
      })
      .catch(showError);
  });

  $('link-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const button = $('link-form').querySelector<HTMLButtonElement>('button[type=submit]')!;
    button.disabled = true;
    api
      .createLink({
        rate_per_minute: $<HTMLInputElement>('link-rate').value.trim(),
        currency: $<HTMLSelectElement>('link-currency').value,
        window_size_minutes: Number($<HTMLInputElement>('link-window').value),
      })
      .then((link) => {
        store.update(({ links }) => ({ links: [link, ...links.filter((l) => l.id !== link.id)] }));
        status(`Link created: share ${shareUrl(link.short_code)}`);
      })
      .catch(showError)
      .finally(() => {
        button.disabled = false;
      });
  });

  $('host-available').addEventListener('change', () => {
    api
      .setAvailability($<HTMLInputElement>('host-available').checked)
      .then(renderAvailability)
      .catch(showError);
  });
}
