import t from 'tap';
import { startTestServer } from '../helpers/server.ts';

const server = await startTestServer(t, { rate_limits: { enabled: true, token: { per_ip: 3, per_user: 2, window_seconds: 30 } } });

t.test('the token endpoint answers 429 rate_limited with Retry-After past its per-IP limit', async (t) => {
  const user = await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Ida' } });
  const body = { user_id: user.body.user.id };
  const statuses: number[] = [];
  let limited: Awaited<ReturnType<typeof server.api>> | undefined;
  for (let i = 0; i < 5; i += 1) {
    const response = await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body });
    statuses.push(response.status);
    if (response.status === 429) limited ??= response;
  }
  t.same(statuses, [201, 201, 201, 429, 429]);
  t.equal(limited!.body.error.code, 'rate_limited');
  const retryAfter = Number(limited!.headers.get('retry-after'));
  t.ok(retryAfter >= 1 && retryAfter <= 30, `Retry-After is within the window (got ${retryAfter})`);
  const other = await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: 'Unlimited' } });
  t.equal(other.status, 201, 'endpoints without a limit are unaffected');
});
