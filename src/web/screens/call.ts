/**
 * The call screen: a grid of tiles (own camera, one per remote participant, with their audio),
 * mute buttons, leave and end, driven by a CallSession. Room and paid calls open it; each says how
 * its call ends and where the page goes after.
 */
import type { NotificationPayloads } from '../../protocol/signaling.ts';
import { CallSession, type CallView, type FinishReason, type PageSession, type PeerState, type SessionTicket } from '../call.ts';
import { PlainCallSession } from '../plain-call.ts';
import { $, api, h, showError, showScreen, status } from '../page.ts';
import { mapWithout, pageLog, store } from '../store.ts';

export interface OpenSessionOptions {
  title: string;
  kind: 'room' | 'paid';
  /** Every `call_status` notification of the call. */
  callStatus?: (payload: NotificationPayloads['call_status']) => void;
  /** The call's sharedSecret when this page encrypts its media end-to-end (videochats). */
  e2eeSecret?: string | null;
  /** Where the page goes once the call is over for this page (the grid is already cleared). */
  finished: (reason: FinishReason, message: string) => void;
}

function videoConstraints(): MediaTrackConstraints {
  // ?video=320x240@15 picks the capture size (tests use small frames to save CPU).
  const match = /^(\d+)x(\d+)(?:@(\d+))?$/.exec(new URLSearchParams(location.search).get('video') ?? '');
  if (match) return { width: { ideal: Number(match[1]) }, height: { ideal: Number(match[2]) }, frameRate: { ideal: Number(match[3] ?? 30) } };
  return { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } };
}

/** Whether a call is on screen and not over yet: one call at a time. */
export function inCall(): boolean {
  const { session } = store.get();
  return !!session && !session.finished;
}

export function openSession(ticket: SessionTicket, options: OpenSessionOptions): void {
  const { kind } = options;
  if (kind === 'room') {
    // A room call replaces the summary of a paid call this page showed.
    store.get().paid?.meter.stop();
    store.update({ paid: null });
  }
  const grid = $('grid');
  grid.replaceChildren();
  $('call-title').textContent = options.title;
  $('call').dataset.callId = ticket.call.id;
  $('call').dataset.kind = kind;
  $('mute-cam').hidden = (ticket.call.type ?? 'video') !== 'video';
  // A paid call is not left, it is ended (and billed) for both; its meter shows above the grid.
  $('leave').hidden = kind === 'paid';
  $('end').textContent = kind === 'paid' ? 'End call' : 'End for everyone';
  $<HTMLButtonElement>('end').disabled = false;
  $('meter').hidden = kind !== 'paid';
  store.update(({ invites }) => (invites.has(ticket.call.id) ? { invites: mapWithout(invites, ticket.call.id) } : {}));
  showScreen('call');
  // ?mode=sdp: plain WebRTC (offer / answer on the socket, docs/sdp.md, no mediasoup-client; src/web/plain-call.ts).
  const plain = new URLSearchParams(location.search).get('mode') === 'sdp' && !options.e2eeSecret;
  const session: PageSession = plain
    ? new PlainCallSession(api, ticket, createView(options), { video: videoConstraints(), notifications: pageLog.notifications })
    : new CallSession(api, ticket, createView(options), { video: videoConstraints(), notifications: pageLog.notifications, e2eeSecret: options.e2eeSecret ?? null });
  $('call').dataset.mode = plain ? 'sdp' : 'sdk';
  store.update({ session });
  renderMuteButtons();
  session.start();
}

function renderMuteButtons(): void {
  const { session } = store.get();
  const mic = $('mute-mic');
  const cam = $('mute-cam');
  mic.setAttribute('aria-pressed', String(Boolean(session?.micMuted)));
  mic.textContent = session?.micMuted ? 'Unmute mic' : 'Mute mic';
  cam.setAttribute('aria-pressed', String(Boolean(session?.camMuted)));
  cam.textContent = session?.camMuted ? 'Start camera' : 'Stop camera';
}

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

function createView(options: OpenSessionOptions): CallView {
  const selfTileId = 'self';
  return {
    status: (text) => status(text),
    localStream(stream) {
      let tile = tileFor(selfTileId);
      if (!stream) {
        tile?.remove();
        return;
      }
      tile ??= makeTile(selfTileId, `${store.get().me?.display_name ?? 'You'} (you)`, true);
      const video = tile.querySelector('video')!;
      const tracks = stream.getVideoTracks();
      video.srcObject = tracks.length ? new MediaStream(tracks) : null;
      tile.dataset.videoMuted = String(!tracks.length);
    },
    localMediaChanged() {
      const tile = tileFor(selfTileId);
      const { session } = store.get();
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
        const current = store.get().session;
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
      const ownId = store.get().session?.participantId;
      for (const tile of $('grid').querySelectorAll<HTMLElement>('[data-testid="tile"]')) {
        const id = tile.dataset.self === 'true' ? ownId : tile.dataset.participantId;
        tile.dataset.speaking = String(participantId !== null && id === participantId);
      }
    },
    callStatus(payload) {
      options.callStatus?.(payload);
    },
    finished(reason, message) {
      $('grid').replaceChildren();
      delete $('call').dataset.callId;
      options.finished(reason, message);
    },
  };
}

/** `endCall` is what the End button does (a paid call's end answer carries its final figures). */
export function mountCall({ endCall }: { endCall: (session: PageSession) => Promise<unknown> }): void {
  $('mute-mic').addEventListener('click', () => {
    store.get().session?.toggleMic().catch(showError);
    renderMuteButtons();
  });
  $('mute-cam').addEventListener('click', () => {
    store.get().session?.toggleCam().catch(showError);
    renderMuteButtons();
  });
  $('leave').addEventListener('click', () => {
    store.get().session?.leave().catch(showError);
  });
  $('end').addEventListener('click', () => {
    const { session } = store.get();
    if (!session || session.finished) return;
    const button = $<HTMLButtonElement>('end');
    button.disabled = true;
    endCall(session).catch((error: unknown) => {
      button.disabled = false;
      showError(error);
    });
  });
  document.addEventListener('click', () => {
    for (const audio of document.querySelectorAll<HTMLAudioElement>('audio')) if (audio.paused) void audio.play().catch(() => undefined);
  });
}
