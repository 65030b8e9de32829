/* eslint-disable @typescript-eslint/no-explicit-any -- REST answers are JSON of many shapes */
/**
 * The simulated WebRTC peer (test/helpers/node-peer.ts) against a real server: real ICE, DTLS
 * and SRTP through the SFU, from the REST room-call flow to media flowing both ways.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import type { TransportConnectedEvent } from '../../src/sfu/types.ts';
import { NodePeer } from '../helpers/node-peer.ts';
import { startTestServer } from '../helpers/server.ts';

const server = await startTestServer(t, { media: { workers: 1 }, calls: { reconnect_grace_seconds: 1 } });

/** Every transport the SFU saw reach DTLS 'connected', and a way to wait for a set of them. */
const dtlsConnected: TransportConnectedEvent[] = [];
const dtlsWaiters: Array<() => void> = [];
server.ctx.sfu.on('transportconnected', (event) => {
  dtlsConnected.push(event);
  for (const check of [...dtlsWaiters]) check();
});
function sfuSawConnected(participantIds: string[], directions: Array<'send' | 'recv'>, timeoutMs = 15_000): Promise<void> {
  const complete = (): boolean =>
    participantIds.every((pid) => directions.every((d) => dtlsConnected.some((e) => e.participantId === pid && e.direction === d)));
  if (complete()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!complete()) return;
      clearTimeout(timer);
      dtlsWaiters.splice(dtlsWaiters.indexOf(check), 1);
      resolve();
    };
    const timer = setTimeout(() => {
      dtlsWaiters.splice(dtlsWaiters.indexOf(check), 1);
      reject(new Error(`the SFU saw only ${JSON.stringify(dtlsConnected.filter((e) => participantIds.includes(e.participantId)))}`));
    }, timeoutMs);
    dtlsWaiters.push(check);
  });
}

let userCount = 0;
async function demoUser(): Promise<{ id: string; token: string }> {
  const login = await server.api('/v1/demo/login', { method: 'POST', body: { display_name: `Peer ${++userCount}` } });
  if (login.status !== 200 && login.status !== 201) throw new Error(`demo login: ${login.status} ${JSON.stringify(login.body)}`);
  return { id: login.body.user.id, token: login.body.access_token };
}

interface Ticket {
  userId: string;
  signalingUrl: string;
  token: string;
}

/** A room of two users, a call in it started by the first and joined by the second: their signaling tickets. */
async function roomCall(type: 'audio' | 'video'): Promise<{ callId: string; tickets: [Ticket, Ticket] }> {
  const [a, b] = await Promise.all([demoUser(), demoUser()]);
  const room = await server.api('/v1/rooms', { method: 'POST', token: a.token, body: { name: `Room ${userCount}`, members: [{ user_id: b.id }] } });
  if (room.status !== 201) throw new Error(`POST /v1/rooms: ${room.status} ${JSON.stringify(room.body)}`);
  const started = await server.api('/v1/calls/initiate', { method: 'POST', token: a.token, body: { room_id: room.body.room.id, type } });
  if (started.status !== 201) throw new Error(`initiate: ${started.status} ${JSON.stringify(started.body)}`);
  const callId = started.body.call.id as string;
  const joined = await server.api(`/v1/calls/${callId}/join`, { method: 'POST', token: b.token });
  if (joined.status !== 200) throw new Error(`join: ${joined.status} ${JSON.stringify(joined.body)}`);
  const ticket = (userId: string, body: any): Ticket => ({ userId, signalingUrl: body.signaling_url, token: body.signaling_token });
  return { callId, tickets: [ticket(a.id, started.body), ticket(b.id, joined.body)] };
}

const ms = (from: number, to: number | undefined): string => (to === undefined ? 'n/a' : `${Math.round(to - from)} ms`);

t.test('two Node peers publish and receive each other through the SFU', async (t) => {
  const { callId, tickets } = await roomCall('video');
  const ann = await NodePeer.connect({ signalingUrl: tickets[0].signalingUrl, token: tickets[0].token, produce: { audio: true, video: true } });
  t.teardown(() => ann.close());
  const bob = await NodePeer.connect({ signalingUrl: tickets[1].signalingUrl, token: tickets[1].token });
  t.teardown(() => bob.close());

  t.equal(ann.callId, callId);
  t.equal(bob.callId, callId);
  t.not(ann.participantId, bob.participantId);
  t.same(
    bob.welcome!.peers.map((p) => [p.participantId, p.userId]),
    [[ann.participantId, tickets[0].userId]],
    "Bob's welcome lists Ann (the peer already there)",
  );
  const joined = await ann.waitFor('peer_joined', (p) => p.participantId === bob.participantId);
  t.equal(joined.userId, tickets[1].userId, 'Ann is told Bob joined');
  t.same(
    bob.notifications.filter((n) => n.type === 'peer_joined').map((n) => (n.payload as { participantId: string }).participantId),
    [],
    'Bob is not told about himself',
  );

  await Promise.all([ann.sendConnected(), bob.sendConnected()]);
  t.equal(ann.sendTransport!.connectionState, 'connected');
  t.equal(bob.sendTransport!.connectionState, 'connected');
  t.comment(`Ann: connect → welcome ${ms(ann.timings.start, ann.timings.welcome)}, → send transport connected ${ms(ann.timings.start, ann.timings.sendConnected)}`);
  t.comment(`Bob: connect → welcome ${ms(bob.timings.start, bob.timings.welcome)}, → send transport connected ${ms(bob.timings.start, bob.timings.sendConnected)}`);

  await sfuSawConnected([ann.participantId, bob.participantId], ['send', 'recv']);
  const seen = dtlsConnected.filter((e) => e.callId === callId);
  t.same(
    new Set(seen.map((e) => `${e.participantId}/${e.direction}`)),
    new Set([`${ann.participantId}/send`, `${ann.participantId}/recv`, `${bob.participantId}/send`, `${bob.participantId}/recv`]),
    'the SFU saw DTLS connect on both transports of both peers',
  );
  t.equal(seen.find((e) => e.participantId === ann.participantId && e.direction === 'send')!.transportId, ann.sendTransport!.id);
  t.equal(seen.find((e) => e.participantId === bob.participantId && e.direction === 'recv')!.transportId, bob.recvTransport!.id);

  // 25 audio packets: half a second of 20 ms Opus frames, so the tone keeps flowing, not just a first packet.
  const [annHearsBob, bobHearsAnn, bobSeesAnn] = await Promise.all([
    ann.waitForRtp({ from: bob.participantId, kind: 'audio', minPackets: 25, timeoutMs: 15_000 }),
    bob.waitForRtp({ from: ann.participantId, kind: 'audio', minPackets: 25, timeoutMs: 15_000 }),
    bob.waitForRtp({ from: ann.participantId, kind: 'video', timeoutMs: 15_000 }),
  ]);
  t.ok(annHearsBob.bytesReceived > 0 && annHearsBob.packetsReceived >= 25, `Ann receives Bob's audio (${annHearsBob.packetsReceived} packets, ${annHearsBob.bytesReceived} bytes)`);
  t.equal(annHearsBob.producerId, bob.producers.get('microphone')!.id);
  t.ok(bobHearsAnn.bytesReceived > 0 && bobHearsAnn.packetsReceived >= 25, `Bob receives Ann's audio (${bobHearsAnn.packetsReceived} packets, ${bobHearsAnn.bytesReceived} bytes)`);
  t.equal(bobHearsAnn.producerId, ann.producers.get('microphone')!.id);
  t.ok(bobSeesAnn.bytesReceived > 0, `Bob receives Ann's video (${bobSeesAnn.bytesReceived} bytes)`);
  t.equal(bobSeesAnn.producerId, ann.producers.get('camera')!.id);
  t.same(ann.errors, [], 'no background failure on Ann');
  t.same(bob.errors, [], 'no background failure on Bob');

  const closing = ann.close();
  t.equal(ann.close(), closing, 'close() is idempotent');
  const left = await bob.waitFor('peer_left', (p) => p.participantId === ann.participantId);
  t.equal(left.participantId, ann.participantId, 'closing Ann tells Bob she left');
  t.equal((await ann.closed).code, 4012, 'the server closed Ann after her leave (4012)');
  t.equal(ann.sendTransport!.closed, true, "Ann's send transport is closed");
  t.equal(ann.recvTransport!.closed, true, "Ann's receive transport is closed");
  t.same((await bob.inboundStats()).filter((s) => s.participantId === ann.participantId), [], "Bob's consumers of Ann are gone");
});

t.test('a peer that drops without leaving is kept for the grace period, then announced gone', async (t) => {
  const { tickets } = await roomCall('audio');
  const [cat, dan] = await Promise.all(tickets.map((ticket) => NodePeer.connect({ signalingUrl: ticket.signalingUrl, token: ticket.token })));
  t.teardown(() => cat!.close());
  t.teardown(() => dan!.close());
  await Promise.all([cat!.sendConnected(), dan!.sendConnected()]);
  const dropped = performance.now();
  const info = await dan!.close({ leave: false });
  t.equal(info.code, 1000, 'the client closed the socket itself');
  const left = await cat!.waitFor('peer_left', (p) => p.participantId === dan!.participantId, 10_000);
  t.equal(left.participantId, dan!.participantId);
  const after = performance.now() - dropped;
  t.ok(after >= 900, `peer_left only after the 1 s reconnect grace (${Math.round(after)} ms)`);
});

t.test('a refused token fails connect() with the close code', async (t) => {
  const { tickets } = await roomCall('audio');
  const first = await NodePeer.connect({ signalingUrl: tickets[0].signalingUrl, token: tickets[0].token, produce: { audio: false }, consume: false });
  t.teardown(() => first.close());
  t.equal(first.sendTransport, null, 'nothing to publish: no send transport');
  t.equal(first.recvTransport, null, 'consume: false: no receive transport');
  await t.rejects(first.sendConnected(), /no send transport/);
  // Signaling tokens are single use.
  await t.rejects(NodePeer.connect({ signalingUrl: tickets[0].signalingUrl, token: tickets[0].token }), /no welcome: .*closed 4001/);
});

const cpuMs = (usage: NodeJS.CpuUsage): number => Math.round((usage.user + usage.system) / 1000);

function cpuTicks(pid: number | null): number {
  if (!pid) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (1/100 s)
  } catch {
    return 0;
  }
}

t.test('10 peers (5 calls × 2) connect concurrently and all reach connected', async (t) => {
  const calls = await Promise.all(Array.from({ length: 5 }, () => roomCall('audio')));
  const workerPid = server.ctx.media.snapshot()[0]?.pid ?? null;
  const cpuBefore = process.cpuUsage();
  const workerBefore = cpuTicks(workerPid);
  const started = performance.now();

  const peers = await Promise.all(calls.flatMap(({ tickets }) => tickets.map((ticket) => NodePeer.connect({ signalingUrl: ticket.signalingUrl, token: ticket.token }))));
  for (const peer of peers) t.teardown(() => peer.close());
  await Promise.all(peers.map((peer) => peer.sendConnected(30_000)));
  const allConnected = performance.now() - started;
  t.equal(peers.filter((p) => p.sendTransport?.connectionState === 'connected').length, 10, 'all 10 send transports are connected');
  await sfuSawConnected(peers.map((p) => p.participantId), ['send', 'recv'], 30_000);

  const connectWall = performance.now() - started;
  const connectCpu = process.cpuUsage(cpuBefore);
  const connectWorkerMs = (cpuTicks(workerPid) - workerBefore) * 10;
  const perPeer = peers.map((p) => Math.round(p.timings.sendConnected! - p.timings.start)).sort((x, y) => x - y);
  t.comment(`10 peers: all send transports connected after ${Math.round(allConnected)} ms; per peer connect → send connected (sorted): ${perPeer.join(', ')} ms`);
  t.comment(
    `CPU while connecting (${Math.round(connectWall)} ms): test process ${cpuMs(connectCpu)} ms (${(cpuMs(connectCpu) / connectWall).toFixed(2)} cores), mediasoup worker ${connectWorkerMs} ms`,
  );

  // Media flows in every call, both ways, for 2 s (100 packets of 20 ms Opus): the steady state's CPU.
  const flowCpuBefore = process.cpuUsage();
  const flowWorkerBefore = cpuTicks(workerPid);
  const flowStarted = performance.now();
  const received = await Promise.all(
    peers.map((peer, i) => peer.waitForRtp({ from: peers[i % 2 === 0 ? i + 1 : i - 1]!.participantId, kind: 'audio', minPackets: 100, timeoutMs: 20_000 })),
  );
  const flowWall = performance.now() - flowStarted;
  for (const [i, stats] of received.entries()) {
    t.ok(stats.bytesReceived > 0 && stats.packetsReceived >= 100, `peer ${i + 1} receives its partner's audio (${stats.packetsReceived} packets, ${stats.bytesReceived} bytes)`);
  }
  const flowCpu = process.cpuUsage(flowCpuBefore);
  const flowWorkerMs = (cpuTicks(workerPid) - flowWorkerBefore) * 10;
  t.comment(
    `CPU with 10 audio peers flowing (${Math.round(flowWall)} ms): test process ${cpuMs(flowCpu)} ms (${(cpuMs(flowCpu) / flowWall).toFixed(2)} cores), ` +
      `mediasoup worker ${flowWorkerMs} ms (${(flowWorkerMs / flowWall).toFixed(2)} cores)`,
  );

  await Promise.all(peers.map((peer) => peer.close()));
  t.same(
    peers.map((p) => p.closeInfo?.code),
    Array(10).fill(4012),
    'every peer left cleanly',
  );
});
