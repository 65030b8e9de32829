import t from 'tap';
import WebSocket from 'ws';
import { MAX_SIGNAL_MESSAGE_BYTES, RequestSchemas } from '../../src/protocol/signaling.ts';

// Signaling robustness (SPEC §7): whatever a client sends gets an error and the socket stays usable;
// nothing it sends can crash the process or a media worker. Same harness as sfu-session.test.ts.

import { Client, startSignaling, audio, video, type Frame } from '../helpers/signaling.ts';

t.test('welcome and createTransport use mediasoup-client\'s shapes', async (t) => {
  const s = await startSignaling(t);
  const { client, welcome } = await s.join('call-w', 'alice');
  t.same(Object.keys(welcome).sort(), ['callId', 'iceServers', 'participantId', 'peers', 'permissions', 'role', 'routerRtpCapabilities']);
  t.match(welcome, {
    participantId: 'alice',
    callId: 'call-w',
    role: 'member',
    permissions: { canPublish: true, canSubscribe: true, canEndCall: false },
    iceServers: [{ urls: ['turn:127.0.0.1:3478'], username: 'u', credential: 'c' }],
    peers: [],
  });
  const mimeTypes = welcome.routerRtpCapabilities.codecs.map((c: { mimeType: string }) => c.mimeType);
  for (const mime of ['audio/opus', 'video/VP8', 'video/VP9', 'video/H264']) t.ok(mimeTypes.includes(mime), `offers ${mime}`);
  t.ok(Array.isArray(welcome.routerRtpCapabilities.headerExtensions));

  const transport = await client.ok('createTransport', { direction: 'send' });
  t.same(Object.keys(transport).sort(), ['dtlsParameters', 'iceCandidates', 'iceParameters', 'id']);
  t.match(transport.iceParameters, { usernameFragment: String, password: String, iceLite: true });
  const port = s.pool.snapshot()[0]!.webRtcServerPort;
  t.same(
    transport.iceCandidates.map((c: { ip: string; port: number; protocol: string }) => [c.protocol, c.ip, c.port]).sort(),
    [['tcp', '127.0.0.1', port], ['udp', '127.0.0.1', port]],
    'candidates name the worker\'s WebRtcServer port',
  );
  t.match(transport.dtlsParameters, { role: 'auto', fingerprints: [{ algorithm: String, value: String }] });
  const restarted = await client.ok('restartIce', { transportId: transport.id });
  t.not(restarted.iceParameters.usernameFragment, transport.iceParameters.usernameFragment, 'restartIce answers new ICE parameters');
  t.equal((await client.ask('createTransport', { direction: 'send' })).payload.code, 'invalid_state', 'one send transport per connection');

  const plain = await fetch(`http://127.0.0.1:${s.port}/v1/signal`);
  t.equal(plain.status, 426, 'a plain GET is told to upgrade');
  await plain.body?.cancel();
  // The /ws alias (seed 000's path) serves the same protocol.
  const other = s.open(s.mint(s.identity('call-w', 'bob')), '/ws');
  t.equal((await other.next('welcome')).payload.participantId, 'bob');
});

t.test('every malformed or out-of-order request gets an error and the socket keeps working', async (t) => {
  const s = await startSignaling(t);
  const { client: a } = await s.join('call-m', 'alice');
  const { client: b, welcome: bw } = await s.join('call-m', 'bob');
  const bobSend = await b.ok('createTransport', { direction: 'send' });
  const bobMic = await b.ok('produce', { transportId: bobSend.id, kind: 'audio', rtpParameters: audio(4242), source: 'microphone' });
  const caps = bw.routerRtpCapabilities;
  const goodDtls = { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: Array(32).fill('AB').join(':') }] };

  /** After each bad request the same socket must still answer a valid one. */
  const stillWorks = async (what: string) => {
    const answer = await a.ask('pauseConsumer', { consumerId: 'nope' });
    t.equal(answer.payload.code, 'not_found', `${what}: the socket still answers`);
  };
  const expectError = async (what: string, reply: Promise<Frame>, code: string, message?: RegExp) => {
    const frame = await reply;
    t.equal(frame.type, 'error', `${what}: error`);
    t.equal(frame.payload.code, code, `${what}: ${code}`);
    if (message) t.match(frame.payload.message, message, `${what}: says why`);
    await stillWorks(what);
  };

  a.raw('{"type": "createTransport", "id": 1, "payload": {');
  await expectError('malformed JSON', a.nextAnonymousError(), 'validation_failed', /Malformed JSON/);
  a.raw('[1,2,3]');
  await expectError('a JSON array', a.nextAnonymousError(), 'validation_failed');
  a.raw(JSON.stringify({ type: 'createTransport', payload: { direction: 'send' } }));
  await expectError('no id', a.nextAnonymousError(), 'validation_failed', /id/);
  a.raw(Buffer.from(JSON.stringify({ type: 'leave', id: 1, payload: {} })), true);
  await expectError('a binary frame', a.nextAnonymousError(), 'validation_failed', /Binary/);
  await expectError('unknown type', a.ask('teleport', {}), 'validation_failed', /Unknown request type "teleport"/);
  await expectError('prototype key as type', a.ask('constructor', {}), 'validation_failed', /Unknown request type/);
  await expectError('schema violation', a.ask('createTransport', { direction: 'sideways' }), 'validation_failed', /direction/);
  await expectError('extra field', a.ask('leave', { please: true }), 'validation_failed');
  let deep: unknown = {};
  for (let i = 0; i < 100; i++) deep = { d: deep };
  await expectError('deep nesting', a.ask('consume', { producerId: bobMic.id, rtpCapabilities: deep as object }), 'validation_failed', /nests deeper/);

  const big = JSON.stringify({ type: 'createTransport', id: 77, payload: { direction: 'send', pad: 'x'.repeat(MAX_SIGNAL_MESSAGE_BYTES) } });
  a.raw(big);
  await expectError('oversized message', a.nextAnonymousError(), 'payload_too_large', /65536/);

  // Out of order and foreign objects.
  await expectError('connectTransport on another peer\'s transport', a.ask('connectTransport', { transportId: bobSend.id, dtlsParameters: goodDtls }), 'not_found');
  await expectError('pauseProducer of another peer', a.ask('pauseProducer', { producerId: bobMic.id }), 'not_found');
  await expectError('closeProducer of another peer', a.ask('closeProducer', { producerId: bobMic.id }), 'not_found');
  await expectError('restartIce on another peer\'s transport', a.ask('restartIce', { transportId: bobSend.id }), 'not_found');
  await expectError('consume before a recv transport', a.ask('consume', { producerId: bobMic.id, rtpCapabilities: caps }), 'invalid_state', /recv transport/);
  const recv = await a.ok('createTransport', { direction: 'recv' });
  await expectError('consume of an unknown producer', a.ask('consume', { producerId: 'f00dfeed', rtpCapabilities: caps }), 'not_found');
  await expectError('produce on a recv transport', a.ask('produce', { transportId: recv.id, kind: 'audio', rtpParameters: audio(1), source: 'microphone' }), 'invalid_state', /send transport/);
  await expectError('produce on another peer\'s transport', a.ask('produce', { transportId: bobSend.id, kind: 'audio', rtpParameters: audio(1), source: 'microphone' }), 'not_found');
  const send = await a.ok('createTransport', { direction: 'send' });
  await expectError('bad rtpParameters', a.ask('produce', { transportId: send.id, kind: 'audio', rtpParameters: { codecs: 'opus' }, source: 'microphone' }), 'validation_failed');
  await expectError('rtpParameters of the wrong kind', a.ask('produce', { transportId: send.id, kind: 'audio', rtpParameters: video(5), source: 'microphone' }), 'validation_failed');
  await expectError('bad dtlsParameters', a.ask('connectTransport', { transportId: send.id, dtlsParameters: { fingerprints: [{ algorithm: 'md5', value: 'zz' }] } }), 'validation_failed', /dtlsParameters/);
  await expectError('rtpCapabilities that cannot consume', a.ask('consume', { producerId: bobMic.id, rtpCapabilities: { codecs: [] } }), 'invalid_state', /rtpCapabilities/);
  t.same(await a.ok('connectTransport', { transportId: send.id, dtlsParameters: goodDtls }), {});
  await expectError('connecting twice', a.ask('connectTransport', { transportId: send.id, dtlsParameters: goodDtls }), 'invalid_state');
  const consumer = await a.ok('consume', { producerId: bobMic.id, rtpCapabilities: caps });
  await expectError('setPreferredLayers on a simple consumer', a.ask('setPreferredLayers', { consumerId: consumer.id, spatialLayer: 1 }), 'invalid_state');
  await expectError('resumeConsumer of another peer', b.ask('resumeConsumer', { consumerId: consumer.id }), 'not_found');
  t.same(await a.ok('resumeConsumer', { consumerId: consumer.id }), {});
  t.equal(s.pool.snapshot()[0]!.deaths, 0, 'the worker never died');
});

t.test('requests before welcome get invalid_state', async (t) => {
  let release!: () => void;
  const s = await startSignaling(t, { gate: new Promise<void>((resolve) => (release = resolve)) });
  const client = s.open(s.mint(s.identity('call-b', 'early')));
  await new Promise((resolve) => client.ws.once('open', resolve));
  const early = await client.ask('createTransport', { direction: 'send' });
  t.same(early.payload.code, 'invalid_state');
  t.match(early.payload.message, /before welcome/);
  release();
  await client.next('welcome');
  t.match(await client.ok('createTransport', { direction: 'send' }), { id: String }, 'after welcome the same socket works');
});

t.test('unknown, used, expired or missing tokens close with 4001', async (t) => {
  const s = await startSignaling(t);
  t.same(await s.open('st_unknown').closed, { code: 4001, reason: 'invalid, expired or used token' });
  const token = s.mint(s.identity('call-t', 'alice'));
  const first = s.open(token);
  await first.next('welcome');
  t.equal((await s.open(token).closed).code, 4001, 'a used token');
  const expired = s.mint(s.identity('call-t', 'bob'), -1);
  t.equal((await s.open(expired).closed).code, 4001, 'an expired token');
  t.equal((await s.open('', '/ws').closed).code, 4001, 'no token');
  t.equal(first.ws.readyState, WebSocket.OPEN, 'the valid socket is untouched');
});

t.test('a client that floods is closed with 4008; uWS drops a frame above 1 MiB', async (t) => {
  const s = await startSignaling(t, { calls: { signaling_messages_per_second: 5 } });
  const { client } = await s.join('call-f', 'flooder');
  for (let i = 0; i < 40; i++) client.raw(JSON.stringify({ type: 'leave', id: `x${i}`, payload: { junk: i } }));
  t.equal((await client.closed).code, 4008);
  const { client: huge } = await s.join('call-f', 'huge');
  huge.raw('x'.repeat(2 * 1024 * 1024));
  t.equal((await huge.closed).code, 1006, 'uWS drops the connection without a close frame');
  const text = await s.registry.metrics();
  t.match(text, /^callplane_signaling_errors_total\{code="rate_limited"\} 1$/m);
  t.match(text, /^callplane_signaling_messages_total\{type="leave"\} 10$/m, 'the burst (2 × 5) got through');
  t.match(text, /^callplane_signaling_sockets 0$/m, 'sockets gauge back to 0');
});

/** mulberry32: a tiny seeded PRNG, so a failing fuzz run can be replayed with FUZZ_SEED. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('a seeded fuzz run of 10,000 random messages leaves the process and every worker alive', async (t) => {
  const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
  t.comment(`fuzz seed ${seed} (replay with FUZZ_SEED=${seed})`);
  const rand = mulberry32(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

  const s = await startSignaling(t, { workers: 2, calls: { signaling_messages_per_second: 10_000, reconnect_grace_seconds: 60 } });
  const pids = s.pool.snapshot().map((w) => w.pid);
  // Ids of the objects each peer created, by kind. Requests use the sender's own ids most of the time
  // (to get deep into the SFU) and other peers' ids often (which must never work).
  type Kind = 'transport' | 'producer' | 'consumer';
  const seen = new Map<string, Record<Kind, string[]>>();
  const remember = (owner: string, kind: Kind, id: unknown) => {
    if (typeof id !== 'string') return;
    const lists = seen.get(owner) ?? { transport: [], producer: [], consumer: [] };
    seen.set(owner, lists);
    lists[kind].push(id);
    if (lists[kind].length > 20) lists[kind].shift(); // recent ids are the likely live ones
  };
  const anyId = (): string => pick([...seen.values()].flatMap((l) => [...l.transport, ...l.producer, ...l.consumer]).concat('none'));
  const idOf = (sender: string, kind: Kind): string => {
    const roll = rand();
    const own = seen.get(sender)?.[kind] ?? [];
    if (roll < 0.65 && own.length) return pick(own.slice(-4));
    const others = [...seen.entries()].filter(([name]) => name !== sender).flatMap(([, l]) => l[kind]);
    if (roll < 0.95 && others.length) return pick(others);
    return anyId();
  };
  let caps: unknown = {};
  const outcomes = new Map<string, number>();
  const peers = ['p0', 'p1', 'p2', 'p3'].map((name) => ({ name, client: null as Client | null, sent: 0, replies: 0 }));
  const connect = async (peer: (typeof peers)[number]) => {
    const client = s.open(s.mint(s.identity(pick(['fuzz-1', 'fuzz-1', 'fuzz-2']), peer.name)));
    const asked = new Map<unknown, string>();
    const send = client.ws.send.bind(client.ws);
    // Remember what each id asked for, to file the ids the answers carry.
    client.ws.send = ((data: string | Buffer, ...rest: never[]) => {
      if (typeof data === 'string') {
        try {
          const frame = JSON.parse(data) as { id?: unknown; type?: unknown };
          if (typeof frame.type === 'string') asked.set(frame.id, frame.type);
        } catch {
          /* garbage on purpose */
        }
      }
      return send(data, ...rest);
    }) as typeof client.ws.send;
    client.ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame;
      if (frame.type === 'response') {
        const kind = { createTransport: 'transport', produce: 'producer', consume: 'consumer' }[asked.get(frame.id) ?? ''] as Kind | undefined;
        if (kind) remember(peer.name, kind, frame.payload.id);
        asked.delete(frame.id);
      }
      if (frame.type === 'new_producer') remember(frame.payload.participantId, 'producer', frame.payload.producerId);
      if (frame.type === 'response' || frame.type === 'error') peer.replies++;
      const key = frame.type === 'error' ? `error:${frame.payload.code}` : frame.type;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    });
    caps = (await client.next('welcome')).payload.routerRtpCapabilities;
    peer.client = client;
    peer.sent = 0;
    peer.replies = 0;
  };
  for (const peer of peers) await connect(peer);

  const types = Object.keys(RequestSchemas);
  const junk = (depth: number): unknown => {
    switch (int(depth > 3 ? 6 : 9)) {
      case 0: return pick([0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, Number.MAX_SAFE_INTEGER, 4294967296]);
      case 1: return pick(['', 'x', 'audio', 'video', 'send', 'recv', 'screen', 'sha-256', '💥'.repeat(int(50)), 'a'.repeat(int(3000))]);
      case 2: return pick([null, true, false]);
      case 3: return anyId();
      case 4: return int(2) ? caps : audio(int(2 ** 32));
      case 5: return video(int(2 ** 32), String(int(4)));
      case 6: return Array.from({ length: int(5) }, () => junk(depth + 1));
      default: return Object.fromEntries(Array.from({ length: int(5) }, () => [pick(['codecs', 'encodings', 'ssrc', 'mid', 'fingerprints', 'role', 'x', '__proto__', 'constructor']), junk(depth + 1)]));
    }
  };
  /** Mostly well-formed requests with a random field wrong, so the fuzz gets past the schema into the SFU. */
  const payloadFor = (type: string, me: string): unknown => {
    const kind = pick(['audio', 'video'] as const);
    const plausible: Record<string, unknown> = {
      createTransport: { direction: pick(['send', 'recv']) },
      connectTransport: { transportId: idOf(me, 'transport'), dtlsParameters: { role: pick(['client', 'server', 'auto']), fingerprints: [{ algorithm: 'sha-256', value: Array(32).fill('0F').join(':') }] } },
      produce: {
        transportId: idOf(me, 'transport'),
        kind,
        rtpParameters: (kind === 'audio' ? audio : video)(int(2 ** 32), String(int(6))),
        source: kind === 'audio' ? pick(['microphone', 'microphone', 'screen']) : pick(['camera', 'camera', 'screen']),
      },
      consume: { producerId: idOf(me, 'producer'), rtpCapabilities: caps },
      resumeConsumer: { consumerId: idOf(me, 'consumer') },
      pauseConsumer: { consumerId: idOf(me, 'consumer') },
      pauseProducer: { producerId: idOf(me, 'producer') },
      resumeProducer: { producerId: idOf(me, 'producer') },
      closeProducer: { producerId: idOf(me, 'producer') },
      setPreferredLayers: { consumerId: idOf(me, 'consumer'), spatialLayer: int(4), temporalLayer: int(4) },
      restartIce: { transportId: idOf(me, 'transport') },
      leave: {},
    };
    const base = { ...(plausible[type] as Record<string, unknown> | undefined) };
    const roll = rand();
    if (roll < 0.7) return base;
    if (roll < 0.88) {
      const keys = Object.keys(base);
      base[keys.length && int(3) ? pick(keys) : pick(['extra', 'id', 'payload'])] = junk(0);
      return base;
    }
    return junk(0);
  };
  const message = (me: string): string | Buffer => {
    const roll = rand();
    if (roll < 0.02) return Buffer.from(Array.from({ length: int(64) }, () => int(256)));
    if (roll < 0.05) return pick(['', '{', 'null', '42', '"str"', '[]', '{"type":1}', '{"type":"consume","id":{}}', 'x'.repeat(int(70_000))]);
    // 'leave' ends the socket: keep it rare so most messages reach a live peer.
    // Requests that act on objects are weighted up: they are where state can go wrong.
    const weighted = [...types.filter((x) => x !== 'leave' || rand() < 0.05), 'produce', 'produce', 'consume', 'consume', 'consume', 'resumeConsumer', 'pauseProducer', 'resumeProducer'];
    const type = rand() < 0.94 ? pick(weighted) : pick(['', 'welcome', 'response', '__proto__', 'toString', 'x'.repeat(65)]);
    const id: unknown = rand() < 0.97 ? int(1e9) : junk(2);
    return JSON.stringify(rand() < 0.97 ? { type, id, payload: payloadFor(type, me) } : { type, id, payload: junk(0), extra: junk(1) });
  };

  const TOTAL = Number(process.env.FUZZ_MESSAGES ?? 10_000);
  let sent = 0;
  while (sent < TOTAL) {
    for (let batch = 0; batch < 100 && sent < TOTAL; batch++) {
      const peer = pick(peers);
      if (!peer.client || peer.client.ws.readyState !== WebSocket.OPEN) continue;
      const frame = message(peer.name);
      peer.client.ws.send(frame, { binary: Buffer.isBuffer(frame) });
      peer.sent++;
      sent++;
    }
    // Wait until every open socket answered everything it was sent (or closed); reconnect the closed ones.
    const deadline = Date.now() + 20_000;
    for (const peer of peers) {
      while (peer.client && peer.client.ws.readyState === WebSocket.OPEN && peer.replies < peer.sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      if (!peer.client || peer.client.ws.readyState !== WebSocket.OPEN) await connect(peer);
    }
    if (Date.now() >= deadline) t.fail('a socket stopped answering');
  }
  t.equal(sent, TOTAL, `${TOTAL} messages sent`);
  t.comment(`outcomes: ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}`);
  // The fuzz must reach the SFU, not only the validator: hundreds of requests succeed, producers come and go.
  t.ok((outcomes.get('response') ?? 0) > 300, 'hundreds of requests got past validation and succeeded');
  t.ok((outcomes.get('new_producer') ?? 0) > 20 && (outcomes.get('producer_closed') ?? 0) > 10, 'producers were created and closed');
  t.ok((outcomes.get('error:not_found') ?? 0) > 500, 'other peers\' ids were tried (and refused)');
  t.notOk(outcomes.has('error:internal_error'), 'no internal errors');

  const health = await s.pool.health();
  t.same(health.map((h) => h.ready), [true, true], 'every worker answers getResourceUsage()');
  t.same(s.pool.snapshot().map((w) => w.pid), pids, 'no worker was replaced');
  t.same(s.pool.snapshot().map((w) => w.deaths), [0, 0]);
  const usage = await s.pool.resourceUsage(2000);
  t.ok(usage.every((u) => u.usage !== null), 'resource usage of every worker');
  // And the service still does its job.
  const after = await s.join('fuzz-1', 'after');
  t.match(await after.client.ok('createTransport', { direction: 'recv' }), { id: String });
});
