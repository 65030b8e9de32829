/**
 * A small TURN client for tests: it writes and reads the real STUN/TURN bytes of RFC 5389 and
 * RFC 5766 (header, attributes, MESSAGE-INTEGRITY with the long-term key, FINGERPRINT,
 * ChannelData) over a real UDP socket, so a test states exactly what goes on the wire.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';

export const MAGIC = 0x2112a442;
export const METHOD = { binding: 0x001, allocate: 0x003, refresh: 0x004, send: 0x006, data: 0x007, createPermission: 0x008, channelBind: 0x009 } as const;
export const CLASS = { request: 0, indication: 1, success: 2, error: 3 } as const;
export const ATTR = {
  username: 0x0006,
  messageIntegrity: 0x0008,
  errorCode: 0x0009,
  unknownAttributes: 0x000a,
  realm: 0x0014,
  nonce: 0x0015,
  channelNumber: 0x000c,
  lifetime: 0x000d,
  xorPeerAddress: 0x0012,
  data: 0x0013,
  xorRelayedAddress: 0x0016,
  requestedAddressFamily: 0x0017,
  evenPort: 0x0018,
  requestedTransport: 0x0019,
  dontFragment: 0x001a,
  xorMappedAddress: 0x0020,
  reservationToken: 0x0022,
  software: 0x8022,
  fingerprint: 0x8028,
} as const;

export interface Attr {
  type: number;
  value: Buffer;
}

export interface StunMessage {
  method: number;
  cls: number;
  txid: Buffer;
  attrs: Attr[];
}

export function messageType(method: number, cls: number): number {
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7);
}

function attrBytes({ type, value }: Attr): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}

export interface Integrity {
  username: string;
  realm: string;
  password: string;
}

/** The long-term key of RFC 5389 section 15.4: MD5(username ":" realm ":" password). */
export function longTermKey({ username, realm, password }: Integrity): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`).digest();
}

/** Encodes a message; with `integrity`, MESSAGE-INTEGRITY is appended (then FINGERPRINT if asked). */
export function encode(msg: { method: number; cls: number; txid?: Buffer; attrs?: Attr[]; integrity?: Integrity; fingerprint?: boolean }): Buffer {
  const txid = msg.txid ?? randomBytes(12);
  let body = Buffer.concat((msg.attrs ?? []).map(attrBytes));
  const header = (length: number) => {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(messageType(msg.method, msg.cls), 0);
    h.writeUInt16BE(length, 2);
    h.writeUInt32BE(MAGIC, 4);
    txid.copy(h, 8);
    return h;
  };
  if (msg.integrity) {
    const hmac = createHmac('sha1', longTermKey(msg.integrity)).update(Buffer.concat([header(body.length + 24), body])).digest();
    body = Buffer.concat([body, attrBytes({ type: ATTR.messageIntegrity, value: hmac })]);
  }
  if (msg.fingerprint) {
    const crc = crc32(Buffer.concat([header(body.length + 8), body]));
    const value = Buffer.alloc(4);
    value.writeUInt32BE((crc ^ 0x5354554e) >>> 0, 0);
    body = Buffer.concat([body, attrBytes({ type: ATTR.fingerprint, value })]);
  }
  return Buffer.concat([header(body.length), body]);
}

export function decode(buf: Buffer): StunMessage | null {
  if (buf.length < 20 || buf[0]! & 0xc0 || buf.readUInt32BE(4) !== MAGIC) return null;
  const type = buf.readUInt16BE(0);
  const method = (type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80);
  const cls = ((type >> 7) & 2) | ((type >> 4) & 1);
  const attrs: Attr[] = [];
  let offset = 20;
  const end = 20 + buf.readUInt16BE(2);
  while (offset + 4 <= end) {
    const t = buf.readUInt16BE(offset);
    const len = buf.readUInt16BE(offset + 2);
    attrs.push({ type: t, value: buf.subarray(offset + 4, offset + 4 + len) });
    offset += 4 + len + ((4 - (len % 4)) % 4);
  }
  return { method, cls, txid: buf.subarray(8, 20), attrs };
}

export function attr(msg: StunMessage, type: number): Buffer | undefined {
  return msg.attrs.find((a) => a.type === type)?.value;
}

export function errorCode(msg: StunMessage): number | null {
  const value = attr(msg, ATTR.errorCode);
  return value ? (value[2]! & 7) * 100 + value[3]! : null;
}

/** Whether a response's MESSAGE-INTEGRITY verifies with `integrity` (the server signed it). */
export function integrityOk(raw: Buffer, integrity: Integrity): boolean {
  let offset = 20;
  while (offset + 4 <= raw.length) {
    const t = raw.readUInt16BE(offset);
    const len = raw.readUInt16BE(offset + 2);
    if (t === ATTR.messageIntegrity) {
      const header = Buffer.from(raw.subarray(0, 20));
      header.writeUInt16BE(offset - 20 + 24, 2);
      const hmac = createHmac('sha1', longTermKey(integrity)).update(Buffer.concat([header, raw.subarray(20, offset)])).digest();
      return hmac.equals(raw.subarray(offset + 4, offset + 24));
    }
    offset += 4 + len + ((4 - (len % 4)) % 4);
  }
  return false;
}

export function xorAddress(ip: string, port: number): Buffer {
  const value = Buffer.alloc(8);
  value[1] = 0x01;
  value.writeUInt16BE(port ^ (MAGIC >>> 16), 2);
  const octets = ip.split('.').map(Number);
  value.writeUInt32BE((((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) ^ MAGIC) >>> 0, 4);
  return value;
}

export function readXorAddress(value: Buffer): { ip: string; port: number } {
  const port = value.readUInt16BE(2) ^ (MAGIC >>> 16);
  const n = (value.readUInt32BE(4) ^ MAGIC) >>> 0;
  return { ip: [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.'), port };
}

export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
};
export const str = (s: string): Buffer => Buffer.from(s, 'utf8');
/** REQUESTED-TRANSPORT: UDP (17) and three RFFU bytes. */
export const UDP_TRANSPORT: Attr = { type: ATTR.requestedTransport, value: Buffer.from([17, 0, 0, 0]) };

export function channelData(channel: number, data: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(channel, 0);
  head.writeUInt16BE(data.length, 2);
  return Buffer.concat([head, data]);
}

let crcTable: Uint32Array | null = null;
function crc32(buf: Buffer): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n += 1) {
      let c = n;
      for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of buf) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export interface Response {
  msg: StunMessage;
  raw: Buffer;
}

/** One UDP socket talking to a TURN server: requests matched to responses by transaction id. */
export class TurnTestClient {
  readonly socket: Socket;
  /** Datagrams that are not responses (ChannelData, Data indications), in arrival order. */
  readonly other: Buffer[] = [];
  private readonly waiting = new Map<string, (r: Response) => void>();
  private readonly otherWaiters: Array<() => void> = [];
  realm = '';
  nonce = '';

  private constructor(
    socket: Socket,
    readonly server: { host: string; port: number },
  ) {
    this.socket = socket;
    socket.on('message', (raw) => {
      const msg = decode(raw);
      const key = msg?.txid.toString('hex');
      const waiter = key ? this.waiting.get(key) : undefined;
      if (msg && waiter && (msg.cls === CLASS.success || msg.cls === CLASS.error)) {
        this.waiting.delete(key!);
        waiter({ msg, raw });
        return;
      }
      this.other.push(raw);
      for (const wake of this.otherWaiters.splice(0)) wake();
    });
  }

  static async open(server: { host: string; port: number }): Promise<TurnTestClient> {
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    return new TurnTestClient(socket, server);
  }

  get port(): number {
    return this.socket.address().port;
  }

  sendRaw(buf: Buffer): void {
    this.socket.send(buf, this.server.port, this.server.host);
  }

  /** Sends `buf` (a request with transaction id `txid`) and waits for its response, resending it as RFC 5389 section 7.2.1 does. */
  async transact(buf: Buffer, timeoutMs = 3000): Promise<Response> {
    const key = buf.subarray(8, 20).toString('hex');
    return new Promise<Response>((resolve, reject) => {
      let rto = 250;
      let timer: NodeJS.Timeout;
      const deadline = setTimeout(() => {
        clearTimeout(timer);
        this.waiting.delete(key);
        reject(new Error(`no response to transaction ${key} within ${timeoutMs} ms`));
      }, timeoutMs);
      const resend = () => {
        this.sendRaw(buf);
        timer = setTimeout(resend, (rto *= 2));
      };
      this.waiting.set(key, (r) => {
        clearTimeout(deadline);
        clearTimeout(timer);
        resolve(r);
      });
      resend();
    });
  }

  /** A request signed with the long-term credentials (after a 401 gave realm and nonce). */
  request(method: number, attrs: Attr[], creds?: { username: string; password: string }): Promise<Response> {
    const signed = creds && this.realm ? [...attrs, { type: ATTR.username, value: str(creds.username) }, { type: ATTR.realm, value: str(this.realm) }, { type: ATTR.nonce, value: str(this.nonce) }] : attrs;
    const integrity = creds && this.realm ? { username: creds.username, realm: this.realm, password: creds.password } : undefined;
    return this.transact(encode({ method, cls: CLASS.request, attrs: signed, ...(integrity ? { integrity } : {}), fingerprint: true }));
  }

  /** An Allocate: unauthenticated first (401 gives realm and nonce), then signed. Returns the signed attempt's response. */
  async allocate(creds: { username: string; password: string }, extra: Attr[] = []): Promise<Response> {
    if (!this.realm) {
      const challenge = await this.request(METHOD.allocate, [UDP_TRANSPORT, ...extra]);
      if (errorCode(challenge.msg) !== 401) return challenge;
      this.realm = attr(challenge.msg, ATTR.realm)!.toString();
      this.nonce = attr(challenge.msg, ATTR.nonce)!.toString();
    }
    return this.request(METHOD.allocate, [UDP_TRANSPORT, ...extra], creds);
  }

  /** Waits for the next datagram that is not a response. */
  async nextOther(timeoutMs = 3000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.other.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no datagram within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.otherWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.other.shift()!;
  }

  close(): void {
    this.socket.close();
  }
}

/** A UDP peer on loopback that records what it receives. */
export async function udpPeer(): Promise<{ socket: Socket; port: number; next(timeoutMs?: number): Promise<{ data: Buffer; port: number; address: string }>; close(): void }> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const queue: Array<{ data: Buffer; port: number; address: string }> = [];
  const waiters: Array<() => void> = [];
  socket.on('message', (data, rinfo) => {
    queue.push({ data, port: rinfo.port, address: rinfo.address });
    for (const wake of waiters.splice(0)) wake();
  });
  return {
    socket,
    port: socket.address().port,
    async next(timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      while (queue.length === 0) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`peer got nothing within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return queue.shift()!;
    },
    close: () => socket.close(),
  };
}
