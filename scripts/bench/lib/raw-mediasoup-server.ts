// The raw-mediasoup harness of the control-plane benchmark (docs/benchmarks.md, "Control-plane
// overhead"): one mediasoup worker, router (callplane's codecs, an audio level observer as
// callplane has) and WebRtcServer behind the smallest server the load tester can drive — the few
// REST answers it asks for, held in memory, and the signaling requests it sends. No database, no
// billing, no auth beyond the key, no limits. Not a product: a baseline to subtract.
//
//   node --import tsx scripts/bench/lib/raw-mediasoup-server.ts <http port> <media port> <api key>
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { WebSocketServer, type WebSocket } from 'ws';
import { mediaCodecs } from '../../../src/media/codecs.ts';

const [httpPort, mediaPort, apiKey] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]!];
const worker = await mediasoup.createWorker({ logLevel: 'warn' });
const webRtcServer = await worker.createWebRtcServer({ listenInfos: (['udp', 'tcp'] as const).map((protocol) => ({ protocol, ip: '127.0.0.1', port: mediaPort })) });
const router = await worker.createRouter({ mediaCodecs });
await router.createAudioLevelObserver({ maxEntries: 1, threshold: -70, interval: 800 });

interface Peer {
  id: string;
  ws: WebSocket;
  transports: Map<string, types.WebRtcTransport>;
  consumers: Map<string, types.Consumer>;
  producers: Map<string, types.Producer>;
}
const peers = new Map<string, Peer>();
const producerOwner = new Map<string, { peer: Peer; producer: types.Producer }>();
let consumerCount = 0;

const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'callplane_' });
new Counter({
  name: 'callplane_media_worker_cpu_seconds_total', help: 'worker CPU', labelNames: ['worker'], registers: [registry],
  async collect() {
    this.reset();
    const usage = await worker.getResourceUsage();
    this.inc({ worker: '0' }, (usage.ru_utime + usage.ru_stime) / 1000);
  },
});
new Gauge({ name: 'callplane_media_worker_consumers', help: 'consumers', labelNames: ['worker'], registers: [registry], collect() { this.set({ worker: '0' }, consumerCount); } });
new Gauge({ name: 'callplane_media_worker_producers', help: 'producers', labelNames: ['worker'], registers: [registry], collect() { this.set({ worker: '0' }, producerOwner.size); } });

const id = (): string => randomUUID().replace(/-/g, '').slice(0, 26).toUpperCase();
const json = (res: import('node:http').ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};
const calls = new Set<string>();

const http = createServer((req, res) => {
  const path = (req.url ?? '').split('?')[0]!;
  if (path === '/healthz') return json(res, 200, { status: 'ok' });
  if (path === '/metrics') return void registry.metrics().then((text) => res.writeHead(200, { 'content-type': 'text/plain' }).end(text));
  const authed = req.headers['x-api-key'] === apiKey || String(req.headers.authorization ?? '').startsWith('Bearer ');
  if (!authed) return json(res, 401, { error: { code: 'unauthorized', message: 'Invalid API key' } });
  const host = `ws://127.0.0.1:${httpPort}/v1/signal`;
  req.resume().on('end', () => {
    if (path === '/v1/users' && req.method === 'GET') return json(res, 200, { success: true, data: [] });
    if (path === '/v1/users') return json(res, 201, { user: { id: id() } });
    if (path === '/v1/auth/token') return json(res, 201, { access_token: id() });
    if (path === '/v1/rooms') return json(res, 201, { room: { id: id() } });
    if (path === '/v1/calls/initiate') {
      const callId = id();
      calls.add(callId);
      return json(res, 201, { call: { id: callId }, signaling_url: host, signaling_token: id() });
    }
    const join = /^\/v1\/calls\/(\w+)\/join$/.exec(path);
    if (join) return json(res, 200, { call: { id: join[1] }, signaling_url: host, signaling_token: id() });
    if (/^\/v1\/calls\/\w+\/end$/.test(path) || (req.method === 'DELETE' && path.startsWith('/v1/rooms/'))) return json(res, 200, {});
    json(res, 404, { error: { code: 'not_found', message: path } });
  });
});

const wss = new WebSocketServer({ server: http, path: '/v1/signal' });
wss.on('connection', (ws) => {
  const peer: Peer = { id: id(), ws, transports: new Map(), consumers: new Map(), producers: new Map() };
  const others = [...peers.values()];
  peers.set(peer.id, peer);
  const send = (type: string, payload: unknown, requestId?: unknown): void => ws.send(JSON.stringify(requestId === undefined ? { type, payload } : { type, id: requestId, payload }));
  send('welcome', {
    participantId: peer.id, callId: 'raw', role: 'member', permissions: { canPublish: true, canSubscribe: true, canEndCall: false },
    routerRtpCapabilities: router.rtpCapabilities, iceServers: [],
    peers: others.map((o) => ({ participantId: o.id, userId: o.id, displayName: o.id, producers: [...o.producers.values()].map((p) => ({ producerId: p.id, kind: p.kind, source: p.kind === 'audio' ? 'microphone' : 'camera', paused: false })) })),
  });
  /* eslint-disable @typescript-eslint/no-explicit-any -- the harness trusts its only client, the load tester */
  const handle = async (type: string, p: any): Promise<unknown> => {
    switch (type) {
      case 'createTransport': {
        const t = await router.createWebRtcTransport({ webRtcServer, enableUdp: true, enableTcp: true, preferUdp: true, initialAvailableOutgoingBitrate: 1_000_000 });
        peer.transports.set(p.direction, t);
        return { id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters };
      }
      case 'connectTransport':
        await [...peer.transports.values()].find((t) => t.id === p.transportId)!.connect({ dtlsParameters: p.dtlsParameters });
        return {};
      case 'produce': {
        const producer = await peer.transports.get('send')!.produce({ kind: p.kind, rtpParameters: p.rtpParameters });
        peer.producers.set(producer.id, producer);
        producerOwner.set(producer.id, { peer, producer });
        for (const other of peers.values()) if (other !== peer) other.ws.send(JSON.stringify({ type: 'new_producer', payload: { participantId: peer.id, producerId: producer.id, kind: producer.kind, source: p.source } }));
        return { id: producer.id };
      }
      case 'consume': {
        const consumer = await peer.transports.get('recv')!.consume({ producerId: p.producerId, rtpCapabilities: p.rtpCapabilities, paused: true });
        peer.consumers.set(consumer.id, consumer);
        consumerCount += 1;
        consumer.observer.once('close', () => (consumerCount -= 1));
        return { id: consumer.id, producerId: p.producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters, type: consumer.type, producerPaused: false };
      }
      case 'resumeConsumer':
        await peer.consumers.get(p.consumerId)!.resume();
        return {};
      case 'leave':
        return {};
      default:
        throw new Error(`unknown request ${type}`);
    }
  };
  /* eslint-enable @typescript-eslint/no-explicit-any */
  ws.on('message', (data) => {
    const frame = JSON.parse(String(data)) as { type: string; id: unknown; payload: unknown };
    handle(frame.type, frame.payload).then(
      (payload) => send('response', payload, frame.id),
      (error: Error) => send('error', { code: 'failed', message: error.message }, frame.id),
    );
  });
  ws.on('close', () => {
    peers.delete(peer.id);
    for (const producer of peer.producers.values()) producerOwner.delete(producer.id);
    for (const t of peer.transports.values()) t.close();
  });
});
http.listen(httpPort, '127.0.0.1', () => process.stdout.write(`raw mediasoup harness on ${httpPort} (worker pid ${worker.pid})\n`));
process.on('SIGTERM', () => {
  worker.close();
  process.exit(0);
});
