/**
 * The load tester's receive statistics (src/loadtest/track-stats.ts): loss from RTP sequence
 * numbers across the 16-bit wrap, late packets, RFC 3550 jitter, and the expected-track count.
 */
import t from 'tap';
import { RtpTrackCounter } from '../../src/loadtest/track-stats.ts';
import { expectedTracks } from '../../src/loadtest/report.ts';

const VIDEO_CLOCK = 90_000;

t.test('loss is counted across the sequence number wrap', async (t) => {
  const counter = new RtpTrackCounter('video', VIDEO_CLOCK);
  // 65530 … 65535, 0 … 9, with 65534 and 3 missing: 16 sent, 14 received.
  const sent = [...Array.from({ length: 6 }, (_, i) => 65530 + i), ...Array.from({ length: 10 }, (_, i) => i)];
  const received = sent.filter((seq) => seq !== 65534 && seq !== 3);
  received.forEach((seq, i) => counter.onPacket(seq, i * 3000, 1000, i * 33));
  const snapshot = counter.snapshot();
  t.equal(snapshot.expected, 16);
  t.equal(snapshot.packets, 14);
  t.equal(snapshot.lost, 2);
  t.equal(snapshot.bytes, 14_000);
});

t.test('a late packet is received, not lost, and does not move the highest sequence number', async (t) => {
  const counter = new RtpTrackCounter('audio', 48_000);
  for (const [i, seq] of [100, 101, 103, 102, 104].entries()) counter.onPacket(seq, i * 960, 100, i * 20);
  t.same([counter.snapshot().expected, counter.snapshot().lost], [5, 0]);
});

t.test('jitter: zero for evenly paced packets, positive when arrivals wobble', async (t) => {
  const even = new RtpTrackCounter('audio', 48_000);
  for (let i = 0; i < 50; i++) even.onPacket(i, i * 960, 100, i * 20);
  t.equal(even.snapshot().jitterMs, 0);

  const wobbly = new RtpTrackCounter('audio', 48_000);
  for (let i = 0; i < 50; i++) wobbly.onPacket(i, i * 960, 100, i * 20 + (i % 2 ? 5 : 0));
  // Transit differences alternate ±5 ms: RFC 3550's estimate converges towards 5 ms from below.
  t.ok(wobbly.snapshot().jitterMs > 3 && wobbly.snapshot().jitterMs <= 5, `jitter ${wobbly.snapshot().jitterMs} ms`);
});

t.test('jitter survives the 32-bit RTP timestamp wrap', async (t) => {
  const counter = new RtpTrackCounter('video', VIDEO_CLOCK);
  const start = 2 ** 32 - 3000 * 5;
  for (let i = 0; i < 10; i++) counter.onPacket(i, (start + i * 3000) >>> 0, 1000, i * (1000 / 30));
  t.ok(counter.snapshot().jitterMs < 0.01, `jitter ${counter.snapshot().jitterMs} ms`);
});

t.test('expected tracks: publishers × kinds × (publishers − 1 + subscribers) per room', async (t) => {
  t.equal(expectedTracks({ rooms: 2, publishers: 2, subscribers: 2, media: 'both' }), 24);
  t.equal(expectedTracks({ rooms: 1, publishers: 1, subscribers: 2, media: 'both' }), 4);
  t.equal(expectedTracks({ rooms: 3, publishers: 4, subscribers: 0, media: 'audio' }), 36);
});
