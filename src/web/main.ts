/**
 * The callplane demo page: demo sign-in (or a pasted access token), rooms, ringing invites over the
 * user socket, and a call grid driven by CallSession. Elements carry data-testid attributes and
 * `window.callplane` exposes the live state for the end-to-end tests.
 */
import type { types } from 'mediasoup-client';
import type { UserEventEnvelope } from '../protocol/user-events.ts';
import { Api, ApiError, type Call, type CallTicket, type Room, type User } from './api.ts';
import { CallSession, type CallView, type FinishReason, type PeerState, type ReceivedNotification } from './call.ts';
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
}

declare global {
  interface Window {
    callplane: CallplaneDebug;
  }
}

const TOKEN_KEY = 'callplane.token';
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

function setState(state: 'signin' | 'lobby' | 'call'): void {
  document.body.dataset.state = state;
  $('signin').hidden = state !== 'signin';
  $('lobby').hidden = state !== 'lobby';
  $('call').hidden = state !== 'call';
  $('sign-out').hidden = state === 'signin';
}

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
  });
  await Promise.all([loadRooms(), loadMembers()]);
}

function signOut(): void {
  if (session && !session.finished) void session.leave().catch(() => undefined);
  userSocket?.stop();
  userSocket = null;
  sessionStorage.removeItem(TOKEN_KEY);
  api.token = null;
  me = null;
  invites.clear();
  renderInvites();
  $('me').textContent = '';
  setState('signin');
  status('Signed out');
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $<HTMLInputElement>('login-name').value.trim();
  if (!name) return;
  status('Signing in…');
  api.token = null;
  api
    .demoLogin(name)
    .then((answer) => signIn(answer.access_token, answer.user))
    .catch(showError);
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
    .then((ticket) => openSession(ticket, room.name))
    .catch(showError);
}

function joinCall(callId: string, roomName: string): void {
  if (session && !session.finished) return;
  status(`Joining the call in ${roomName}…`);
  api
    .joinCall(callId)
    .then((ticket) => openSession(ticket, roomName))
    .catch((error: unknown) => {
      showError(error);
      refreshRoomsSoon();
    });
}

function openSession(ticket: CallTicket, roomName: string): void {
  const grid = $('grid');
  grid.replaceChildren();
  $('call-title').textContent = `${ticket.call.type === 'video' ? 'Video' : 'Audio'} call in ${roomName}`;
  $('call').dataset.callId = ticket.call.id;
  $('mute-cam').hidden = ticket.call.type !== 'video';
  invites.delete(ticket.call.id);
  renderInvites();
  setState('call');
  session = new CallSession(api, ticket, createView(), { video: videoConstraints(), notifications });
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
  session?.end().catch(showError);
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

function createView(): CallView {
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
    finished(reason: FinishReason, message: string) {
      $('grid').replaceChildren();
      delete $('call').dataset.callId;
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
};

// ---------------------------------------------------------------------------------------------
// Start: a token from #token=… (kept out of server logs) or from this tab's session.

const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) history.replaceState(null, '', location.pathname + location.search);
const saved = fromHash ?? sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  status('Signing in…');
  signIn(saved).catch((error: unknown) => {
    setState('signin');
    showError(error);
  });
} else {
  setState('signin');
  status('Sign in with a name to try the demo');
}
