import t from 'tap';
import { TokenBucket } from '../../src/ws/token-bucket.ts';

t.test('a burst of twice the rate, then the rate', async (t) => {
  let now = 0;
  const bucket = new TokenBucket(5, 10, () => now);
  const burst = Array.from({ length: 12 }, () => bucket.take());
  t.same(burst.filter(Boolean).length, 10, 'the burst passes, the rest is refused');
  now += 200; // 5/s refills one token in 200 ms
  t.ok(bucket.take());
  t.notOk(bucket.take());
  now += 10_000;
  t.same(Array.from({ length: 11 }, () => bucket.take()).filter(Boolean).length, 10, 'never more than the burst');
});
