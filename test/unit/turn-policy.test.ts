/**
 * What the embedded TURN server refuses (docs/turn.md): expired, wrong and foreign credentials
 * (401, checked statelessly on every request), allocations over the per-user quota (486), and
 * peers outside the policy (403): loopback and private addresses other than this node's media ports.
 */
import t, { type Test } from 'tap';
import { ATTR, CLASS, METHOD, TurnTestClient, attr, errorCode, xorAddress } from '../helpers/stun.ts';
import { metricValue, startTurn } from '../helpers/turn.ts';
import { checkTurnUsername, restCredential } from '../../src/turn/index.ts';
import { PeerPolicy, isRestricted } from '../../src/turn/peer-policy.ts';

const open = async (t: Test, port: number) => {
  const client = await TurnTestClient.open({ host: '127.0.0.1', port });
  t.teardown(() => client.close());
  return client;
};

t.test('credentials: expired (correctly signed), wrong and foreign ones get 401; a good one allocates', async (t) => {
  const turn = await startTurn(t);
  const past = Math.floor(Date.now() / 1000) - 1;
  const cases: Array<[string, { username: string; password: string }]> = [
    ['expired but signed with turn.secret', turn.creds('01JPARTICIPANT0000000000EX', past)],
    ['wrong credential', { username: turn.creds('01JPARTICIPANT0000000000WR').username, password: 'not-the-credential' }],
    ['foreign: signed with another secret', turn.creds('01JPARTICIPANT0000000000FO', undefined, 'another-deployments-secret')],
    ['not a REST API username', { username: 'alice', password: restCredential('test-turn-secret-0123456789', 'alice') }],
  ];
  for (const [name, creds] of cases) {
    const client = await open(t, turn.port);
    const r = await client.allocate(creds);
    t.equal(errorCode(r.msg), 401, `${name}: 401`);
    t.ok(attr(r.msg, ATTR.nonce), `${name}: with a fresh nonce`);
  }
  t.equal(await metricValue(turn.registry, 'callplane_turn_auth_failures_total'), cases.length, 'each counted as an auth failure (the first, unsigned 401s are not)');
  const good = await open(t, turn.port);
  t.equal((await good.allocate(turn.creds('01JPARTICIPANT0000000000OK'))).msg.cls, CLASS.success, 'a fresh credential allocates');

  const stale = await open(t, turn.port);
  stale.realm = 'callplane';
  stale.nonce = '0'.repeat(32);
  t.equal(errorCode((await stale.allocate(turn.creds('01JPARTICIPANT0000000000ST'))).msg), 438, 'a nonce the server did not issue: 438 Stale Nonce');
});

t.test('an allocation is refused a request under another user (441)', async (t) => {
  const turn = await startTurn(t);
  const client = await open(t, turn.port);
  t.equal((await client.allocate(turn.creds('01JPARTICIPANT00000000000A'))).msg.cls, CLASS.success);
  const other = turn.creds('01JPARTICIPANT00000000000B');
  t.equal(errorCode((await client.request(METHOD.refresh, [], other)).msg), 441);
});

t.test('the per-user quota: user_quota allocations per participant, then 486; others unaffected; freed by a refresh to 0', async (t) => {
  const turn = await startTurn(t, { turn: { user_quota: 2 } });
  const ann = (expiry?: number) => turn.creds('01JPARTICIPANT000000000ANN', expiry);
  const clients = await Promise.all([1, 2, 3, 4, 5].map(() => open(t, turn.port)));
  const [a1, a2, a3, bob, a4] = clients as [TurnTestClient, TurnTestClient, TurnTestClient, TurnTestClient, TurnTestClient];
  t.equal((await a1.allocate(ann())).msg.cls, CLASS.success);
  // a fresh credential for the same participant (another expiry) counts under the same participant
  t.equal((await a2.allocate(ann(Math.floor(Date.now() / 1000) + 7200))).msg.cls, CLASS.success);
  t.equal(errorCode((await a3.allocate(ann())).msg), 486, 'the third: 486 Allocation Quota Reached');
  t.equal((await bob.allocate(turn.creds('01JPARTICIPANT000000000BOB'))).msg.cls, CLASS.success, 'another participant allocates');
  t.equal(await metricValue(turn.registry, 'callplane_turn_quota_refusals_total'), 1);
  t.equal((await a1.request(METHOD.refresh, [{ type: ATTR.lifetime, value: Buffer.alloc(4) }], ann())).msg.cls, CLASS.success);
  t.equal((await a4.allocate(ann())).msg.cls, CLASS.success, 'after one is freed, a new one is granted');
});

t.test('peers: this node media ports on loopback are allowed; other loopback, private and link-local addresses are refused (403)', async (t) => {
  const turn = await startTurn(t, { media: { port_base: 30500, workers: 2 } });
  const client = await open(t, turn.port);
  const creds = turn.creds('01JPARTICIPANT00000000PEER');
  t.equal((await client.allocate(creds)).msg.cls, CLASS.success);
  const permit = (ip: string, port: number) => client.request(METHOD.createPermission, [{ type: ATTR.xorPeerAddress, value: xorAddress(ip, port) }], creds);
  const bind = (channel: number, ip: string, port: number) =>
    client.request(METHOD.channelBind, [{ type: ATTR.channelNumber, value: Buffer.from([channel >> 8, channel & 0xff, 0, 0]) }, { type: ATTR.xorPeerAddress, value: xorAddress(ip, port) }], creds);
  t.equal((await permit('127.0.0.1', 30500)).msg.cls, CLASS.success, 'media port 30500 on 127.0.0.1');
  t.equal((await bind(0x4000, '127.0.0.1', 30501)).msg.cls, CLASS.success, 'a channel to media port 30501');
  for (const [ip, port] of [['127.0.0.1', 22], ['127.0.0.1', 30502], ['127.1.2.3', 5432], ['10.1.2.3', 30500], ['192.168.1.10', 3478], ['172.20.0.5', 80], ['169.254.169.254', 80], ['0.0.0.0', 30500]] as const) {
    t.equal(errorCode((await permit(ip, port)).msg), 403, `CreatePermission ${ip}:${port} refused`);
  }
  t.equal(errorCode((await bind(0x4001, '127.0.0.1', 5432)).msg), 403, 'a channel to 127.0.0.1:5432 refused');
  t.equal((await permit('8.8.8.8', 53)).msg.cls, CLASS.success, 'a public peer is allowed');
  t.equal(await metricValue(turn.registry, 'callplane_turn_peer_refusals_total'), 9);
});

t.test('peers: turn.allow_private_peers lets relays reach private and loopback addresses', async (t) => {
  const turn = await startTurn(t, { turn: { allow_private_peers: true } });
  const client = await open(t, turn.port);
  const creds = turn.creds('01JPARTICIPANT0000000PRIVT');
  t.equal((await client.allocate(creds)).msg.cls, CLASS.success);
  for (const ip of ['127.0.0.1', '10.1.2.3', '192.168.1.10']) {
    const r = await client.request(METHOD.createPermission, [{ type: ATTR.xorPeerAddress, value: xorAddress(ip, 5432) }], creds);
    t.equal(r.msg.cls, CLASS.success, `${ip} allowed`);
  }
});

t.test('the policy and the username check as functions', async (t) => {
  const policy = new PeerPolicy({ first: 40000, count: 2 }, false);
  t.ok(policy.allowed('127.0.0.1', 40001));
  t.notOk(policy.allowed('127.0.0.1', 40002));
  t.notOk(policy.allowed('::1', 22));
  t.notOk(policy.allowed('fe80::1', 40000), 'link-local IPv6');
  t.notOk(policy.allowed('fd00::1', 443), 'unique-local IPv6');
  t.notOk(policy.allowed('224.0.0.1', 5000), 'multicast');
  t.ok(policy.allowed('2001:db8::1', 443));
  t.ok(isRestricted('::ffff:10.0.0.1'), 'a v4-mapped private address');
  t.notOk(isRestricted('100.128.0.1'));
  const now = Date.UTC(2030, 0, 1);
  const username = `${now / 1000 + 60}:p1`;
  t.same(checkTurnUsername('s', username, now), { ok: true, participantId: 'p1', password: restCredential('s', username) });
  t.same(checkTurnUsername('s', username, now + 60_000), { ok: false, reason: 'expired' });
  t.same(checkTurnUsername('s', 'p1', now), { ok: false, reason: 'malformed' });
});
