import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';

/** Sends one STUN Binding request and resolves whether a response with its transaction id came back in time. */
export function stunBinding(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const request = Buffer.alloc(20);
    request.writeUInt16BE(0x0001, 0);
    request.writeUInt32BE(0x2112a442, 4);
    randomBytes(12).copy(request, 8);
    let finished = false;
    const done = (ok: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('error', () => done(false));
    socket.on('message', (msg) => {
      if (msg.length >= 20 && msg.subarray(8, 20).equals(request.subarray(8, 20))) done(true);
    });
    socket.send(request, port, host);
  });
}

const ATTR_USERNAME = 0x0006;
const ATTR_MESSAGE_INTEGRITY = 0x0008;
const ATTR_ERROR_CODE = 0x0009;
const ATTR_LIFETIME = 0x000d;
const ATTR_REALM = 0x0014;
const ATTR_NONCE = 0x0015;
const ATTR_XOR_RELAYED_ADDRESS = 0x0016;
const ATTR_REQUESTED_TRANSPORT = 0x0019;

function attribute(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}

/** A STUN request of `type` with `attrs`, signed (RFC 5389 section 15.4) when `key` is given. */
function request(type: number, attrs: Buffer[], key: Buffer | null): Buffer {
  const body = Buffer.concat(attrs);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(type, 0);
  header.writeUInt32BE(0x2112a442, 4);
  randomBytes(12).copy(header, 8);
  if (!key) {
    header.writeUInt16BE(body.length, 2);
    return Buffer.concat([header, body]);
  }
  header.writeUInt16BE(body.length + 24, 2);
  const mac = createHmac('sha1', key).update(Buffer.concat([header, body])).digest();
  return Buffer.concat([header, body, attribute(ATTR_MESSAGE_INTEGRITY, mac)]);
}

function attributes(msg: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let offset = 20; offset + 4 <= Math.min(msg.length, 20 + msg.readUInt16BE(2)); ) {
    const type = msg.readUInt16BE(offset);
    const length = msg.readUInt16BE(offset + 2);
    if (!out.has(type)) out.set(type, msg.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length + ((4 - (length % 4)) % 4);
  }
  return out;
}

/**
 * A real allocation (docs/turn.md, "callplane doctor"): Allocate, the 401 challenge, the signed
 * Allocate, then a Refresh with lifetime 0 to release it. Resolves with the relayed address or
 * the reason it failed.
 */
export async function probeAllocation(host: string, port: number, username: string, password: string, timeoutMs = 3000): Promise<{ ok: true; relayed: string } | { ok: false; reason: string }> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const ask = (buf: Buffer) =>
    new Promise<Buffer | null>((resolve) => {
      const timer = setTimeout(() => finish(null), timeoutMs);
      const finish = (msg: Buffer | null) => {
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(msg);
      };
      const onMessage = (msg: Buffer) => {
        if (msg.length >= 20 && msg.subarray(8, 20).equals(buf.subarray(8, 20))) finish(msg);
      };
      socket.on('message', onMessage);
      socket.send(buf, port, host);
    });
  const transport = attribute(ATTR_REQUESTED_TRANSPORT, Buffer.from([17, 0, 0, 0]));
  try {
    socket.on('error', () => undefined);
    const challenge = await ask(request(0x0003, [transport], null));
    if (!challenge) return { ok: false, reason: `no answer from ${host}:${port}/udp` };
    const first = attributes(challenge);
    const realm = first.get(ATTR_REALM)?.toString();
    const nonce = first.get(ATTR_NONCE)?.toString();
    if (!realm || !nonce) return { ok: false, reason: 'the server did not ask for credentials (no realm/nonce in its 401)' };
    const key = createHash('md5').update(`${username}:${realm}:${password}`).digest();
    const signed = [transport, attribute(ATTR_USERNAME, Buffer.from(username)), attribute(ATTR_REALM, Buffer.from(realm)), attribute(ATTR_NONCE, Buffer.from(nonce))];
    const answer = await ask(request(0x0003, signed, key));
    if (!answer) return { ok: false, reason: 'no answer to the signed Allocate' };
    const attrs = attributes(answer);
    const error = attrs.get(ATTR_ERROR_CODE);
    if (error || answer.readUInt16BE(0) !== 0x0103) return { ok: false, reason: `allocation refused: ${error ? `${(error[2]! & 7) * 100 + error[3]!} ${error.subarray(4).toString()}` : 'unexpected answer'}` };
    const xor = attrs.get(ATTR_XOR_RELAYED_ADDRESS);
    const relayed = xor && xor[1] === 1 ? `${[0, 1, 2, 3].map((i) => xor[4 + i]! ^ [0x21, 0x12, 0xa4, 0x42][i]!).join('.')}:${xor.readUInt16BE(2) ^ 0x2112}` : 'an IPv6 address';
    const release = [attribute(ATTR_LIFETIME, Buffer.alloc(4)), ...signed.slice(1)];
    await ask(request(0x0004, release, key));
    return { ok: true, relayed };
  } finally {
    socket.close();
  }
}
