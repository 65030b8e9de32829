/**
 * The callplane demo page: demo sign-in (or a pasted access token), rooms, ringing invites over the
 * user socket, and a call grid driven by CallSession. Hosts also create paid links and answer the
 * calls that come through them; `/?link=<short_code>` is the guest's side of a link (pay, wait for
 * the host, talk). Paid calls show a live meter and end on a billing summary. Elements carry
 * data-testid attributes and `window.callplane` exposes the live state for the end-to-end tests.
 */
import type { types } from 'mediasoup-client';
import type { NotificationPayloads } from '../protocol/signaling.ts';
import type { UserEventEnvelope } from '../protocol/user-events.ts';
import { Api, ApiError, isPaidCall, type Availability, type Call, type Link, type PaidCall, type PaidCallTicket, type PublicLink, type Room, type User } from './api.ts';
import { CallSession, type CallView, type FinishReason, type PeerState, type ReceivedNotification, type SessionTicket } from './call.ts';
import { PaidMeter, billingWarning, clock, endReasonText, isTerminal, meterHeadline, money, newerCall, rateText, timeOfDay, windowText } from './paid.ts';
import { UserSocket } from './user-socket.ts';

export interface CallplaneDebug {
  readonly me: User | null;
  readonly state: string;
  readonly session: CallSession | null;
  readonly callId: string | null;
  readonly participantId: string | null;
  readonly device: types.Device | null;
  readonly sendTransport: types.Transport | null;
  readonly recvTransport: types.Transport | null;
  readonly producers: Record<string, types.Producer>;
  /** Remote consumers grouped by participant id. */
  readonly consumers: Record<string, types.Consumer[]>;
  readonly lastCallStatus: unknown;
  /** Every signaling notification this page received, in order (across calls). */
  readonly notifications: ReceivedNotification[];
  /** Every user-socket event this page received, in order. */
  readonly userEvents: UserEventEnvelope[];
  readonly timings: CallSession['timings'] | null;
  /** Errors shown in the status line. */
  readonly errors: string[];
  /** The paid call this page is in (or just left): its side, the latest figures, status polls so far. */
  readonly paid: { role: PaidRole; callId: string; call: PaidCall | null; polls: number } | null;
  /** The host's links, newest first. */
  readonly links: Link[];
}

declare global {
  interface Window {
    callplane: CallplaneDebug;
  }
}

type PageState = 'signin' | 'lobby' | 'call' | 'guest' | 'summary';
type PaidRole = 'host' | 'guest';

/** The paid call this page is in, or whose summary it shows. */
interface PaidContext {
  role: PaidRole;
  callId: string;
  call: PaidCall | null;
  meter: PaidMeter;
  /** The last billing warning received over signaling (call_status with `warning`). */
  signaled: NotificationPayloads['call_status'] | null;
}

const TOKEN_KEY = 'callplane.token';
/**
 * `/?link=<short_code>` (or `/l/<short_code>`, the links' own `url`, should the server serve this page
 * there): this page is a guest's, for that link.
 */
const guestCode = new URLSearchParams(location.search).get('link') ?? /^\/l\/([A-Za-z0-9_-]+)\/?$/.exec(location.pathname)?.[1] ?? null;
const api = new Api();
const notifications: ReceivedNotification[] = [];
const userEvents: UserEventEnvelope[] = [];
const errors: string[] = [];
let me: User | null = null;
let session: CallSession | null = null;
let userSocket: UserSocket | null = null;
let rooms: Room[] = [];
/** Ringing calls by call id. */
const invites = new Map<string, { call: Call; room?: { id?: string; name?: string }; from?: { id?: string; display_name?: string } }>();
/** Paid calls ringing this host, by call id. */
const paidIncoming = new Map<string, PaidCall>();
/** Paid calls seen ended: a late call.incoming for one of them is ignored. */
const paidEnded = new Set<string>();
let paid: PaidContext | null = null;
let links: Link[] = [];
/** The guest's identity for the link (one guest user per name, reused across attempts). */
let guest: { token: string; name: string; user: User } | null = null;
let publicLink: PublicLink | null = null;

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from index.html`);
  return element as T;
};

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

function status(text: string, isError = false): void {
  $('status').textContent = text;
  $('status').dataset.error = String(isError);
  if (isError) errors.push(text);
}

function showError(error: unknown): void {
  const message = error instanceof ApiError ? `${error.message} (${error.code})` : error instanceof Error ? error.message : String(error);
  console.error(error);
  status(message, true);
}

function setState(state: PageState): void {
  document.body.dataset.state = state;
  for (const section of ['signin', 'lobby', 'call', 'guest', 'summary'] as const) $(section).hidden = state !== section;
  $('sign-out').hidden = state === 'signin' || guestCode !== null;
}

const isHost = (user: User | null): boolean => user?.role === 'host' || user?.role === 'admin';

function videoConstraints(): MediaTrackConstraints {
  // ?video=320x240@15 picks the capture size (tests use small frames to save CPU).
  const match = /^(\d+)x(\d+)(?:@(\d+))?$/.exec(new URLSearchParams(location.search).get('video') ?? '');
  if (match) return { width: { ideal: Number(match[1]) }, height: { ideal: Number(match[2]) }, frameRate: { ideal: Number(match[3] ?? 30) } };
  return { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } };
}

// ---------------------------------------------------------------------------------------------
// Sign-in

async function signIn(token: string, user?: User): Promise<void> {
  api.token = token;
  try {
    me = user ?? (await api.me());
  } catch (error) {
    api.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    setState('signin');
    throw error;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $('me').textContent = `Signed in as ${me.display_name}`;
  $('me').dataset.userId = me.id;
  setState('lobby');
  status('Signed in');
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  userSocket?.stop();
  userSocket = new UserSocket(`${scheme}://${location.host}/v1/ws?token=${encodeURIComponent(token)}`, onUserEvent, (connected) => {
    $('presence').dataset.connected = String(connected);
    // A host is available only while this socket is up: show what guests see.
    if (isHost(me)) api.availability().then(renderAvailability, (error: unknown) => console.warn('availability failed', error));
  });
  await Promise.all([loadRooms(), loadMembers(), loadHostTools()]);
}

function signOut(): void {
  // A paid call has no "leave": it ends (and is billed) for both.
  if (session && !session.finished) void (inPaidSession() ? session.end() : session.leave()).catch(() => undefined);
  paid?.meter.stop();
  paid = null;
  userSocket?.stop();
  userSocket = null;
  sessionStorage.removeItem(TOKEN_KEY);
  api.token = null;
  me = null;
  invites.clear();
  renderInvites();
  paidIncoming.clear();
  renderPaidIncoming();
  links = [];
  $('me').textContent = '';
  setState('signin');
  status('Signed out');
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $<HTMLInputElement>('login-name').value.trim();
  if (!name) return;
  const asHost = $<HTMLInputElement>('login-host').checked;
  status('Signing in…');
  api.token = null;
  api
    .demoLogin(name, asHost ? 'host' : undefined)
    .then((answer) => signIn(answer.access_token, answer.user))
    .catch((error: unknown) => {
      if (asHost && error instanceof ApiError && error.code === 'validation_failed') {
        status('This server\u2019s demo login cannot create hosts (it refused role "host"): sign in with a host\u2019s access token instead', true);
        return;
      }
      showError(error);
    });
});

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $<HTMLInputElement>('token-input').value.trim();
  if (token) signIn(token).catch(showError);
});

$('sign-out').addEventListener('click', signOut);

// ---------------------------------------------------------------------------------------------
// Rooms and invites

async function loadRooms(): Promise<void> {
  rooms = await api.rooms();
  renderRooms();
}

async function loadMembers(): Promise<void> {
  const fieldset = $('room-members');
  fieldset.querySelectorAll('label, p').forEach((node) => node.remove());
  let users: User[] = [];
  try {
    users = await api.demoUsers();
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
  }
  const others = users.filter((user) => user.id !== me?.id);
  if (!others.length) fieldset.append(h('p', {}, 'No other demo users yet: they appear here once they sign in.'));
  for (const user of others) {
    fieldset.append(
      h('label', { 'data-testid': 'member-option', 'data-user-id': user.id }, h('input', { type: 'checkbox', name: 'member', value: user.id }), ` ${user.display_name}`),
    );
  }
}

function renderRooms(): void {
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

let roomsRefresh: number | null = null;
function refreshRoomsSoon(): void {
  if (roomsRefresh !== null || !me) return;
  roomsRefresh = window.setTimeout(() => {
    roomsRefresh = null;
    if (me) loadRooms().catch((error: unknown) => console.warn('rooms refresh failed', error));
  }, 200);
}

function onUserEvent(envelope: UserEventEnvelope): void {
  userEvents.push(envelope);
  if (isPaidCall(envelope.data.call)) {
    onPaidCallEvent(envelope.event.name, envelope.data.call);
    return;
  }
  const data = envelope.data as { call?: Call; room?: { id?: string; name?: string }; from?: { id?: string; display_name?: string } };
  const call = data.call;
  switch (envelope.event.name) {
    case 'call.invite':
    case 'call.incoming':
      if (!call || data.from?.id === me?.id || session?.callId === call.id) break;
      invites.set(call.id, { call, ...(data.room ? { room: data.room } : {}), ...(data.from ? { from: data.from } : {}) });
      renderInvites();
      refreshRoomsSoon();
      break;
    case 'call.updated':
      if (call && call.status !== 'active' && invites.delete(call.id)) renderInvites();
      refreshRoomsSoon();
      break;
    case 'call.ended':
      if (call && invites.delete(call.id)) renderInvites();
      refreshRoomsSoon();
      break;
    default:
      break;
  }
}

function renderInvites(): void {
  const box = $('invites');
  box.replaceChildren();
  for (const { call, room, from } of invites.values()) {
    const roomName = room?.name ?? rooms.find((r) => r.id === call.room_id)?.name ?? 'a room';
    const join = h('button', { type: 'button', 'data-testid': 'invite-join' }, 'Join');
    const decline = h('button', { type: 'button', 'data-testid': 'invite-decline' }, 'Decline');
    join.addEventListener('click', () => {
      invites.delete(call.id);
      renderInvites();
      joinCall(call.id, roomName);
    });
    decline.addEventListener('click', () => {
      invites.delete(call.id);
      renderInvites();
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

// ---------------------------------------------------------------------------------------------
// The call

function startCall(room: Room, type: 'audio' | 'video'): void {
  if (session && !session.finished) return;
  status(`Starting a ${type} call in ${room.name}…`);
  api
    .initiateCall(room.id, type)
    .then((ticket) => openSession(ticket, `${type === 'video' ? 'Video' : 'Audio'} call in ${room.name}`, 'room'))
    .catch(showError);
}

function joinCall(callId: string, roomName: string): void {
  if (session && !session.finished) return;
  status(`Joining the call in ${roomName}…`);
  api
    .joinCall(callId)
    .then((ticket) => openSession(ticket, `${ticket.call.type === 'video' ? 'Video' : 'Audio'} call in ${roomName}`, 'room'))
    .catch((error: unknown) => {
      showError(error);
      refreshRoomsSoon();
    });
}

function openSession(ticket: SessionTicket, title: string, kind: 'room' | 'paid'): void {
  if (kind === 'room') {
    paid?.meter.stop();
    paid = null;
  }
  const grid = $('grid');
  grid.replaceChildren();
  $('call-title').textContent = title;
  $('call').dataset.callId = ticket.call.id;
  $('call').dataset.kind = kind;
  $('mute-cam').hidden = (ticket.call.type ?? 'video') !== 'video';
  // A paid call is not left, it is ended (and billed) for both; its meter shows above the grid.
  $('leave').hidden = kind === 'paid';
  $('end').textContent = kind === 'paid' ? 'End call' : 'End for everyone';
  $<HTMLButtonElement>('end').disabled = false;
  $('meter').hidden = kind !== 'paid';
  invites.delete(ticket.call.id);
  renderInvites();
  setState('call');
  session = new CallSession(api, ticket, createView(kind), { video: videoConstraints(), notifications });
  renderMuteButtons();
  session.start();
}

function renderMuteButtons(): void {
  const mic = $('mute-mic');
  const cam = $('mute-cam');
  mic.setAttribute('aria-pressed', String(Boolean(session?.micMuted)));
  mic.textContent = session?.micMuted ? 'Unmute mic' : 'Mute mic';
  cam.setAttribute('aria-pressed', String(Boolean(session?.camMuted)));
  cam.textContent = session?.camMuted ? 'Start camera' : 'Stop camera';
}

$('mute-mic').addEventListener('click', () => {
  session?.toggleMic().catch(showError);
  renderMuteButtons();
});
$('mute-cam').addEventListener('click', () => {
  session?.toggleCam().catch(showError);
  renderMuteButtons();
});
$('leave').addEventListener('click', () => {
  session?.leave().catch(showError);
});
$('end').addEventListener('click', () => {
  if (!session || session.finished) return;
  const button = $<HTMLButtonElement>('end');
  button.disabled = true;
  const ended = inPaidSession() ? session.end<PaidCall>((call) => updatePaid(call)) : session.end();
  ended.catch((error: unknown) => {
    button.disabled = false;
    showError(error);
  });
});

function tileFor(participantId: string): HTMLElement | null {
  return $('grid').querySelector<HTMLElement>(`[data-testid="tile"][data-participant-id="${CSS.escape(participantId)}"]`);
}

function makeTile(participantId: string, label: string, self: boolean): HTMLElement {
  const video = h('video', { autoplay: '', playsinline: '', 'data-testid': 'tile-video' });
  video.muted = true; // sound plays through the tile's <audio> elements
  const tile = h(
    'figure',
    { class: 'tile', 'data-testid': 'tile', 'data-participant-id': participantId, 'data-self': String(self) },
    video,
    h('figcaption', { 'data-testid': 'tile-name' }, label),
  );
  $('grid').append(tile);
  return tile;
}

function renderPeerFlags(peer: PeerState): void {
  const tile = tileFor(peer.participantId);
  if (!tile) return;
  const producers = [...peer.producers.values()];
  const live = (source: string) => producers.some((p) => p.source === source && !p.paused);
  tile.dataset.userId = peer.userId;
  tile.dataset.audioMuted = String(!live('microphone'));
  tile.dataset.videoMuted = String(!live('camera'));
  tile.querySelector('figcaption')!.textContent = peer.displayName;
}

function createView(kind: 'room' | 'paid'): CallView {
  const selfTileId = 'self';
  return {
    status: (text) => status(text),
    localStream(stream) {
      let tile = tileFor(selfTileId);
      if (!stream) {
        tile?.remove();
        return;
      }
      tile ??= makeTile(selfTileId, `${me?.display_name ?? 'You'} (you)`, true);
      const video = tile.querySelector('video')!;
      const tracks = stream.getVideoTracks();
      video.srcObject = tracks.length ? new MediaStream(tracks) : null;
      tile.dataset.videoMuted = String(!tracks.length);
    },
    localMediaChanged() {
      const tile = tileFor(selfTileId);
      if (tile && session) {
        tile.dataset.audioMuted = String(session.micMuted);
        tile.dataset.videoMuted = String(session.camMuted || !session.localStream?.getVideoTracks().length);
        if (session.participantId) tile.dataset.ownParticipantId = session.participantId;
      }
      renderMuteButtons();
    },
    peerAdded(peer) {
      if (!tileFor(peer.participantId)) makeTile(peer.participantId, peer.displayName, false);
      renderPeerFlags(peer);
    },
    peerUpdated: renderPeerFlags,
    peerRemoved(participantId) {
      tileFor(participantId)?.remove();
    },
    trackAdded(participantId, consumer) {
      const tile = tileFor(participantId) ?? makeTile(participantId, participantId, false);
      if (consumer.kind === 'video') {
        const video = tile.querySelector('video')!;
        video.srcObject = new MediaStream([consumer.track]);
        video.dataset.consumerId = consumer.id;
        const current = session;
        const mark = () => {
          if (current) current.timings.firstFrame[participantId] ??= performance.now();
          tile.dataset.firstFrame = 'true';
        };
        if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(mark);
        else (video as HTMLVideoElement).addEventListener('playing', mark, { once: true });
      } else {
        const audio = h('audio', { autoplay: '', 'data-consumer-id': consumer.id, 'data-testid': 'tile-audio' });
        audio.srcObject = new MediaStream([consumer.track]);
        tile.append(audio);
        audio.play().catch(() => status('Click anywhere to hear the call (the browser blocked autoplay)'));
      }
    },
    trackRemoved(participantId, consumer) {
      const tile = tileFor(participantId);
      if (!tile) return;
      if (consumer.kind === 'video') {
        const video = tile.querySelector('video')!;
        if (video.dataset.consumerId === consumer.id) {
          video.srcObject = null;
          delete video.dataset.consumerId;
        }
      } else {
        tile.querySelector(`audio[data-consumer-id="${CSS.escape(consumer.id)}"]`)?.remove();
      }
    },
    activeSpeaker(participantId) {
      const ownId = session?.participantId;
      for (const tile of $('grid').querySelectorAll<HTMLElement>('[data-testid="tile"]')) {
        const id = tile.dataset.self === 'true' ? ownId : tile.dataset.participantId;
        tile.dataset.speaking = String(participantId !== null && id === participantId);
      }
    },
    callStatus(payload) {
      if (kind !== 'paid' || !paid || payload.callId !== paid.callId) return;
      if (payload.warning) paid.signaled = payload;
      renderMeter();
    },
    finished(reason: FinishReason, message: string) {
      $('grid').replaceChildren();
      delete $('call').dataset.callId;
      if (kind === 'paid' && paid) {
        status(message, reason === 'error');
        showSummary();
        return;
      }
      setState(me ? 'lobby' : 'signin');
      status(message, reason === 'error');
      refreshRoomsSoon();
    },
  };
}

document.addEventListener('click', () => {
  for (const audio of document.querySelectorAll<HTMLAudioElement>('audio')) if (audio.paused) void audio.play().catch(() => undefined);
});

// ---------------------------------------------------------------------------------------------
// Paid links (hosts)

const shareUrl = (shortCode: string): string => `${location.origin}/?link=${encodeURIComponent(shortCode)}`;

async function loadHostTools(): Promise<void> {
  const host = isHost(me);
  $('host-tools').hidden = !host;
  $('links-note').hidden = host;
  if (!host) return;
  const [list, availability] = await Promise.all([api.links(), api.availability()]);
  links = list;
  renderLinks();
  renderAvailability(availability);
}

function renderAvailability(availability: Availability): void {
  $<HTMLInputElement>('host-available').checked = availability.accepting_calls;
  const text = availability.available ? 'guests can call you now' : !availability.online ? 'offline: guests cannot call until this page is connected' : 'not accepting calls';
  $('host-availability').textContent = `(${text})`;
  $('host-availability').dataset.available = String(availability.available);
}

function renderLinks(): void {
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
      links = [link, ...links.filter((l) => l.id !== link.id)];
      renderLinks();
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

let linksRefresh: number | null = null;
function refreshLinksSoon(): void {
  if (linksRefresh !== null || !isHost(me) || guestCode) return;
  linksRefresh = window.setTimeout(() => {
    linksRefresh = null;
    loadHostTools().catch((error: unknown) => console.warn('links refresh failed', error));
  }, 300);
}

function renderPaidIncoming(): void {
  const box = $('paid-incoming');
  box.replaceChildren();
  for (const call of paidIncoming.values()) {
    const accept = h('button', { type: 'button', 'data-testid': 'incoming-accept' }, 'Accept');
    const reject = h('button', { type: 'button', 'data-testid': 'incoming-reject' }, 'Reject');
    accept.addEventListener('click', () => acceptPaidCall(call));
    reject.addEventListener('click', () => {
      paidIncoming.delete(call.id);
      renderPaidIncoming();
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

function acceptPaidCall(call: PaidCall): void {
  if (session && !session.finished) {
    status('Finish the current call first', true);
    return;
  }
  paidIncoming.delete(call.id);
  renderPaidIncoming();
  status(`Joining ${call.guest_name ?? 'the guest'}'s call…`);
  api
    .joinPaidCall(call.id)
    .then((ticket) => openPaidSession(ticket, 'host'))
    .catch(showError);
}

function onPaidCallEvent(name: string, call: PaidCall): void {
  updatePaid(call);
  if (isTerminal(call)) paidEnded.add(call.id);
  switch (name) {
    case 'call.incoming':
      if (call.host.id !== me?.id || call.status !== 'waiting' || paidEnded.has(call.id) || session?.callId === call.id) break;
      paidIncoming.set(call.id, call);
      renderPaidIncoming();
      status(`${call.guest_name ?? 'A guest'} is calling`);
      break;
    case 'call.updated':
    case 'call.ended':
      // The guest is still waiting while the call is; anything else answers or drops the ring.
      if (call.status !== 'waiting' && call.status !== 'pending' && paidIncoming.delete(call.id)) renderPaidIncoming();
      if (name === 'call.ended') refreshLinksSoon();
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// A paid call: the session, the meter, the summary

function inPaidSession(): boolean {
  return !!paid && !!session && session.callId === paid.callId;
}

function openPaidSession(ticket: PaidCallTicket, role: PaidRole): void {
  paid?.meter.stop();
  const callId = ticket.call.id;
  paid = { role, callId, call: ticket.call, signaled: null, meter: new PaidMeter(api, callId, updatePaid) };
  paidEnded.delete(callId);
  const other = role === 'host' ? (ticket.call.guest_name ?? 'your guest') : ticket.call.host.display_name;
  openSession(ticket, `Paid call with ${other}`, 'paid');
  renderMeter();
  paid.meter.start();
}

/** Takes a newer view of the paid call (status poll, end answer, user-socket event) and shows it. */
function updatePaid(call: PaidCall): void {
  if (!paid || paid.callId !== call.id) return;
  paid.call = newerCall(paid.call, call);
  if (isTerminal(paid.call)) paid.meter.stop();
  renderMeter();
  if (document.body.dataset.state === 'summary') renderSummary();
}

function renderMeter(): void {
  const call = paid?.call;
  if (!paid || !call) return;
  $('meter').dataset.status = call.status;
  $('meter-status').textContent = meterHeadline(call, paid.role);
  const elapsed = call.elapsed_seconds ?? (call.status === 'waiting' || call.status === 'pending' ? 0 : null);
  $('meter-elapsed').textContent = clock(elapsed);
  $('meter-elapsed').dataset.seconds = call.elapsed_seconds === null ? '' : String(call.elapsed_seconds);
  $('meter-window').textContent = call.current_window ? `Window ${call.current_window} (${call.window_size_minutes} min)` : `${call.window_size_minutes}-min windows`;
  $('meter-window').dataset.window = call.current_window === null ? '' : String(call.current_window);
  $('meter-estimate').textContent = money(call.estimated_charge ?? (elapsed === 0 ? '0.00' : null), call.currency);
  $('meter-estimate').dataset.value = call.estimated_charge ?? '';
  $('meter-rate').textContent = rateText(call);
  $('meter-next-hold').textContent = call.next_hold_at && call.status === 'active' ? `next hold at ${timeOfDay(call.next_hold_at)}` : '';
  const warning = billingWarning(call, paid.signaled);
  $('meter-warning').hidden = !warning;
  $('meter-warning').textContent = warning ?? '';
  const endsAt = call.ends_at ?? (typeof paid.signaled?.ends_at === 'string' ? paid.signaled.ends_at : null);
  if (endsAt) $('meter-warning').dataset.endsAt = endsAt;
  else delete $('meter-warning').dataset.endsAt;
}

function showSummary(): void {
  if (!paid) return;
  setState('summary');
  renderSummary();
  // The meter keeps polling until the call is settled (completed, cancelled or failed).
  if (!isTerminal(paid.call) && !paid.meter.running) {
    paid.meter = new PaidMeter(api, paid.callId, updatePaid);
    paid.meter.start();
  }
}

function renderSummary(): void {
  const call = paid?.call;
  if (!paid || !call) return;
  const final = isTerminal(call);
  const summary = $('summary');
  summary.dataset.callId = call.id;
  summary.dataset.status = call.status;
  summary.dataset.final = String(final);
  $('summary-title').textContent = final ? 'Call summary' : 'Call ending: settling the payment…';
  $('summary-status').textContent = call.status;
  $('summary-duration').textContent = clock(call.duration_seconds);
  $('summary-duration').dataset.seconds = call.duration_seconds === null ? '' : String(call.duration_seconds);
  $('summary-billed-minutes').textContent = call.billed_minutes === null ? '–' : String(call.billed_minutes);
  $('summary-billed-minutes').dataset.value = call.billed_minutes === null ? '' : String(call.billed_minutes);
  $('summary-total').textContent = money(call.total_charged, call.currency);
  $('summary-total').dataset.value = call.total_charged ?? '';
  $('summary-reason').textContent = endReasonText(call.end_reason);
}

$('summary-done').addEventListener('click', () => {
  paid?.meter.stop();
  paid = null;
  if (guestCode) {
    setState('guest');
    void loadPublicLink(guestCode);
    return;
  }
  setState(me ? 'lobby' : 'signin');
  refreshRoomsSoon();
  refreshLinksSoon();
});

// ---------------------------------------------------------------------------------------------
// The guest's side of a link: /?link=<short_code>

let publicLinkRefresh: number | null = null;

async function loadPublicLink(code: string): Promise<void> {
  if (publicLinkRefresh !== null) clearTimeout(publicLinkRefresh);
  publicLinkRefresh = null;
  try {
    publicLink = await new Api().publicLink(code);
  } catch (error) {
    publicLink = null;
    $('guest-link').hidden = true;
    $('guest-form').hidden = true;
    guestError(error instanceof ApiError && (error.code === 'link_not_found' || error.code === 'validation_failed') ? 'This link does not exist or has expired.' : error);
    return;
  }
  renderPublicLink(publicLink);
  // Until the guest pays, keep the host's availability current.
  publicLinkRefresh = window.setTimeout(() => {
    publicLinkRefresh = null;
    if (document.body.dataset.state === 'guest') void loadPublicLink(code);
  }, 5000);
}

function renderPublicLink(link: PublicLink): void {
  $('guest-link').hidden = false;
  $('guest-host').textContent = link.host.display_name;
  $('guest-rate').textContent = rateText(link);
  $('guest-rate').dataset.value = link.rate_per_minute;
  $('guest-window').textContent = windowText(link.window_size_minutes);
  $('guest-window').dataset.value = String(link.window_size_minutes);
  $('guest-available').textContent = link.exhausted ? 'This link has been used up' : link.available ? 'Available now' : 'Not available right now';
  $('guest-available').dataset.available = String(link.available && !link.exhausted);
  $('guest-form').hidden = link.exhausted;
}

function guestError(error: unknown): void {
  let message: string;
  if (typeof error === 'string') message = error;
  else if (error instanceof ApiError && error.code === 'payment_failed') message = `Payment failed: ${error.message.replace(/\.?$/, '.')} Try another card.`;
  else if (error instanceof ApiError && error.code === 'host_unavailable') message = 'The host is not available right now: try again later.';
  else if (error instanceof ApiError && error.code === 'link_exhausted') message = 'This link has been used up.';
  else message = error instanceof ApiError ? `${error.message} (${error.code})` : error instanceof Error ? error.message : String(error);
  $('guest-error').textContent = message;
  $('guest-error').hidden = false;
  if (error instanceof ApiError) $('guest-error').dataset.code = error.code;
  else delete $('guest-error').dataset.code;
  status(message, true);
}

async function payAndCall(code: string): Promise<void> {
  const name = $<HTMLInputElement>('guest-name').value.trim();
  const card = $<HTMLSelectElement>('guest-card').value;
  if (!name) return;
  $('guest-error').hidden = true;
  status('Placing the payment hold…');
  if (!guest || guest.name !== name) {
    const answer = await new Api().guestToken(code, name);
    guest = { token: answer.access_token, name, user: answer.user };
    userSocket?.stop();
    userSocket = null;
  }
  api.token = guest.token;
  me = guest.user;
  $('me').textContent = `Calling as ${guest.user.display_name}`;
  $('me').dataset.userId = guest.user.id;
  // call.updated / call.ended reach the guest too: the summary does not wait for the next poll.
  if (!userSocket) {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    userSocket = new UserSocket(`${scheme}://${location.host}/v1/ws?token=${encodeURIComponent(guest.token)}`, onUserEvent, (connected) => {
      $('presence').dataset.connected = String(connected);
    });
  }
  const ticket = await api.initiatePaidCall(code, card, name);
  openPaidSession(ticket, 'guest');
}

function startGuest(code: string): void {
  setState('guest');
  status(`Loading link ${code}…`);
  $('guest-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const button = $<HTMLButtonElement>('guest-pay');
    if (button.disabled) return;
    button.disabled = true;
    payAndCall(code)
      .catch(guestError)
      .finally(() => {
        button.disabled = false;
      });
  });
  void loadPublicLink(code).then(() => {
    if (publicLink) status(`Call ${publicLink.host.display_name} for ${rateText(publicLink)}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Debug handle for tests and the console

window.callplane = {
  get me() {
    return me;
  },
  get state() {
    return document.body.dataset.state ?? 'loading';
  },
  get session() {
    return session;
  },
  get callId() {
    return session?.callId ?? null;
  },
  get participantId() {
    return session?.participantId ?? null;
  },
  get device() {
    return session?.device ?? null;
  },
  get sendTransport() {
    return session?.sendTransport ?? null;
  },
  get recvTransport() {
    return session?.recvTransport ?? null;
  },
  get producers() {
    return Object.fromEntries(session?.producers ?? []);
  },
  get consumers() {
    return session?.consumersByPeer ?? {};
  },
  get lastCallStatus() {
    return session?.lastCallStatus ?? null;
  },
  notifications,
  userEvents,
  get timings() {
    return session?.timings ?? null;
  },
  errors,
  get paid() {
    return paid ? { role: paid.role, callId: paid.callId, call: paid.call, polls: paid.meter.polls } : null;
  },
  get links() {
    return links;
  },
};

// ---------------------------------------------------------------------------------------------
// Start: a token from #token=… (kept out of server logs) or from this tab's session.

const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) history.replaceState(null, '', location.pathname + location.search);
const saved = fromHash ?? sessionStorage.getItem(TOKEN_KEY);
if (guestCode) {
  // A guest's page: the link's own flow, whatever this tab was signed in as.
  startGuest(guestCode);
} else if (saved) {
  status('Signing in…');
  signIn(saved).catch((error: unknown) => {
    setState('signin');
    showError(error);
  });
} else {
  setState('signin');
  status('Sign in with a name to try the demo');
}
