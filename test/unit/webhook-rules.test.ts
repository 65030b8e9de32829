/** The pure rules of webhook delivery: the retry schedule and which addresses are public. */
import t from 'tap';
import { DEFAULT_RETRY, checkEndpointUrl, isPublicAddress, nextAttemptAt } from '../../src/webhooks/index.ts';

t.test('retries: 5 s after the first failure, doubling, at most 1 h apart, for 24 h', async (t) => {
  const start = Date.UTC(2026, 0, 1);
  const delays: number[] = [];
  let now = start;
  for (let attempts = 1; ; attempts += 1) {
    const next = nextAttemptAt(DEFAULT_RETRY, attempts, start, now);
    if (next === null) break;
    delays.push(next - now);
    now = next;
  }
  t.same(delays.slice(0, 5), [5000, 10_000, 20_000, 40_000, 80_000], '5 s doubling');
  t.ok(delays.every((d) => d <= 3600_000), 'never more than an hour apart');
  t.equal(delays.filter((d) => d === 3600_000).length > 20, true, 'capped at one hour for most of the day');
  t.equal(now, start + 24 * 3600_000, 'the last attempt is at the 24 h mark');
  t.equal(nextAttemptAt(DEFAULT_RETRY, delays.length + 1, start, now), null, 'then the delivery is failed');
});

t.test('only public unicast addresses are targets by default', async (t) => {
  for (const address of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', 'fe80::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1']) {
    t.notOk(isPublicAddress(address), `${address} is refused`);
  }
  for (const address of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8']) t.ok(isPublicAddress(address), `${address} is public`);
  t.notOk(isPublicAddress('not-an-ip'));
});

t.test('endpoint URLs: private hosts refused unless allowed, names resolved, schemes checked', async (t) => {
  for (const url of ['http://127.0.0.1:9000/hook', 'http://[::1]/hook', 'https://10.0.0.7/x', 'http://169.254.169.254/latest/meta-data', 'http://localhost:8080/hook']) {
    await t.rejects(checkEndpointUrl(url, false), { code: 'validation_failed' }, `${url} refused`);
    await t.resolves(checkEndpointUrl(url, true), `${url} allowed with allow_private_targets`);
  }
  await t.resolves(checkEndpointUrl('https://93.184.216.34/hook', false), 'a public literal is fine');
  await t.rejects(checkEndpointUrl('ftp://93.184.216.34/x', true), { code: 'validation_failed' });
  await t.rejects(checkEndpointUrl('https://user:pw@93.184.216.34/x', true), { code: 'validation_failed' });
  await t.rejects(checkEndpointUrl('https://does-not-exist.invalid/x', false), { code: 'validation_failed' }, 'a name that does not resolve');
});
