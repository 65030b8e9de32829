/**
 * A seeded fuzz run against the embedded TURN server in this process: ≥ 10,000 malformed STUN,
 * TURN and ChannelData datagrams (mutated real requests, random attributes with lying lengths,
 * correctly signed requests with random attribute values, so the post-authentication handlers
 * see them too). An uncaught exception would end this process and fail the file; afterwards the
 * server must still allocate and relay.
 */
import t from 'tap';
import { ATTR, CLASS, METHOD, TurnTestClient, attr, channelData, encode, readXorAddress, str, udpPeer, xorAddress, type Attr } from '../helpers/stun.ts';
import { startTurn } from '../helpers/turn.ts';
import { prng } from '../helpers/prng.ts';

const SEED = Number(process.env.CALLPLANE_FUZZ_SEED ?? 20261201);
const PACKETS = 12_000;


t.test(`${PACKETS} malformed packets (seed ${SEED}) never crash the server, which still relays afterwards`, async (t) => {
  const peer = await udpPeer();
  t.teardown(() => peer.close());
  const turn = await startTurn(t, { media: { port_base: peer.port, workers: 1 }, turn: { user_quota: 1000 } });
  const random = prng(SEED);
  const int = (n: number) => Math.floor(random() * n);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const methods = Object.values(METHOD);
  const types = [...Object.values(ATTR), 0x0017, 0x8000, 0x7fff, 0xffff, 0x0000, int(0x10000)];

  // Several clients with real allocations, so that signed requests reach every handler.
  const clients: Array<{ client: TurnTestClient; creds: { username: string; password: string } }> = [];
  for (let i = 0; i < 4; i += 1) {
    const client = await TurnTestClient.open({ host: '127.0.0.1', port: turn.port });
    t.teardown(() => client.close());
    const creds = turn.creds(`01JFUZZ${String(i).padStart(19, '0')}`);
    const r = await client.allocate(creds);
    t.equal(r.msg.cls, CLASS.success, `fuzz client ${i} allocated`);
    clients.push({ client, creds });
  }
  const randomAttr = (): Attr => {
    const type = types[int(types.length)]!;
    const value = type === ATTR.xorPeerAddress && random() < 0.5 ? xorAddress('127.0.0.1', random() < 0.5 ? peer.port : int(65536)) : bytes(int(40));
    return { type, value };
  };

  const generators: Array<() => Buffer> = [
    () => bytes(int(120)), // noise
    () => {
      // a valid request, then bit flips
      const b = encode({ method: methods[int(methods.length)]!, cls: int(4), attrs: [randomAttr(), randomAttr()], fingerprint: random() < 0.5 });
      for (let k = int(4) + 1; k > 0; k -= 1) b[int(b.length)]! ^= 1 << int(8);
      return b;
    },
    () => {
      // truncated anywhere
      const b = encode({ method: METHOD.allocate, cls: CLASS.request, attrs: [randomAttr(), randomAttr(), randomAttr()] });
      return b.subarray(0, int(b.length));
    },
    () => {
      // an attribute whose length runs past the message
      const b = encode({ method: methods[int(methods.length)]!, cls: CLASS.request, attrs: [randomAttr()] });
      if (b.length >= 24) b.writeUInt16BE(int(0x10000), 22);
      return b;
    },
    () => {
      // a header length that lies
      const b = encode({ method: methods[int(methods.length)]!, cls: int(4), attrs: [randomAttr()] });
      b.writeUInt16BE(int(0x10000), 2);
      return b;
    },
    () => channelData(0x4000 + int(0x4000), bytes(int(60))).subarray(0, int(64) + 1), // ChannelData, any channel, any length
  ];

  let sent = 0;
  for (let i = 0; i < PACKETS; i += 1) {
    const { client, creds } = clients[int(clients.length)]!;
    if (random() < 0.3) {
      // correctly signed, with random attributes: past authentication into the method handlers
      const method = [METHOD.allocate, METHOD.refresh, METHOD.createPermission, METHOD.channelBind, METHOD.binding][int(5)]!;
      const attrs = Array.from({ length: int(4) }, randomAttr).filter((a) => a.type !== ATTR.lifetime || a.value.length !== 4 || a.value.readUInt32BE(0) !== 0);
      const signed = [...attrs, { type: ATTR.username, value: str(creds.username) }, { type: ATTR.realm, value: str(client.realm) }, { type: ATTR.nonce, value: str(client.nonce) }];
      client.sendRaw(encode({ method, cls: CLASS.request, attrs: signed, integrity: { ...creds, realm: client.realm } }));
    } else {
      client.sendRaw(generators[int(generators.length)]!());
    }
    sent += 1;
    // let the server drain now and then (a Binding answered means everything before it was read)
    if (i % 500 === 499) await client.request(METHOD.binding, []);
  }
  t.ok(sent >= 10_000, `${sent} malformed or hostile packets sent`);

  // Still serving: a fresh client allocates, binds a channel and relays.
  const fresh = await TurnTestClient.open({ host: '127.0.0.1', port: turn.port });
  t.teardown(() => fresh.close());
  const creds = turn.creds('01JFUZZAFTER00000000000000');
  const alloc = await fresh.allocate(creds);
  t.equal(alloc.msg.cls, CLASS.success, 'a new allocation after the run');
  const relayed = readXorAddress(attr(alloc.msg, ATTR.xorRelayedAddress)!);
  const bind = await fresh.request(METHOD.channelBind, [{ type: ATTR.channelNumber, value: Buffer.from([0x40, 0x00, 0, 0]) }, { type: ATTR.xorPeerAddress, value: xorAddress('127.0.0.1', peer.port) }], creds);
  t.equal(bind.msg.cls, CLASS.success);
  fresh.sendRaw(channelData(0x4000, str('still relaying')));
  for (;;) {
    const got = await peer.next(5000);
    if (got.port === relayed.port) {
      t.equal(got.data.toString(), 'still relaying', 'relayed after the fuzz run');
      break;
    }
  }
});
