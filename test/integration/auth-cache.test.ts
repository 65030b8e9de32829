/**
 * The verified-token cache and the user cache (docs/api.md "Access tokens"): a token is checked
 * once, yet expiry and revocation still apply to it at once, and this node's changes to a user
 * show on GET /v1/users/me at once.
 */
import t from 'tap';
import { ManualClock } from '../../src/shared/clock.ts';
import { startTestServer } from '../helpers/server.ts';

// The server's clock is injected so that expiry and the second after a revocation come without waiting.
const clock = new ManualClock(Date.now());
const server = await startTestServer(t, { auth: { token_cache_size: 2, user_cache_ttl_ms: 60_000 } }, { clock });

async function newUser(name: string): Promise<string> {
  const created = await server.api('/v1/users', { method: 'POST', apiKey: true, body: { display_name: name } });
  if (created.status !== 201) throw new Error(`POST /v1/users: ${created.status}`);
  return created.body.user.id;
}
async function tokenFor(userId: string, ttlSeconds = 600): Promise<string> {
  const minted = await server.api('/v1/auth/token', { method: 'POST', apiKey: true, body: { user_id: userId, ttl_seconds: ttlSeconds } });
  if (minted.status !== 201) throw new Error(`POST /v1/auth/token: ${minted.status}`);
  return minted.body.access_token;
}

t.test('a cached token is refused once it expires', async (t) => {
  const userId = await newUser('Expiring');
  const token = await tokenFor(userId, 60);
  t.equal((await server.api('/v1/users/me', { token })).status, 200, 'accepted, and now cached');
  t.ok(server.ctx.tokens.cachedTokenCount >= 1, 'the verified token is in the cache');
  const before = clock.nowMs();
  clock.advance(61_000);
  try {
    const late = await server.api('/v1/users/me', { token });
    t.equal(late.status, 401, 'the same token after its expiry');
    t.match(late.body.error.message, /expired/i);
  } finally {
    clock.set(before);
  }
});

t.test('the cache is bounded: the least recently used token goes, and still works when it comes back', async (t) => {
  const userId = await newUser('Many tokens');
  const tokens = [await tokenFor(userId), await tokenFor(userId, 601), await tokenFor(userId, 602)];
  for (const token of tokens) t.equal((await server.api('/v1/users/me', { token })).status, 200);
  t.equal(server.ctx.tokens.cachedTokenCount, 2, 'auth.token_cache_size is the bound');
  t.equal((await server.api('/v1/users/me', { token: tokens[0] })).status, 200, 'an evicted token is verified again');
});

t.test('revoking a user\'s tokens refuses them at once, cached or not; a token issued later works', async (t) => {
  const userId = await newUser('Revoked');
  const other = await newUser('Bystander');
  const cached = await tokenFor(userId);
  const unused = await tokenFor(userId, 700);
  const bystander = await tokenFor(other);
  t.equal((await server.api('/v1/users/me', { token: cached })).status, 200, 'the token is in use (cached)');
  t.equal((await server.api('/v1/users/me', { token: bystander })).status, 200);

  const byUser = await server.api(`/v1/users/${userId}/revoke-tokens`, { method: 'POST', token: cached });
  t.equal(byUser.status, 403, 'a user token that is not an admin cannot revoke');
  const revoked = await server.api(`/v1/users/${userId}/revoke-tokens`, { method: 'POST', apiKey: true });
  t.equal(revoked.status, 200);
  t.equal(revoked.body.user_id, userId);
  t.equal(Date.parse(revoked.body.tokens_revoked_at), clock.nowMs(), 'the revocation time is now');

  for (const [label, token] of [['cached', cached], ['never used', unused]] as const) {
    const refused = await server.api('/v1/users/me', { token });
    t.equal(refused.status, 401, `the ${label} token is refused`);
    t.match(refused.body.error.message, /revoked/i);
  }
  t.equal((await server.api('/v1/users/me', { token: bystander })).status, 200, "another user's token is not affected");

  clock.advance(1000); // tokens carry their issue time to the second
  const fresh = await tokenFor(userId);
  t.equal((await server.api('/v1/users/me', { token: fresh })).status, 200, 'a token issued after the revocation works');

  const unknown = await server.api('/v1/users/01ARZ3NDEKTSV4RRFFQ69G5FAV/revoke-tokens', { method: 'POST', apiKey: true });
  t.equal(unknown.status, 404, 'unknown user');
  t.equal((await server.api('/v1/users/not-an-id/revoke-tokens', { method: 'POST', apiKey: true })).status, 400, 'malformed id');
});

t.test('GET /v1/users/me shows a change made through this node at once, despite the user cache', async (t) => {
  const userId = await newUser('Old name');
  const token = await tokenFor(userId);
  t.equal((await server.api('/v1/users/me', { token })).body.user.display_name, 'Old name');
  const patched = await server.api(`/v1/users/${userId}`, { method: 'PATCH', apiKey: true, body: { display_name: 'New name' } });
  t.equal(patched.status, 200);
  t.equal((await server.api('/v1/users/me', { token })).body.user.display_name, 'New name', 'not the cached row');
});
