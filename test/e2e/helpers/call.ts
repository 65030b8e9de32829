/**
 * A two-page room video call for the end-to-end tests that are about what happens *in* a call
 * (worker death, active speaker) rather than how one is set up: the room is created through the
 * API, the pages start and join it from their room lists, and both decode each other before the
 * helper returns.
 */
import type { Test } from 'tap';
import type { TestServer } from '../../helpers/server.ts';
import {
  demoSignIn,
  inboundRtp,
  dumpPageLogsOnFailure,
  launchClient,
  openDemo,
  waitFor,
  waitForMedia,
  waitForParticipantId,
  waitForPublishing,
  waitForState,
  type Client,
  type InboundRtp,
} from './browser.ts';

export interface TwoPartyCall {
  alice: Client;
  bob: Client;
  /** Demo users (id and access token). */
  a: { userId: string; token: string };
  b: { userId: string; token: string };
  roomId: string;
  callId: string;
  alicePid: string;
  bobPid: string;
  /** What each page receives from the other once the call is up. */
  bobGetsAlice: { video: InboundRtp | null; audio: InboundRtp | null };
  aliceGetsBob: { video: InboundRtp | null; audio: InboundRtp | null };
}

/** Clicks the room's start-video / join-call button on the page's room list; waits for the call state. */
export async function joinFromRoomList(client: Client, roomId: string, action: 'start-video' | 'join-call'): Promise<string> {
  await client.page.getByTestId('refresh-rooms').click();
  const button = client.page.locator(`[data-testid=room][data-room-id="${roomId}"] [data-testid=${action}]`);
  await button.waitFor({ timeout: 10_000 });
  await button.click();
  await waitForState(client, 'call');
  return waitForParticipantId(client);
}

/**
 * Alice (room creator) starts a video call, Bob joins it; returns once both publish audio + video
 * and decode each other's video and receive each other's audio. Page logs are dumped on failure.
 */
export async function twoPartyCall(t: Test, server: TestServer, roomName: string): Promise<TwoPartyCall> {
  const [alice, bob] = await Promise.all([launchClient(t, 'Alice'), launchClient(t, 'Bob')]);
  dumpPageLogsOnFailure(t, [alice, bob]);
  await Promise.all([openDemo(alice, server.baseUrl), openDemo(bob, server.baseUrl)]);
  const [a, b] = await Promise.all([demoSignIn(alice, 'Alice'), demoSignIn(bob, 'Bob')]);
  const created = await server.api('/v1/rooms', { method: 'POST', token: a.token, body: { name: roomName, members: [{ user_id: b.userId, power: 0 }] } });
  if (created.status !== 201) throw new Error(`POST /v1/rooms answered ${created.status}: ${JSON.stringify(created.body)}`);
  const roomId = created.body.room.id as string;

  const alicePid = await joinFromRoomList(alice, roomId, 'start-video');
  await waitForPublishing(alice);
  const callId = (await alice.page.evaluate(() => window.callplane.callId))!;
  const bobPid = await joinFromRoomList(bob, roomId, 'join-call');
  await waitForPublishing(bob);
  const [bobGetsAlice, aliceGetsBob] = await Promise.all([waitForMedia(bob, { from: alicePid }), waitForMedia(alice, { from: bobPid })]);
  return { alice, bob, a, b, roomId, callId, alicePid, bobPid, bobGetsAlice, aliceGetsBob };
}

/**
 * Waits until `client` decodes video from `from` through a consumer not in `excludeConsumers`, and
 * that consumer's framesDecoded then grows by at least `frames` (video is flowing, not one stray
 * frame). Returns the consumer's id and its first and last counts.
 */
export async function waitForVideoFlowing(
  client: Client,
  from: string,
  options: { excludeConsumers?: Array<string | null>; frames?: number; timeoutMs?: number } = {},
): Promise<{ consumerId: string; firstFrames: number; lastFrames: number }> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const first = await waitForMedia(client, { from, audio: false, excludeConsumers: options.excludeConsumers, timeoutMs });
  const consumerId = first.video!.consumerId!;
  const firstFrames = first.video!.framesDecoded;
  const wanted = options.frames ?? 10;
  const last = await waitFor(
    `${client.name}'s consumer ${consumerId} of ${from} to decode ${wanted} more frames (from ${firstFrames})`,
    async () => {
      const row = (await inboundRtp(client.page)).find((r) => r.kind === 'video' && r.consumerId === consumerId);
      return row && row.framesDecoded >= firstFrames + wanted ? row : null;
    },
    { timeoutMs, logs: client.logs },
  );
  return { consumerId, firstFrames, lastFrames: last.framesDecoded };
}
