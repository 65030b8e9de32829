/**
 * A page script that calls through seed 000's messages with nothing but RTCPeerConnection and
 * WebSocket (no mediasoup-client), the way the seed tells client developers to: connect with the
 * token, offer, apply answers, answer the server's offers, trickle candidates. State is kept on
 * window.sdpCall for the test to read.
 */
import type { Page } from 'playwright-core';

export interface SdpCallState {
  errors: Array<{ code: string; message: string }>;
  peersJoined: Array<{ participantId: string; displayName: string }>;
  answers: number;
  serverOffers: number;
  tracks: number;
}

/** Starts the call in `page` (already on a secure origin) against `wsUrl`. */
export async function startSdpCall(page: Page, wsUrl: string, video = true): Promise<void> {
  await page.evaluate(
    async ({ wsUrl, video }) => {
      const state = { errors: [] as unknown[], peersJoined: [] as unknown[], answers: 0, serverOffers: 0, tracks: 0 };
      const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: video ? { width: 320, height: 240, frameRate: 15 } : false });
      const pc = new RTCPeerConnection();
      for (const track of media.getTracks()) pc.addTransceiver(track, { direction: 'sendrecv', streams: [media] });
      // Remote media plays as a page would play it: audio is only pulled from the jitter buffer
      // (totalSamplesReceived) while something renders it.
      pc.ontrack = (event) => {
        state.tracks++;
        const element = document.createElement(event.track.kind === 'audio' ? 'audio' : 'video');
        element.autoplay = true;
        (element as HTMLMediaElement & { playsInline?: boolean }).playsInline = true;
        element.srcObject = new MediaStream([event.track]);
        document.body.append(element);
      };
      const ws = new WebSocket(wsUrl);
      const send = (type: string, payload: unknown) => ws.send(JSON.stringify({ type, payload }));
      pc.onicecandidate = (event) => send('ice_candidate', event.candidate ? event.candidate.toJSON() : null);
      ws.onmessage = (event) => void handle(event).catch((error: Error) => state.errors.push({ code: 'page', message: error.message }));
      const handle = async (event: MessageEvent) => {
        const { type, payload } = JSON.parse(event.data as string);
        if (type === 'answer') {
          await pc.setRemoteDescription(payload);
          state.answers++;
        } else if (type === 'offer') {
          state.serverOffers++;
          await pc.setRemoteDescription(payload);
          await pc.setLocalDescription(await pc.createAnswer());
          send('answer', pc.localDescription);
        } else if (type === 'ice_candidate') {
          if (payload) await pc.addIceCandidate(payload).catch(() => undefined);
        } else if (type === 'peer_joined') state.peersJoined.push(payload);
        else if (type === 'error') state.errors.push(payload);
      };
      await new Promise((resolve) => (ws.onopen = resolve));
      await pc.setLocalDescription(await pc.createOffer());
      send('offer', pc.localDescription);
      Object.assign(window, { sdpCall: state, sdpPc: pc, sdpWs: ws });
    },
    { wsUrl, video },
  );
}

/** Every inbound-rtp stat of the page (for failure messages). */
export function sdpInboundRaw(page: Page): Promise<unknown[]> {
  return page.evaluate(async () => {
    const rows: unknown[] = [];
    (await (window as unknown as { sdpPc: RTCPeerConnection }).sdpPc.getStats()).forEach((s: Record<string, unknown>) => {
      if (s.type === 'inbound-rtp') rows.push({ kind: s.kind, mid: s.mid, ssrc: s.ssrc, codecId: s.codecId, packetsReceived: s.packetsReceived, framesReceived: s.framesReceived, framesDecoded: s.framesDecoded, pliCount: s.pliCount, nackCount: s.nackCount, totalSamplesReceived: s.totalSamplesReceived, packetsDiscarded: s.packetsDiscarded });
    });
    return rows;
  });
}

export function sdpState(page: Page): Promise<SdpCallState> {
  return page.evaluate(() => (window as unknown as { sdpCall: SdpCallState }).sdpCall);
}

/** Inbound media of the page's RTCPeerConnection, summed per kind. */
export async function sdpInbound(page: Page): Promise<{ framesDecoded: number; audioPackets: number; samples: number }> {
  return page.evaluate(async () => {
    const pc = (window as unknown as { sdpPc: RTCPeerConnection }).sdpPc;
    const out = { framesDecoded: 0, audioPackets: 0, samples: 0 };
    (await pc.getStats()).forEach((s: Record<string, number | string>) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'video') out.framesDecoded += Number(s.framesDecoded ?? 0);
      if (s.kind === 'audio') {
        out.audioPackets += Number(s.packetsReceived ?? 0);
        out.samples += Number(s.totalSamplesReceived ?? 0);
      }
    });
    return out;
  });
}
