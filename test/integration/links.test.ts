import t from 'tap';
import { decodeJwt } from 'jose';
import { linkScopeAllows } from '../../src/calls/paid/links.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { createAccount, startTestServer, type TestAccount } from '../helpers/server.ts';
import { recorder } from '../helpers/ws.ts';
import { eventually } from '../helpers/wait.ts';

// A clock that moves only when told: link expiry is tested by advancing it, not by sleeping.
const clock = new ManualClock(Date.now());
const server = await startTestServer(t, {}, { clock });
const SOME_ULID = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
const SHORT_CODE = /^[23456789abcdefghjkmnpqrstuvwxyz]{8}$/;



// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function createLink(host: TestAccount, body: Record<string, unknown> = {}): Promise<any> {
  const created = await server.api('/v1/links', { method: 'POST', token: host.token, body: { rate_per_minute: '2.00', currency: 'usd', ...body } });
  if (created.status !== 201) throw new Error(`link creation failed: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body.link;
}


const publicLink = (code: string) => server.api(`/v1/links/${code}`);

const jane = await createAccount(server, 'host', 'Jane Smith');
const otto = await createAccount(server, 'host', 'Otto Host');
const plain = await createAccount(server, 'user', 'Plain User');
const admin = await createAccount(server, 'admin', 'Ada Admin');

t.test('linkScopeAllows: no scope allows any link, link:<code> only that code', async (t) => {
  t.equal(linkScopeAllows(undefined, 'abc23456'), true);
  t.equal(linkScopeAllows('link:abc23456', 'abc23456'), true);
  t.equal(linkScopeAllows('link:abc23456', 'abc23457'), false);
  t.equal(linkScopeAllows('link:abc23456', 'abc2345'), false);
  t.equal(linkScopeAllows('calls', 'abc23456'), false);
});

t.test('POST /v1/links: 201 with the link, money as decimal strings, defaults applied', async (t) => {
  const created = await server.api('/v1/links', { method: 'POST', token: jane.token, body: { rate_per_minute: '2.5', currency: 'usd' } });
  t.equal(created.status, 201);
  const link = created.body.link;
  t.match(link.short_code, SHORT_CODE, 'an 8-character code from the unambiguous alphabet');
  t.match(link.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  t.same(link, {
    id: link.id,
    short_code: link.short_code,
    host: { id: jane.id, display_name: 'Jane Smith' },
    rate_per_minute: '2.50',
    currency: 'usd',
    window_size_minutes: 10,
    max_uses: null,
    uses: 0,
    expires_at: null,
    created_at: clock.now().toISOString(),
    url: `${server.baseUrl}/l/${link.short_code}`,
  });

  const expiresAt = new Date(clock.nowMs() + 86_400_000);
  const full = await createLink(jane, { rate_per_minute: '0.00', currency: 'eur', window_size_minutes: 60, max_uses: 3, expires_at: expiresAt.toISOString().replace('Z', '+00:00') });
  t.equal(full.rate_per_minute, '0.00', 'a free link is allowed');
  t.equal(full.currency, 'eur');
  t.equal(full.window_size_minutes, 60);
  t.equal(full.max_uses, 3);
  t.equal(full.expires_at, expiresAt.toISOString(), 'expires_at comes back as RFC 3339 UTC');
  t.not(full.short_code, link.short_code);

  const one = await createLink(jane, { rate_per_minute: '1234.05', window_size_minutes: 1 });
  t.equal(one.rate_per_minute, '1234.05');
  t.equal(one.window_size_minutes, 1);
});

t.test('POST /v1/links: invalid input is 400 validation_failed naming the field', async (t) => {
  const past = new Date(clock.nowMs() - 1000).toISOString();
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['three decimals', { rate_per_minute: '2.001', currency: 'usd' }, '/rate_per_minute'],
    ['negative rate', { rate_per_minute: '-1.00', currency: 'usd' }, '/rate_per_minute'],
    ['numeric rate', { rate_per_minute: 2, currency: 'usd' }, '/rate_per_minute'],
    ['upper-case currency', { rate_per_minute: '2.00', currency: 'USD' }, '/currency'],
    ['two-letter currency', { rate_per_minute: '2.00', currency: 'us' }, '/currency'],
    ['window 0', { rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 0 }, '/window_size_minutes'],
    ['window 61', { rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 61 }, '/window_size_minutes'],
    ['fractional window', { rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 1.5 }, '/window_size_minutes'],
    ['max_uses 0', { rate_per_minute: '2.00', currency: 'usd', max_uses: 0 }, '/max_uses'],
    ['expires_at in the past', { rate_per_minute: '2.00', currency: 'usd', expires_at: past }, '/expires_at'],
    ['expires_at now', { rate_per_minute: '2.00', currency: 'usd', expires_at: clock.now().toISOString() }, '/expires_at'],
    ['expires_at not a date-time', { rate_per_minute: '2.00', currency: 'usd', expires_at: 'tomorrow' }, '/expires_at'],
    ['missing currency', { rate_per_minute: '2.00' }, '/currency'],
    ['unknown field', { rate_per_minute: '2.00', currency: 'usd', price: 1 }, '/price'],
  ];
  for (const [name, body, path] of cases) {
    const response = await server.api('/v1/links', { method: 'POST', token: jane.token, body });
    t.equal(response.status, 400, `${name}: 400`);
    t.equal(response.body.error.code, 'validation_failed', `${name}: validation_failed`);
    t.ok(
      response.body.error.details.errors.some((e: { path: string }) => e.path === path),
      `${name}: names ${path} (got ${JSON.stringify(response.body.error.details.errors)})`,
    );
  }
  const listed = await server.api(`/v1/links?host_id=${jane.id}&per_page=100`, { apiKey: true });
  t.notOk(listed.body.data.some((l: { expires_at: string | null }) => l.expires_at === past), 'nothing was created by a refused request');
});

t.test('POST /v1/links: only hosts and admins; the API key names the host', async (t) => {
  const byUser = await server.api('/v1/links', { method: 'POST', token: plain.token, body: { rate_per_minute: '2.00', currency: 'usd' } });
  t.equal(byUser.status, 403);
  t.equal(byUser.body.error.code, 'forbidden');

  const withoutHost = await server.api('/v1/links', { method: 'POST', apiKey: true, body: { rate_per_minute: '2.00', currency: 'usd' } });
  t.equal(withoutHost.status, 400, 'the API key has no user of its own');
  t.equal(withoutHost.body.error.details.errors[0].path, '/host_id');

  const forHost = await server.api('/v1/links', { method: 'POST', apiKey: true, body: { rate_per_minute: '3.00', currency: 'usd', host_id: otto.id } });
  t.equal(forHost.status, 201);
  t.same(forHost.body.link.host, { id: otto.id, display_name: 'Otto Host' });
  t.equal(forHost.body.link.rate_per_minute, '3.00');

  const forPlainUser = await server.api('/v1/links', { method: 'POST', apiKey: true, body: { rate_per_minute: '3.00', currency: 'usd', host_id: plain.id } });
  t.equal(forPlainUser.status, 400, 'host_id must name a host');
  t.equal(forPlainUser.body.error.details.errors[0].path, '/host_id');
  const forNobody = await server.api('/v1/links', { method: 'POST', apiKey: true, body: { rate_per_minute: '3.00', currency: 'usd', host_id: SOME_ULID } });
  t.equal(forNobody.status, 400, 'host_id must name an existing user');

  const hostForOther = await server.api('/v1/links', { method: 'POST', token: jane.token, body: { rate_per_minute: '3.00', currency: 'usd', host_id: otto.id } });
  t.equal(hostForOther.status, 403, 'a host cannot create links for another host');
  t.equal(hostForOther.body.error.code, 'forbidden');

  const adminForOther = await server.api('/v1/links', { method: 'POST', token: admin.token, body: { rate_per_minute: '4.00', currency: 'usd', host_id: otto.id } });
  t.equal(adminForOther.status, 201, 'an admin token may');
  t.equal(adminForOther.body.link.host.id, otto.id);
  const adminOwn = await server.api('/v1/links', { method: 'POST', token: admin.token, body: { rate_per_minute: '4.00', currency: 'usd' } });
  t.equal(adminOwn.status, 201);
  t.equal(adminOwn.body.link.host.id, admin.id);

  t.equal((await server.api('/v1/links', { method: 'POST', body: { rate_per_minute: '2.00', currency: 'usd' } })).status, 401);
});

t.test('GET /v1/links: a host sees its own links, newest first, paginated; the API key sees all', async (t) => {
  const pager = await createAccount(server, 'host', 'Pager');
  const made = [];
  for (let i = 0; i < 3; i++) {
    made.push(await createLink(pager, { rate_per_minute: `${i + 1}.00` }));
    clock.advance(1000); // distinct created_at, so "newest first" is well defined
  }
  const page1 = await server.api('/v1/links?per_page=2', { token: pager.token });
  t.equal(page1.status, 200);
  t.equal(page1.body.success, true);
  t.same(page1.body.pagination, { page: 1, per_page: 2, total: 3, total_pages: 2 });
  t.same(page1.body.data.map((l: { id: string }) => l.id), [made[2].id, made[1].id]);
  t.same(page1.body.data[0], made[2], 'list items are the same LinkDto as creation returns');
  const page2 = await server.api('/v1/links?per_page=2&page=2', { token: pager.token });
  t.same(page2.body.data.map((l: { id: string }) => l.id), [made[0].id]);
  t.same(page2.body.pagination, { page: 2, per_page: 2, total: 3, total_pages: 2 });

  const janes = await server.api('/v1/links?per_page=100', { token: jane.token });
  t.ok(janes.body.pagination.total >= 3);
  t.ok(janes.body.data.every((l: { host: { id: string } }) => l.host.id === jane.id), 'only the caller\u2019s links');

  const byKey = await server.api(`/v1/links?host_id=${pager.id}`, { apiKey: true });
  t.equal(byKey.body.pagination.total, 3);
  const all = await server.api('/v1/links?per_page=100', { apiKey: true });
  t.ok(all.body.pagination.total >= janes.body.pagination.total + 3, 'the API key sees every host\u2019s links');
  t.ok(all.body.data.some((l: { host: { id: string } }) => l.host.id === otto.id));

  const other = await server.api(`/v1/links?host_id=${pager.id}`, { token: jane.token });
  t.equal(other.status, 403, 'a host cannot list another host\u2019s links');
  const none = await server.api('/v1/links', { token: plain.token });
  t.same(none.body.pagination, { page: 1, per_page: 20, total: 0, total_pages: 0 });
  t.equal((await server.api('/v1/links?per_page=101', { token: jane.token })).status, 400);
});

t.test('GET /v1/links/{short_code} is public; available follows the host socket and the availability flag', async (t) => {
  const host = await createAccount(server, 'host', 'Available Host');
  const link = await createLink(host, { rate_per_minute: '2.00', window_size_minutes: 15 });

  const offline = await publicLink(link.short_code);
  t.equal(offline.status, 200);
  t.same(offline.body, {
    link: { short_code: link.short_code, host: { id: host.id, display_name: 'Available Host' }, rate_per_minute: '2.00', currency: 'usd', window_size_minutes: 15, available: false, exhausted: false },
  });
  t.same((await server.api('/v1/hosts/me/availability', { token: host.token })).body, { availability: { available: true, online: false, accepting_calls: true } });

  const socket = recorder(`${server.baseUrl.replace('http', 'ws')}/v1/ws?token=${host.token}`);
  await socket.waitFor((m) => m.event?.name === 'presence');
  const online = await eventually(() => publicLink(link.short_code), (r) => r.body.link?.available === true);
  t.equal(online.body.link.available, true, 'available once the host has a live socket');
  t.same((await server.api('/v1/hosts/me/availability', { token: host.token })).body, { availability: { available: true, online: true, accepting_calls: true } });

  const off = await server.api('/v1/hosts/me/availability', { method: 'PUT', token: host.token, body: { available: false } });
  t.equal(off.status, 200);
  t.same(off.body, { availability: { available: false, online: true, accepting_calls: false } });
  t.equal((await publicLink(link.short_code)).body.link.available, false, 'not available after setting itself unavailable');
  t.equal(await server.ctx.availability.isAvailable(host.id), false);
  t.same((await server.api('/v1/hosts/me/availability', { token: host.token })).body.availability, { available: false, online: true, accepting_calls: false });

  const on = await server.api('/v1/hosts/me/availability', { method: 'PUT', token: host.token, body: { available: true } });
  t.same(on.body.availability, { available: true, online: true, accepting_calls: true });
  t.equal((await publicLink(link.short_code)).body.link.available, true);

  socket.ws.close();
  await socket.closed;
  const gone = await eventually(() => publicLink(link.short_code), (r) => r.body.link?.available === false);
  t.equal(gone.body.link.available, false, 'not available once the socket is gone');
  t.equal(await server.ctx.availability.isAvailable(host.id), false);

  const byKey = await server.api('/v1/hosts/me/availability', { apiKey: true });
  t.equal(byKey.status, 403, 'the API key has no availability');
  const badBody = await server.api('/v1/hosts/me/availability', { method: 'PUT', token: host.token, body: { available: 'yes' } });
  t.equal(badBody.status, 400);
  t.equal((await server.api('/v1/hosts/me/availability')).status, 401);

  const unknown = await publicLink('nope2345');
  t.equal(unknown.status, 404);
  t.equal(unknown.body.error.code, 'link_not_found');
  t.equal((await publicLink('bad%20code')).status, 400, 'a malformed code is a validation error');
});

t.test('DELETE /v1/links/{short_code}: the owner or an admin; afterwards the link is gone', async (t) => {
  const link = await createLink(jane);
  const byOther = await server.api(`/v1/links/${link.short_code}`, { method: 'DELETE', token: otto.token });
  t.equal(byOther.status, 403);
  t.equal(byOther.body.error.code, 'forbidden');
  t.equal((await server.api(`/v1/links/${link.short_code}`, { method: 'DELETE', token: plain.token })).status, 403);
  t.equal((await publicLink(link.short_code)).status, 200, 'refused deletes change nothing');

  const byOwner = await server.api(`/v1/links/${link.short_code}`, { method: 'DELETE', token: jane.token });
  t.equal(byOwner.status, 204);
  t.equal(byOwner.body, undefined);
  const after = await publicLink(link.short_code);
  t.equal(after.status, 404);
  t.equal(after.body.error.code, 'link_not_found');
  const again = await server.api(`/v1/links/${link.short_code}`, { method: 'DELETE', token: jane.token });
  t.equal(again.status, 404);
  t.equal(again.body.error.code, 'link_not_found');
  const listed = await server.api('/v1/links?per_page=100', { token: jane.token });
  t.notOk(listed.body.data.some((l: { id: string }) => l.id === link.id), 'deleted links are not listed');
  const guest = await server.api(`/v1/links/${link.short_code}/guest`, { method: 'POST', body: { guest_name: 'Late' } });
  t.equal(guest.status, 404);
  t.equal(guest.body.error.code, 'link_not_found');
  await t.rejects(server.ctx.links.usable(link.short_code), { code: 'link_not_found' });
  await t.rejects(server.ctx.links.reserveUse(link.id), { code: 'link_not_found' });
  const row = await server.ctx.links.find(link.short_code);
  t.ok(row?.deleted_at instanceof Date, 'a soft delete: the row stays for the calls that refer to it');

  const ottos = await createLink(otto);
  t.equal((await server.api(`/v1/links/${ottos.short_code}`, { method: 'DELETE', apiKey: true })).status, 204, 'the API key may delete any link');
  const adminDeletes = await createLink(otto);
  t.equal((await server.api(`/v1/links/${adminDeletes.short_code}`, { method: 'DELETE', token: admin.token })).status, 204, 'so may an admin');
  t.equal((await server.api('/v1/links/nope2345', { method: 'DELETE', token: jane.token })).body.error.code, 'link_not_found');
});

t.test('an expired link is link_not_found everywhere a guest could use it', async (t) => {
  const link = await createLink(jane, { expires_at: new Date(clock.nowMs() + 60_000).toISOString() });
  t.equal((await publicLink(link.short_code)).status, 200);
  const usable = await server.ctx.links.usable(link.short_code);
  t.equal(usable.id, link.id);

  clock.advance(60_000);
  const expired = await publicLink(link.short_code);
  t.equal(expired.status, 404, 'expired exactly at expires_at');
  t.equal(expired.body.error.code, 'link_not_found');
  const guest = await server.api(`/v1/links/${link.short_code}/guest`, { method: 'POST', body: { guest_name: 'Too Late' } });
  t.equal(guest.status, 404);
  t.equal(guest.body.error.code, 'link_not_found');
  await t.rejects(server.ctx.links.usable(link.short_code), { code: 'link_not_found' });
  await t.rejects(server.ctx.links.reserveUse(link.id), { code: 'link_not_found' });
  const listed = await server.api('/v1/links?per_page=100', { token: jane.token });
  t.ok(listed.body.data.some((l: { id: string; expires_at: string }) => l.id === link.id && l.expires_at === link.expires_at), 'the host still sees its expired link');
});

t.test('POST /v1/links/{short_code}/guest: a guest user and a token scoped to the link', async (t) => {
  const link = await createLink(jane);
  const response = await server.api(`/v1/links/${link.short_code}/guest`, { method: 'POST', body: { guest_name: 'Alex' } });
  t.equal(response.status, 201);
  const { user, access_token: token, expires_at: expiresAt } = response.body;
  t.equal(user.role, 'guest');
  t.equal(user.display_name, 'Alex');
  t.match(user.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  t.equal(user.default_rate, null);
  t.equal(expiresAt, new Date((Math.floor(clock.nowMs() / 1000) + 3600) * 1000).toISOString(), 'valid one hour');
  const claims = decodeJwt(token);
  t.equal(claims.sub, user.id);
  t.equal(claims.role, 'guest');
  t.equal(claims.scope, `link:${link.short_code}`);

  const me = await server.api('/v1/users/me', { token });
  t.equal(me.status, 200);
  t.same(me.body.user, user, 'the token works as that guest');

  const createAsGuest = await server.api('/v1/links', { method: 'POST', token, body: { rate_per_minute: '2.00', currency: 'usd' } });
  t.equal(createAsGuest.status, 403, 'guests cannot create links');
  t.equal((await server.api('/v1/hosts/me/availability', { token })).status, 403, 'nor have an availability');

  const empty = await server.api(`/v1/links/${link.short_code}/guest`, { method: 'POST', body: { guest_name: '' } });
  t.equal(empty.status, 400);
  t.equal(empty.body.error.details.errors[0].path, '/guest_name');
  t.equal((await server.api(`/v1/links/${link.short_code}/guest`, { method: 'POST', body: { guest_name: 'x'.repeat(101) } })).status, 400);
  t.equal((await server.api(`/v1/links/${link.short_code}/guest`, { method: 'POST', body: {} })).status, 400);
  const unknown = await server.api('/v1/links/nope2345/guest', { method: 'POST', body: { guest_name: 'Alex' } });
  t.equal(unknown.status, 404);
  t.equal(unknown.body.error.code, 'link_not_found');
});

t.test('uses: reserveUse is atomic up to max_uses, releaseUse gives a use back, guests see link_exhausted', async (t) => {
  const link = await createLink(jane, { max_uses: 1 });
  await server.ctx.links.reserveUse(link.id);
  t.equal((await server.ctx.links.find(link.short_code))?.uses, 1);

  const shown = await publicLink(link.short_code);
  t.equal(shown.status, 200, 'an exhausted link is still shown');
  t.equal(shown.body.link.exhausted, true);
  const guest = await server.api(`/v1/links/${link.short_code}/guest`, { method: 'POST', body: { guest_name: 'Sam' } });
  t.equal(guest.status, 409);
  t.equal(guest.body.error.code, 'link_exhausted');
  await t.rejects(server.ctx.links.reserveUse(link.id), { code: 'link_exhausted', status: 409 });
  t.equal((await server.ctx.links.find(link.short_code))?.uses, 1, 'a refused reservation changes nothing');

  await server.ctx.links.releaseUse(link.id);
  t.equal((await server.ctx.links.find(link.short_code))?.uses, 0);
  t.equal((await publicLink(link.short_code)).body.link.exhausted, false);
  t.equal((await server.api(`/v1/links/${link.short_code}/guest`, { method: 'POST', body: { guest_name: 'Sam' } })).status, 201, 'usable again');
  await server.ctx.links.releaseUse(link.id);
  t.equal((await server.ctx.links.find(link.short_code))?.uses, 0, 'never below zero');

  // Ten concurrent reservations on a three-use link: exactly three win.
  const three = await createLink(jane, { max_uses: 3 });
  const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => server.ctx.links.reserveUse(three.id)));
  t.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 3);
  const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
  t.equal(refused.length, 7);
  t.ok(refused.every((o) => (o.reason as { code?: string }).code === 'link_exhausted'));
  const listed = await server.api('/v1/links?per_page=100', { token: jane.token });
  t.equal(listed.body.data.find((l: { id: string }) => l.id === three.id).uses, 3, 'uses shows in the host\u2019s list');

  const unlimited = await createLink(jane);
  for (let i = 0; i < 5; i++) await server.ctx.links.reserveUse(unlimited.id);
  t.equal((await server.ctx.links.find(unlimited.short_code))?.uses, 5, 'no max_uses: no limit');
  await t.rejects(server.ctx.links.reserveUse(SOME_ULID), { code: 'link_not_found' });
});

t.test('LinkService.withDb works on a transaction and rolls back with it', async (t) => {
  const link = await createLink(jane, { max_uses: 2 });
  await t.rejects(
    server.ctx.db.transaction().execute(async (tx) => {
      await server.ctx.links.withDb(tx).reserveUse(link.id);
      t.equal((await server.ctx.links.withDb(tx).find(link.short_code))?.uses, 1, 'seen inside the transaction');
      throw new Error('roll back');
    }),
    { message: 'roll back' },
  );
  t.equal((await server.ctx.links.find(link.short_code))?.uses, 0, 'the reservation rolled back');
});
