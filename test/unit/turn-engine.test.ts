/**
 * The embedded TURN engine (node-turn 0.0.6 + patches/node-turn+0.0.6.patch), byte by byte: each
 * defect of 0.0.6 that docs/turn.md lists has a test here that sends the real STUN/TURN bytes.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import t from 'tap';
import { ATTR, CLASS, METHOD, TurnTestClient, attr, channelData, decode, encode, errorCode, integrityOk, readXorAddress, str, u32, udpPeer, xorAddress } from '../helpers/stun.ts';
import { metricValue, startTurn } from '../helpers/turn.ts';

t.test('a Binding request gets the client its reflexive address', async (t) => {
  const turn = await startTurn(t);
  const client = await TurnTestClient.open({ host: '127.0.0.1', port: turn.port });
  t.teardown(() => client.close());
  const r = await client.request(METHOD.binding, []);
  t.equal(r.msg.cls, CLASS.success);
  t.same(readXorAddress(attr(r.msg, ATTR.xorMappedAddress)!), { ip: '127.0.0.1', port: client.port });
});

t.test('allocate: 401 with realm and nonce first, then a signed success with a relayed port from the range', async (t) => {
  const turn = await startTurn(t);
  const client = await TurnTestClient.open({ host: '127.0.0.1', port: turn.port });
  t.teardown(() => client.close());
  const creds = turn.creds('01JPARTICIPANT00000000000A');
  const r = await client.allocate(creds);
  t.equal(client.realm, 'callplane', 'the realm from config');
  t.equal(r.msg.cls, CLASS.success, `allocated (error ${errorCode(r.msg)})`);
  t.ok(integrityOk(r.raw, { ...creds, realm: client.realm }), 'the success is signed with the long-term key');
  const relayed = readXorAddress(attr(r.msg, ATTR.xorRelayedAddress)!);
  t.equal(relayed.ip, '127.0.0.1');
  t.equal(attr(r.msg, ATTR.lifetime)!.readUInt32BE(0), 600, 'the default lifetime');
  const min = turn.service.address!.port; // not the listening port
  t.not(relayed.port, min);
  t.ok(await metricValue(turn.registry, 'callplane_turn_allocations') === 1, 'one live allocation');
});

t.test('defect: ChannelData after a ChannelBind is relayed both ways (0.0.6 dropped it)', async (t) => {
  const peer = await udpPeer();
  t.teardown(() => peer.close());
  // the peer stands in for this node's media port, which relays may always reach
  const turn = await startTurn(t, { media: { port_base: peer.port, workers: 1 } });
  const client = await TurnTestClient.open({ host: '127.0.0.1', port: turn.port });
  t.teardown(() => client.close());
  const creds = turn.creds('01JPARTICIPANT00000000000B');
  const alloc = await client.allocate(creds);
  const relayed = readXorAddress(attr(alloc.msg, ATTR.xorRelayedAddress)!);
  const bind = await client.request(METHOD.channelBind, [{ type: ATTR.channelNumber, value: Buffer.from([0x40, 0x01, 0, 0]) }, { type: ATTR.xorPeerAddress, value: xorAddress('127.0.0.1', peer.port) }], creds);
  t.equal(bind.msg.cls, CLASS.success, `ChannelBind succeeds (error ${errorCode(bind.msg)})`);
  t.ok(integrityOk(bind.raw, { ...creds, realm: client.realm }), 'the ChannelBind success is signed (0.0.6 sent it unsigned)');

  client.sendRaw(channelData(0x4001, str('hello over a channel')));
  const got = await peer.next();
  t.equal(got.data.toString(), 'hello over a channel', 'the peer gets the payload');
  t.equal(got.port, relayed.port, 'from the relayed port');

  peer.socket.send(str('and back'), relayed.port, '127.0.0.1');
  const back = await client.nextOther();
  t.equal(back.readUInt16BE(0), 0x4001, 'the client gets ChannelData on the bound channel');
  t.equal(back.readUInt16BE(2), 8);
  t.equal(back.subarray(4, 12).toString(), 'and back');
  t.equal(await metricValue(turn.registry, 'callplane_turn_relayed_packets_total', 'direction="to_peer"'), 1);
  t.equal(await metricValue(turn.registry, 'callplane_turn_relayed_bytes_total', 'direction="to_client"'), 8);

  client.sendRaw(channelData(0x4002, str('unbound channel')));
  client.sendRaw(channelData(0x4001, str('x')).subarray(0, 3));
  client.sendRaw(channelData(0x4001, str('after the junk')));
  t.equal((await peer.next()).data.toString(), 'after the junk', 'an unbound channel and a short header are dropped, the next datagram still relayed');
});

t.test('Send and Data indications relay without a channel', async (t) => {
  const peer = await udpPeer();
  t.teardown(() => peer.close());
  const turn = await startTurn(t, { media: { port_base: peer.port, workers: 1 } });
  const client = await TurnTestClient.open({ host: '127.0.0.1', port: turn.port });
  t.teardown(() => client.close());
  const creds = turn.creds('01JPARTICIPANT00000000000C');
  const alloc = await client.allocate(creds);
  const relayed = readXorAddress(attr(alloc.msg, ATTR.xorRelayedAddress)!);
  const perm = await client.request(METHOD.createPermission, [{ type: ATTR.xorPeerAddress, value: xorAddress('127.0.0.1', peer.port) }], creds);
  t.equal(perm.msg.cls, CLASS.success);
  client.sendRaw(encode({ method: METHOD.send, cls: CLASS.indication, attrs: [{ type: ATTR.xorPeerAddress, value: xorAddress('127.0.0.1', peer.port) }, { type: ATTR.data, value: str('indicated') }] }));
  t.equal((await peer.next()).data.toString(), 'indicated');
  peer.socket.send(str('data!'), relayed.port, '127.0.0.1');
  const indication = decode(await client.nextOther())!;
  t.equal(indication.method, METHOD.data);
  t.equal(indication.cls, CLASS.indication);
  t.same(readXorAddress(attr(indication, ATTR.xorPeerAddress)!), { ip: '127.0.0.1', port: peer.port });
  t.equal(attr(indication, ATTR.data)!.toString(), 'data!');
});

t.test('defect: EVEN-PORT is read (0.0.6 threw readBit is not a function) and allocates an even port (0.0.6 answered 508)', async (t) => {
  const turn = await startTurn(t);
  const a = await TurnTestClient.open({ host: '127.0.0.1', port: turn.port });
  const b = await TurnTestClient.open({ host: '127.0.0.1', port: turn.port });
  const c = await TurnTestClient.open({ host: '127.0.0.1', port: turn.port });
  t.teardown(() => [a, b, c].forEach((x) => x.close()));
  const plain = await a.allocate(turn.creds('01JPARTICIPANT00000000000D'), [{ type: ATTR.evenPort, value: Buffer.from([0x00]) }]);
  t.equal(plain.msg.cls, CLASS.success, `EVEN-PORT (R=0) allocates (error ${errorCode(plain.msg)})`);
  t.equal(readXorAddress(attr(plain.msg, ATTR.xorRelayedAddress)!).port % 2, 0, 'on an even port');

  const creds = turn.creds('01JPARTICIPANT00000000000E');
  const reserving = await b.allocate(creds, [{ type: ATTR.evenPort, value: Buffer.from([0x80]) }]);
  t.equal(reserving.msg.cls, CLASS.success, 'EVEN-PORT (R=1) allocates');
  const even = readXorAddress(attr(reserving.msg, ATTR.xorRelayedAddress)!).port;
  t.equal(even % 2, 0);
  const token = attr(reserving.msg, ATTR.reservationToken);
  t.equal(token?.length, 8, 'with an 8-byte RESERVATION-TOKEN');
  const next = await c.allocate(creds, [{ type: ATTR.reservationToken, value: token! }]);
  t.equal(next.msg.cls, CLASS.success, 'the token allocates');
  t.equal(readXorAddress(attr(next.msg, ATTR.xorRelayedAddress)!).port, even + 1, 'the reserved port N+1');
});

t.test('defect: REQUESTED-ADDRESS-FAMILY and unknown attributes are answered (0.0.6 stalled)', async (t) => {
  const turn = await startTurn(t);
  const clients = await Promise.all([1, 2, 3, 4].map(() => TurnTestClient.open({ host: '127.0.0.1', port: turn.port })));
  t.teardown(() => clients.forEach((c) => c.close()));
  const [v4, v6, optional, required] = clients as [TurnTestClient, TurnTestClient, TurnTestClient, TurnTestClient];
  const creds = turn.creds('01JPARTICIPANT00000000000F');
  const ok = await v4.allocate(creds, [{ type: ATTR.requestedAddressFamily, value: Buffer.from([0x01, 0, 0, 0]) }]);
  t.equal(ok.msg.cls, CLASS.success, 'IPv4 asked for: allocated');
  const no = await v6.allocate(creds, [{ type: ATTR.requestedAddressFamily, value: Buffer.from([0x02, 0, 0, 0]) }]);
  t.equal(errorCode(no.msg), 440, 'IPv6 asked for on an IPv4 relay: 440 Address Family not Supported');
  const skipped = await optional.allocate(creds, [{ type: 0x8055, value: str('ignore me') }]);
  t.equal(skipped.msg.cls, CLASS.success, 'an unknown comprehension-optional attribute is ignored');
  const refused = await required.request(METHOD.allocate, [{ type: ATTR.requestedTransport, value: Buffer.from([17, 0, 0, 0]) }, { type: 0x7777, value: u32(1) }]);
  t.equal(errorCode(refused.msg), 420, 'an unknown comprehension-required attribute: 420');
  t.equal(attr(refused.msg, ATTR.unknownAttributes)?.readUInt16BE(0), 0x7777, 'listed in UNKNOWN-ATTRIBUTES');
});

t.test('refresh: without LIFETIME it keeps the allocation (0.0.6 expired it at once); LIFETIME 0 frees the relay port', async (t) => {
  const peer = await udpPeer();
  t.teardown(() => peer.close());
  const turn = await startTurn(t, { media: { port_base: peer.port, workers: 1 } });
  const client = await TurnTestClient.open({ host: '127.0.0.1', port: turn.port });
  t.teardown(() => client.close());
  const creds = turn.creds('01JPARTICIPANT00000000000G');
  const alloc = await client.allocate(creds);
  const relayed = readXorAddress(attr(alloc.msg, ATTR.xorRelayedAddress)!);
  const refresh = await client.request(METHOD.refresh, [], creds);
  t.equal(refresh.msg.cls, CLASS.success);
  t.equal(attr(refresh.msg, ATTR.lifetime)!.readUInt32BE(0), 600);
  const perm = await client.request(METHOD.createPermission, [{ type: ATTR.xorPeerAddress, value: xorAddress('127.0.0.1', peer.port) }], creds);
  t.equal(perm.msg.cls, CLASS.success, 'the allocation is still there');
  const end = await client.request(METHOD.refresh, [{ type: ATTR.lifetime, value: u32(0) }], creds);
  t.equal(end.msg.cls, CLASS.success);
  const gone = await client.request(METHOD.createPermission, [{ type: ATTR.xorPeerAddress, value: xorAddress('127.0.0.1', peer.port) }], creds);
  t.equal(errorCode(gone.msg), 437, 'no allocation any more: 437');
  const socket = createSocket('udp4');
  socket.bind(relayed.port, '127.0.0.1');
  await once(socket, 'listening'); // rejects with EADDRINUSE if the allocation still held the port
  t.equal(socket.address().port, relayed.port, 'the relay port was released: it can be bound again');
  socket.close();
  t.equal(await metricValue(turn.registry, 'callplane_turn_allocations'), 0);
});

t.test('a message whose FINGERPRINT is wrong is dropped, a later good one answered', async (t) => {
  const turn = await startTurn(t);
  const client = await TurnTestClient.open({ host: '127.0.0.1', port: turn.port });
  t.teardown(() => client.close());
  const bad = encode({ method: METHOD.binding, cls: CLASS.request, fingerprint: true });
  bad[bad.length - 1]! ^= 0xff;
  client.sendRaw(bad);
  // loopback UDP keeps order and the server answers in order: once the good one is answered, an answer to the bad one would be here
  t.equal((await client.request(METHOD.binding, [])).msg.cls, CLASS.success, 'the good one is answered');
  t.notOk(client.other.some((raw) => raw.subarray(8, 20).equals(bad.subarray(8, 20))), 'the bad one was not');
});
