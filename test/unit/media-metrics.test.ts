import t from 'tap';
import { Registry } from 'prom-client';
import type { types } from 'mediasoup';
import { createMediaMetrics, type MediaMetricsSource } from '../../src/media/metrics.ts';
import { mediaCodecs } from '../../src/media/codecs.ts';
import { announcedAddressFor, rtcPortRange } from '../../src/media/worker-pool.ts';

function usage(utimeMs: number, stimeMs: number): types.WorkerResourceUsage {
  return { ru_utime: utimeMs, ru_stime: stimeMs } as types.WorkerResourceUsage;
}

function fakeSource(): MediaMetricsSource & { workers: ReturnType<MediaMetricsSource['snapshot']>[number][] } {
  return {
    workers: [
      { index: 0, ready: true, routers: 3, producers: 4, consumers: 12 },
      { index: 1, ready: false, routers: 0, producers: 0, consumers: 0 },
    ],
    snapshot() {
      return this.workers;
    },
    async resourceUsage() {
      // Worker 1 is down: no CPU sample for it.
      return [
        { index: 0, usage: usage(1500, 250) },
        { index: 1, usage: null },
      ];
    },
  };
}

t.test('metrics read the attached pool at scrape time', async (t) => {
  const registry = new Registry();
  const metrics = createMediaMetrics(registry);
  const source = fakeSource();

  let text = await registry.metrics();
  t.match(text, /^callplane_media_workers 0$/m, 'no pool attached: no workers');

  metrics.attach(source);
  text = await registry.metrics();
  t.match(text, /^callplane_media_workers 1$/m, 'counts ready workers only');
  t.match(text, /^callplane_media_worker_consumers\{worker="0"\} 12$/m);
  t.match(text, /^callplane_media_worker_producers\{worker="0"\} 4$/m);
  t.match(text, /^callplane_media_worker_routers\{worker="0"\} 3$/m);
  t.match(text, /^callplane_media_worker_cpu_seconds_total\{worker="0"\} 1\.75$/m, 'ms of user+system → seconds');
  t.notMatch(text, /^callplane_media_worker_cpu_seconds_total\{worker="1"\}/m);
  t.match(text, /^callplane_media_worker_deaths_total\{worker="1"\} 0$/m, 'deaths start at 0 per slot');

  metrics.workerDied(1);
  metrics.workerDied(1);
  source.workers[0]!.consumers = 5;
  text = await registry.metrics();
  t.match(text, /^callplane_media_worker_deaths_total\{worker="1"\} 2$/m);
  t.match(text, /^callplane_media_worker_consumers\{worker="0"\} 5$/m, 'not stale');

  metrics.detach(fakeSource()); // not the attached one: ignored
  t.match(await registry.metrics(), /^callplane_media_workers 1$/m);
  metrics.detach(source);
  t.match(await registry.metrics(), /^callplane_media_workers 0$/m);
});

t.test('announced address', async (t) => {
  t.equal(announcedAddressFor({ listen_ip: '0.0.0.0', announced_address: null }), '127.0.0.1');
  t.equal(announcedAddressFor({ listen_ip: '10.0.0.5', announced_address: null }), '10.0.0.5');
  t.equal(announcedAddressFor({ listen_ip: '0.0.0.0', announced_address: 'media.example.com' }), 'media.example.com');
});

t.test('the RTC port range for Plain/Pipe transports avoids the WebRtcServer ports', async (t) => {
  t.same(rtcPortRange(40000, 4), { rtcMinPort: 10000, rtcMaxPort: 39999 });
  t.same(rtcPortRange(12000, 4), { rtcMinPort: 12004, rtcMaxPort: 59999 });
  t.same(rtcPortRange(5000, 4), { rtcMinPort: 10000, rtcMaxPort: 59999 }, 'no overlap: default range');
  t.same(rtcPortRange(60000, 4), { rtcMinPort: 10000, rtcMaxPort: 59999 });
});

t.test('router codecs', async (t) => {
  const names = mediaCodecs.map((c) => `${c.mimeType}${c.parameters ? ` ${JSON.stringify(c.parameters)}` : ''}`);
  t.same(names, [
    'audio/opus',
    'video/VP8',
    'video/VP9 {"profile-id":0}',
    'video/VP9 {"profile-id":2}',
    'video/H264 {"packetization-mode":1,"profile-level-id":"42e01f","level-asymmetry-allowed":1}',
    'video/H264 {"packetization-mode":1,"profile-level-id":"4d0032","level-asymmetry-allowed":1}',
  ]);
  t.match(mediaCodecs[0], { clockRate: 48000, channels: 2 });
});
