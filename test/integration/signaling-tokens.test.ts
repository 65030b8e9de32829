import t from 'tap';
import { createDatabase } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { SignalingTokenService } from '../../src/calls/signaling-tokens.ts';
import { TurnCredentialMinter } from '../../src/turn/credentials.ts';
import { createHmac } from 'node:crypto';
import { ManualClock } from '../../src/shared/clock.ts';
import { createTestDatabase } from '../helpers/db.ts';

const db = createDatabase(await createTestDatabase(t), 3);
t.teardown(() => db.destroy());
await migrateToLatest(db);
const clock = new ManualClock(Date.UTC(2026, 10, 21, 12));

// A call with one participant, inserted as the call service would.
await db.insertInto('users').values({ id: '01J00000000000000000000001', role: 'user', display_name: 'Ann', privacy_mode: 0 } as never).execute();
await db.insertInto('calls').values({ id: '01J0000000000000000000CALL', kind: 'room', room_id: null, media_type: 'video', status: 'active', initiator_id: '01J00000000000000000000001', updated_at: clock.now() }).execute();
await db.insertInto('call_participants').values({ id: '01J000000000000000000PART1', call_id: '01J0000000000000000000CALL', user_id: '01J00000000000000000000001', role: 'initiator', state: 'joined' }).execute();

const tokens = new SignalingTokenService(db, clock, 300);

t.test('a signaling token is opaque, stored hashed, and works exactly once', async (t) => {
  const { token, expiresAt } = await tokens.issue('01J0000000000000000000CALL', '01J000000000000000000PART1');
  t.match(token, /^st_[A-Za-z0-9_-]{43}$/, 'st_ + 32 random bytes base64url');
  t.equal(expiresAt.getTime(), clock.nowMs() + 300_000);
  const stored = await db.selectFrom('signaling_tokens').select('token_hash').execute();
  t.notOk(stored.some((row) => row.token_hash.includes(token.slice(3))), 'the token itself is not stored');
  t.same(await tokens.consume(token), { callId: '01J0000000000000000000CALL', participantId: '01J000000000000000000PART1' });
  t.equal(await tokens.consume(token), null, 'a reused token is refused');
});

t.test('concurrent consumers of one token: exactly one wins', async (t) => {
  const { token } = await tokens.issue('01J0000000000000000000CALL', '01J000000000000000000PART1');
  const results = await Promise.all(Array.from({ length: 6 }, () => tokens.consume(token)));
  t.equal(results.filter((r) => r !== null).length, 1);
});

t.test('expired and malformed tokens are refused', async (t) => {
  const { token } = await tokens.issue('01J0000000000000000000CALL', '01J000000000000000000PART1');
  clock.advance(300_001);
  t.equal(await tokens.consume(token), null, 'expired after 5 minutes');
  for (const bad of ['', 'st_short', `xx_${'a'.repeat(43)}`, `st_${'a'.repeat(43)}`]) t.equal(await tokens.consume(bad), null, `"${bad.slice(0, 12)}" refused`);
});

t.test('TURN credentials follow the TURN REST API scheme', async (t) => {
  const minter = new TurnCredentialMinter(() => ['turn:127.0.0.1:3478'], 3600, 'north-secret', clock);
  const credentials = minter.mint('01J000000000000000000PART1');
  const [expiry, participant] = credentials.username.split(':');
  t.equal(Number(expiry), Math.floor(clock.nowMs() / 1000) + 3600, 'username starts with the unix expiry');
  t.equal(participant, '01J000000000000000000PART1', 'then the participant id');
  // coturn's use-auth-secret check: base64(HMAC-SHA1(secret, username)).
  t.equal(credentials.credential, createHmac('sha1', 'north-secret').update(credentials.username).digest('base64'));
  t.same(credentials.urls, ['turn:127.0.0.1:3478']);
  t.same(new TurnCredentialMinter(() => [], 60, 's', clock).iceServers('p'), [], 'no TURN URLs: no ICE servers');
});
