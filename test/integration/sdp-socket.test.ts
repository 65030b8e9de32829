/**
 * Seed 000's dialect on a live signaling socket (real uWS, real mediasoup worker, no browser),
 * with the Chrome offers captured in test/fixtures/sdp/: bad SDP gets a validation_failed error and
 * the socket stays usable, mixing the SDK protocol with SDP messages on one socket is refused, and
 * a seeded fuzz of mutated offers over live sockets gets an answer or an error for each one,
 * without the server closing sockets or the worker dying.
 */
import t from 'tap';
import { chromeOffer, mutate } from '../helpers/sdp-fuzz.ts';
import { prng } from '../helpers/prng.ts';
import { startSignaling, type Client, type Frame } from '../helpers/signaling.ts';

t.setTimeout(90_000);

const s = await startSignaling(t);
const good = chromeOffer('chrome-sendrecv');
let calls = 0;

/** A fresh participant on a call of its own, over /ws, welcomed. */
async function sdpSocket(): Promise<Client> {
  const id = ++calls;
  const client = s.open(s.mint(s.identity(`call-sdp-${id}`, `p${id}`)), '/ws');
  await client.next('welcome');
  return client;
}

const reply = (client: Client, ms = 10_000): Promise<Frame> => client.next((f) => f.type === 'answer' || (f.type === 'error' && f.id === undefined), ms);
const offer = (client: Client, sdp: unknown): Promise<Frame> => {
  client.raw(JSON.stringify({ type: 'offer', payload: { type: 'offer', sdp } }));
  return reply(client);
};
const isOpen = (client: Client): boolean => client.ws.readyState === client.ws.OPEN;

t.test('bad offers get validation_failed, the socket stays open, a good offer is answered afterwards', async (t) => {
  const noBundle = good.replace(/a=group:BUNDLE[^\r\n]*\r\n/, '');
  const noCodec = good.replace(/a=rtpmap:(\d+) [^/\r\n]+\//g, 'a=rtpmap:$1 x-unknown/');
  const planB = good.replace(
    /(a=ssrc:3703608967 msid:[^\r\n]*\r\n)/,
    '$1a=ssrc:1111 cname:other\r\na=ssrc:1111 msid:other-stream other-track\r\n',
  );
  t.not(noBundle, good);
  t.not(noCodec, good);
  t.not(planB, good);
  const cases: Array<[string, string, RegExp]> = [
    ['garbage', 'hello, this is not SDP', /./],
    ['no BUNDLE group', noBundle, /BUNDLE/],
    ['no codec in common', noCodec, /no codec in common/],
    ['Plan B', planB, /Plan B/],
  ];
  const client = await sdpSocket();
  for (const [name, sdp, message] of cases) {
    const frame = await offer(client, sdp);
    t.equal(frame.type, 'error', `${name}: an error`);
    t.equal(frame.payload.code, 'validation_failed', `${name}: validation_failed`);
    t.match(frame.payload.message, message, `${name}: the message says why (${frame.payload.message})`);
    t.ok(isOpen(client), `${name}: the socket stays open`);
  }
  const answered = await offer(client, good);
  t.equal(answered.type, 'answer', 'a good offer afterwards is answered');
  t.equal(answered.payload.type, 'answer');
  t.match(answered.payload.sdp, /^v=0\r\n/, 'with SDP');
  t.ok(isOpen(client), 'the socket is still open');
});

t.test('one socket cannot mix the SDK protocol and SDP messages', async (t) => {
  const sdp = await sdpSocket();
  t.equal((await offer(sdp, good)).type, 'answer', 'an SDP socket is answered');
  const refused = await sdp.ask('createTransport', { direction: 'recv' });
  t.match(refused, { type: 'error', payload: { code: 'invalid_state' } }, 'an SDK request on it is refused with invalid_state');

  const sdk = await sdpSocket();
  const created = await sdk.ask('createTransport', { direction: 'recv' });
  t.equal(created.type, 'response', 'an SDK socket creates a transport');
  const mixed = await offer(sdk, good);
  t.match(mixed, { type: 'error', payload: { code: 'invalid_state' } }, 'an SDP offer on it is refused with invalid_state');
  t.ok(isOpen(sdp) && isOpen(sdk), 'both sockets stay open');
});

t.test('seeded fuzz: 1,000 mutated offers over live sockets', async (t) => {
  const SEED = Number(process.env.SDP_FUZZ_SEED ?? 0x5eed000);
  const TOTAL = 1000;
  const PER_SOCKET = 10;
  const PARALLEL = 4;
  const random = prng(SEED);
  const fixtures = [good, chromeOffer('chrome-simulcast-recvonly-data')];
  // Mutations are drawn up front, in order, so a seed always means the same offers.
  const offers = Array.from({ length: TOTAL }, () => mutate(fixtures[Math.floor(random() * fixtures.length)]!, random));
  // Closes the server may use (docs/sdp.md, src/ws/types.ts): flooding, a too big or unread socket. None is expected here.
  const documented = new Set([4008, 1009, 1013]);
  const outcomes = { answer: 0, error: 0 };
  const codes = new Map<string, number>();
  const closedByServer: number[] = [];
  let next = 0;
  const lane = async () => {
    let client: Client | null = null;
    let sent = 0;
    while (next < TOTAL) {
      const sdp = offers[next++]!;
      if (!client || !isOpen(client) || sent >= PER_SOCKET) {
        if (client && isOpen(client)) client.ws.close();
        else if (client) closedByServer.push((await client.closed).code);
        client = await sdpSocket();
        sent = 0;
      }
      sent++;
      const frame = await offer(client, sdp);
      if (frame.type === 'answer') outcomes.answer++;
      else {
        outcomes.error++;
        codes.set(frame.payload.code, (codes.get(frame.payload.code) ?? 0) + 1);
      }
    }
    if (client && isOpen(client)) client.ws.close();
    else if (client) closedByServer.push((await client.closed).code);
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  t.equal(outcomes.answer + outcomes.error, TOTAL, `every offer got an answer or an error (seed ${SEED}: ${outcomes.answer} answers, ${outcomes.error} errors ${JSON.stringify(Object.fromEntries(codes))})`);
  t.ok(outcomes.answer > 0 && outcomes.error > 0, 'the mutations reach both outcomes');
  t.same([...codes.keys()].filter((code) => code !== 'validation_failed' && code !== 'invalid_state'), [], 'errors are validation_failed (or invalid_state), never internal_error');
  t.same(closedByServer.filter((code) => !documented.has(code)), [], 'the server closed no socket for an undocumented reason');
  t.equal(s.pool.snapshot()[0]!.deaths, 0, 'the worker never died');
  const after = await sdpSocket();
  t.equal((await offer(after, good)).type, 'answer', 'the server still answers a good offer');
});
