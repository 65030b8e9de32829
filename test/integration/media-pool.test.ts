import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { copyFileSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { EventEmitter, once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { MediaConfig } from '../../src/config/schema.ts';
import { isAppError } from '../../src/shared/errors.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { createMediaMetrics } from '../../src/media/metrics.ts';
import { WorkerPool, workerBinFor, type PooledRouter } from '../../src/media/worker-pool.ts';

// Each test has its own port_base in 21300–21399 (below the kernel's ephemeral range, 32768+, so no outgoing connection can be holding one), so parallel test files do not collide.
function mediaConfig(portBase: number, overrides: Partial<MediaConfig> = {}): MediaConfig {
  return {
    workers: 2,
    port_base: portBase,
    listen_ip: '127.0.0.1',
    announced_address: null,
    max_consumers_per_worker: 500, key_frame_request_delay_ms: 310,
    worker_log_level: 'error',
    worker_bin: null,
    ...overrides,
  };
}

const logger = silentLogger();

/** A logger whose JSON lines are emitted as 'log' events, to wait on what the pool reports. */
function capturingLogger() {
  const logs = new EventEmitter<{ log: [Record<string, unknown>] }>();
  const logger = pino({ level: 'warn' }, { write: (line: string) => void logs.emit('log', JSON.parse(line)) });
  return { logger, logs };
}

/** Resolves with the first log line whose msg is `msg`. */
function nextLog(logs: ReturnType<typeof capturingLogger>['logs'], msg: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const onLog = (line: Record<string, unknown>) => {
      if (line.msg !== msg) return;
      logs.off('log', onLog);
      resolve(line);
    };
    logs.on('log', onLog);
  });
}

/** Listening sockets on `port` as `proto pid` strings, from the kernel's view (ss). */
function listeners(port: number): string[] {
  const out = execFileSync('ss', ['-Hlnp', '-tu', `sport = :${port}`], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => `${line.split(/\s+/)[0]} ${/pid=(\d+)/.exec(line)?.[1] ?? '?'}`)
    .sort();
}

const vp8: types.RtpParameters = {
  codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }],
  encodings: [{ ssrc: 1111 }],
};

/** One producer and `consumers` consumers on `pooled`'s worker, through DirectTransports (no browser needed). */
async function load(pooled: PooledRouter, consumers: number) {
  const send = await pooled.router.createDirectTransport();
  const producer = await send.produce({ kind: 'video', rtpParameters: vp8 });
  const recv = await pooled.router.createDirectTransport();
  const made: types.Consumer[] = [];
  for (let i = 0; i < consumers; i++) made.push(await recv.consume({ producerId: producer.id, rtpCapabilities: pooled.rtpCapabilities }));
  return { producer, consumers: made };
}

t.test('starts one worker per slot, each with a WebRtcServer on its own UDP and TCP port', async (t) => {
  const registry = new Registry();
  const pool = await WorkerPool.create(mediaConfig(21300), { logger, metrics: createMediaMetrics(registry) });
  t.teardown(() => pool.close());

  const snap = pool.snapshot();
  t.equal(snap.length, 2);
  t.same(snap.map((w) => [w.index, w.ready, w.webRtcServerPort]), [[0, true, 21300], [1, true, 21301]]);
  t.not(snap[0]!.pid, snap[1]!.pid, 'separate processes');

  // Equal load: routers spread by count, so each worker gets one.
  const routers = [await pool.createRouter(), await pool.createRouter()];
  t.same(routers.map((r) => r.workerIndex), [0, 1]);
  const offered = routers[0]!.rtpCapabilities.codecs!.map((c) => `${c.mimeType} ${String(c.parameters?.['profile-level-id'] ?? c.parameters?.['profile-id'] ?? '')}`);
  t.ok(['audio/opus ', 'video/VP8 ', 'video/VP9 0', 'video/VP9 2', 'video/H264 42e01f', 'video/H264 4d0032'].every((c) => offered.includes(c)), 'router offers every codec');
  for (const r of routers) {
    const port = 21300 + r.workerIndex;
    t.equal(r.workerPid, snap[r.workerIndex]!.pid);
    const dump = (await r.webRtcServer.dump()) as { udpSockets: { ip: string; port: number }[]; tcpServers: { ip: string; port: number }[] };
    t.same(dump.udpSockets, [{ ip: '127.0.0.1', port }]);
    t.same(dump.tcpServers, [{ ip: '127.0.0.1', port }]);
    t.same(listeners(port), [`tcp ${r.workerPid}`, `udp ${r.workerPid}`], `worker ${r.workerIndex} owns UDP and TCP ${port}`);

    const transport = await r.router.createWebRtcTransport({ webRtcServer: r.webRtcServer, enableUdp: true, enableTcp: true });
    t.same(
      transport.iceCandidates.map((c) => [c.protocol, c.ip, c.port]).sort(),
      [['tcp', '127.0.0.1', port], ['udp', '127.0.0.1', port]],
      'ICE candidates name the worker port',
    );
  }
  t.same(pool.snapshot().map((w) => [w.routers, w.transports]), [[1, 1], [1, 1]]);

  const health = await pool.health();
  t.same(health.map((h) => [h.index, h.ready]), [[0, true], [1, true]]);

  const text = await registry.metrics();
  t.match(text, /^callplane_media_workers 2$/m);
  t.match(text, /^callplane_media_worker_routers\{worker="1"\} 1$/m);
  t.match(text, /^callplane_media_worker_deaths_total\{worker="0"\} 0$/m);
  t.match(text, /^# TYPE callplane_media_worker_cpu_seconds_total counter$/m);
  t.match(text, /^callplane_media_worker_cpu_seconds_total\{worker="1"\} \d+(\.\d+)?(e-\d+)?$/m);
});

t.test('announces 127.0.0.1 for listen_ip 0.0.0.0, and announced_address when set', async (t) => {
  for (const [portBase, overrides, expected] of [
    [21310, { listen_ip: '0.0.0.0' }, '127.0.0.1'],
    [21320, { announced_address: '203.0.113.7' }, '203.0.113.7'],
  ] as const) {
    const pool = await WorkerPool.create(mediaConfig(portBase, overrides), { logger });
    const r = await pool.createRouter();
    const transport = await r.router.createWebRtcTransport({ webRtcServer: r.webRtcServer });
    t.same(transport.iceCandidates.map((c) => [c.ip, c.port]), [[expected, portBase]], `${JSON.stringify(overrides)}`);
    await pool.close();
  }
});

t.test('routers go to the least-loaded worker', async (t) => {
  const pool = await WorkerPool.create(mediaConfig(21330), { logger });
  t.teardown(() => pool.close());

  // A burst counts routers still being created, so it spreads instead of piling onto worker 0.
  const burst = await Promise.all([pool.createRouter(), pool.createRouter(), pool.createRouter(), pool.createRouter()]);
  t.same(burst.map((r) => r.workerIndex).sort(), [0, 0, 1, 1]);
  const closed = burst.map((r) => once(r, 'close'));
  burst.forEach((r) => r.close());
  t.same((await Promise.all(closed)).map(([reason]) => reason), ['closed', 'closed', 'closed', 'closed']);
  t.same(pool.snapshot().map((w) => w.routers), [0, 0], 'closed routers are no longer counted');

  const r1 = await pool.createRouter({ appData: { callId: 'c1' } });
  t.equal(r1.workerIndex, 0);
  t.same(r1.router.appData, { callId: 'c1' });
  await load(r1, 2); // worker 0: 1 producer + 2 consumers

  const r2 = await pool.createRouter();
  t.equal(r2.workerIndex, 1, 'worker 1 is idle');
  const r3 = await pool.createRouter();
  t.equal(r3.workerIndex, 1, 'load counts before router count');
  const heavy = await load(r2, 3); // worker 1: 1 producer + 3 consumers

  t.equal(pool.consumerCount(0), 2);
  t.equal(pool.consumerCount(1), 3);
  t.same(
    pool.snapshot().map((w) => [w.routers, w.transports, w.producers, w.consumers]),
    [[1, 2, 1, 2], [2, 2, 1, 3]],
  );
  t.equal(pool.leastLoadedWorker(), 0);
  t.equal(pool.leastLoadedWorker(0), 1);
  t.equal(pool.leastLoadedWorker([0, 1]), null);

  const r4 = await pool.createRouter();
  t.equal(r4.workerIndex, 0, 'worker 1 is now busier');
  const piped = await pool.createRouter({ excludeWorkerIndex: 0 });
  t.equal(piped.workerIndex, 1, 'excluded worker is skipped whatever its load');
  await t.rejects(pool.createRouter({ excludeWorkerIndex: [0, 1] }), { code: 'media_unavailable' });

  // Closing the producer closes its consumers (worker notification): the count follows.
  const gone = heavy.consumers.map((c) => once(c.observer, 'close'));
  heavy.producer.close();
  await Promise.all(gone);
  t.equal(pool.consumerCount(1), 0);
  t.equal(pool.snapshot()[1]!.producers, 0);
  t.equal((await pool.createRouter()).workerIndex, 1, 'freed worker takes the next router');
  t.ok(pool.hasCapacity(1));
});

t.test('a killed worker is reported, replaced on the same port, and health recovers', async (t) => {
  const registry = new Registry();
  const pool = await WorkerPool.create(mediaConfig(21340), { logger, metrics: createMediaMetrics(registry) });
  t.teardown(() => pool.close());

  const victim = await pool.createRouter();
  t.equal(victim.workerIndex, 0);
  await load(victim, 1);
  const oldPid = victim.workerPid;

  const order: string[] = [];
  let duringReplacement: { ready: boolean; consumers: number; deaths: number; leastLoaded: number | null } | undefined;
  victim.on('close', (reason) => order.push(`router close ${reason}`));
  pool.on('workerdied', () => {
    order.push('workerdied');
    const slot = pool.snapshot()[0]!;
    duringReplacement = { ready: slot.ready, consumers: slot.consumers, deaths: slot.deaths, leastLoaded: pool.leastLoadedWorker() };
  });
  pool.on('workerreplaced', () => order.push('workerreplaced'));
  const died = once(pool, 'workerdied');
  const replaced = once(pool, 'workerreplaced');

  process.kill(oldPid, 'SIGKILL');
  const [diedEvent] = await died;
  t.equal(diedEvent.index, 0);
  t.equal(diedEvent.pid, oldPid);
  t.type(diedEvent.error, Error);
  t.ok(victim.closed && victim.router.closed, 'routers on the dead worker are closed');
  t.same(duringReplacement, { ready: false, consumers: 0, deaths: 1, leastLoaded: 1 }, 'slot is out of rotation while replaced');

  const [replacedEvent] = await replaced;
  t.same(order, ['router close workerdied', 'workerdied', 'workerreplaced']);
  t.equal(replacedEvent.index, 0);
  t.not(replacedEvent.pid, oldPid, 'a new process');
  t.throws(() => process.kill(oldPid, 0), { code: 'ESRCH' }, 'the old process is gone');

  const slot = pool.snapshot()[0]!;
  t.same([slot.ready, slot.pid, slot.webRtcServerPort, slot.deaths], [true, replacedEvent.pid, 21340, 1]);
  t.same(listeners(21340), [`tcp ${replacedEvent.pid}`, `udp ${replacedEvent.pid}`], 'same port, new owner');

  const fresh = await pool.createRouter({ excludeWorkerIndex: 1 });
  t.equal(fresh.workerIndex, 0);
  t.equal(fresh.workerPid, replacedEvent.pid);
  const transport = await fresh.router.createWebRtcTransport({ webRtcServer: fresh.webRtcServer });
  t.same(transport.iceCandidates.map((c) => c.port), [21340]);

  t.same((await pool.health()).map((h) => h.ready), [true, true]);
  const text = await registry.metrics();
  t.match(text, /^callplane_media_worker_deaths_total\{worker="0"\} 1$/m);
  t.match(text, /^callplane_media_worker_deaths_total\{worker="1"\} 0$/m);
  t.match(text, /^callplane_media_workers 2$/m);
});

t.test('close() is idempotent, closes routers as shutdown, and stops a replacement in flight', async (t) => {
  const pool = await WorkerPool.create(mediaConfig(21350), { logger });
  const spawned: types.Worker[] = [];
  const onNewWorker = (w: types.Worker) => spawned.push(w);
  mediasoup.observer.on('newworker', onNewWorker);
  t.teardown(() => void mediasoup.observer.off('newworker', onNewWorker));

  const survivor = await pool.createRouter();
  t.equal(survivor.workerIndex, 0);
  const survivorClosed = once(survivor, 'close');
  let replacedEvents = 0;
  pool.on('workerreplaced', () => replacedEvents++);

  const died = once(pool, 'workerdied');
  process.kill(pool.snapshot()[1]!.pid!, 'SIGKILL');
  await died;
  // Worker 1's replacement has started; shutting down now must cancel it.
  const first = pool.close();
  t.equal(pool.close(), first, 'second close() returns the same promise');
  await first;
  await pool.close();

  t.same(await survivorClosed, ['shutdown']);
  t.equal(replacedEvents, 0, 'no replacement during shutdown');
  t.ok(spawned.every((w) => w.closed), 'any worker spawned for the replacement was closed');
  t.same(pool.snapshot().map((w) => [w.ready, w.pid]), [[false, null], [false, null]]);
  t.same((await pool.health()).map((h) => h.ready), [false, false]);
  const error = await pool.createRouter().catch((e: unknown) => e);
  t.ok(isAppError(error) && error.code === 'media_unavailable' && error.status === 503);
});

t.test('startup fails with the port in the message when a port is taken, leaving no worker behind', async (t) => {
  const squatter = createSocket('udp4');
  squatter.bind(21361, '127.0.0.1');
  await once(squatter, 'listening');
  t.teardown(() => squatter.close());
  const spawned: types.Worker[] = [];
  const onNewWorker = (w: types.Worker) => spawned.push(w);
  mediasoup.observer.on('newworker', onNewWorker);
  t.teardown(() => void mediasoup.observer.off('newworker', onNewWorker));

  await t.rejects(WorkerPool.create(mediaConfig(21360), { logger }), {
    message: /media worker 1 could not start on UDP\/TCP 127\.0\.0\.1:21361: .*address already in use/,
  });
  t.ok(spawned.length >= 2);
  t.ok(spawned.every((w) => w.closed), 'every worker started was closed');
});

t.test('media.worker_bin chooses the binary; a missing one is a clear error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'callplane-media-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'mediasoup-worker');
  copyFileSync(workerBinFor({ worker_bin: null }), bin);
  execFileSync('chmod', ['+x', bin]);

  const pool = await WorkerPool.create(mediaConfig(21370, { workers: 1, worker_bin: bin }), { logger });
  t.teardown(() => pool.close());
  t.equal(realpathSync(`/proc/${pool.snapshot()[0]!.pid}/exe`), realpathSync(bin));

  await t.rejects(WorkerPool.create(mediaConfig(21380, { worker_bin: join(dir, 'nope') }), { logger }), {
    message: /mediasoup-worker binary not found at .*nope/,
  });
});

t.test('a replacement retries while its port is briefly taken', async (t) => {
  const { logger, logs } = capturingLogger();
  const pool = await WorkerPool.create(mediaConfig(21390), { logger });
  t.teardown(() => pool.close());
  const squatter = createSocket('udp4');
  // Runs before the replacement spawns, so the squatter holds the port when the new worker binds.
  pool.once('workerdied', () => squatter.bind(21391, '127.0.0.1'));
  const failed = nextLog(logs, 'media worker start failed');
  const replaced = once(pool, 'workerreplaced');

  process.kill(pool.snapshot()[1]!.pid!, 'SIGKILL');
  t.match(await failed, { worker: 1, port: 21391, attempt: 1, err: { message: /address already in use/ } });
  t.equal(pool.snapshot()[1]!.ready, false);
  squatter.close();

  const [event] = await replaced;
  t.equal(event.index, 1);
  t.same(listeners(21391), [`tcp ${event.pid}`, `udp ${event.pid}`]);
  t.same((await pool.health()).map((h) => h.ready), [true, true]);
});

t.test('a replacement gives up after its retries and the slot stays down', async (t) => {
  const { logger, logs } = capturingLogger();
  const pool = await WorkerPool.create(mediaConfig(21392), { logger });
  t.teardown(() => pool.close());
  const squatter = createSocket('udp4');
  t.teardown(() => squatter.close());
  pool.once('workerdied', () => squatter.bind(21393, '127.0.0.1'));
  let failures = 0;
  logs.on('log', (line) => {
    if (line.msg === 'media worker start failed') failures++;
  });
  let replaced = false;
  pool.on('workerreplaced', () => (replaced = true));
  const lost = once(pool, 'workerlost');

  process.kill(pool.snapshot()[1]!.pid!, 'SIGKILL');
  const [event] = await lost;
  t.equal(event.index, 1);
  t.match(event.error.message, /media worker 1 could not start on UDP\/TCP 127\.0\.0\.1:21393/);
  t.equal(failures, 8, 'bounded retries');
  t.notOk(replaced);
  t.same((await pool.health()).map((h) => h.ready), [true, false]);
  t.equal((await pool.createRouter()).workerIndex, 0, 'the live worker still takes routers');
});

t.test('health() reports a worker that stops answering, without waiting past 2 s', async (t) => {
  const pool = await WorkerPool.create(mediaConfig(21394), { logger });
  t.teardown(() => pool.close());
  const pid = pool.snapshot()[1]!.pid!;
  process.kill(pid, 'SIGSTOP');
  t.teardown(() => void process.kill(pid, 'SIGCONT'));

  const started = Date.now();
  const health = await pool.health();
  const elapsed = Date.now() - started;
  t.same(health.map((h) => h.ready), [true, false]);
  t.match(health[1]!.error, /did not answer within 2000 ms/);
  t.ok(elapsed >= 1900 && elapsed < 3000, `answered in ${elapsed} ms`);

  process.kill(pid, 'SIGCONT');
  t.same((await pool.health()).map((h) => h.ready), [true, true], 'answers again once resumed');
});
