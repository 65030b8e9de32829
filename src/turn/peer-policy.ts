import { isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';

/**
 * Which peers a relay may reach (docs/turn.md, "Peers"). A relay is an open UDP proxy: without a
 * rule, any client with a credential could reach this host's loopback services or the private
 * network behind it. So loopback, link-local, private and unspecified addresses are refused,
 * except this node's own media ports (on any of its addresses, loopback included: that is how a
 * client on this host, and every test, reaches the SFU), unless allow_private_peers is set.
 */
export class PeerPolicy {
  private readonly ownAddresses: Set<string>;

  constructor(
    private readonly mediaPorts: { first: number; count: number },
    private readonly allowPrivate: boolean,
    extraOwnAddresses: ReadonlyArray<string | null> = [],
  ) {
    const own = new Set<string>(['127.0.0.1', '::1']);
    for (const list of Object.values(networkInterfaces())) for (const iface of list ?? []) own.add(iface.address);
    for (const address of extraOwnAddresses) if (address) own.add(address);
    this.ownAddresses = own;
  }

  allowed(address: string, port: number): boolean {
    if (port < 1 || port > 65535) return false;
    if (this.isMediaPort(port) && (this.ownAddresses.has(address) || isLoopback(address))) return true;
    if (isUnspecifiedOrMulticast(address)) return false;
    if (isRestricted(address)) return this.allowPrivate;
    return true;
  }

  private isMediaPort(port: number): boolean {
    return port >= this.mediaPorts.first && port < this.mediaPorts.first + this.mediaPorts.count;
  }
}

function v4(address: string): number[] | null {
  if (!isIPv4(address)) return null;
  return address.split('.').map(Number);
}

function isLoopback(address: string): boolean {
  const o = v4(address);
  if (o) return o[0] === 127;
  return address === '::1' || /^0*:0*:0*:0*:0*:0*:0*:0*1$/.test(address);
}

function isUnspecifiedOrMulticast(address: string): boolean {
  const o = v4(address);
  if (o) return o[0] === 0 || o[0]! >= 224;
  if (!isIPv6(address)) return true;
  return /^(0*:)*0*$/.test(address.replace('::', ':')) || /^ff/i.test(address);
}

/** Loopback, link-local, private (RFC 1918, RFC 6598 shared, unique-local) and v4-mapped forms of them. */
export function isRestricted(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return isRestricted(mapped[1]!);
  const o = v4(address);
  if (o) {
    const [a, b] = o as [number, number];
    return a === 127 || a === 10 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  if (!isIPv6(address)) return true;
  return isLoopback(address) || /^fe[89ab]/i.test(address) || /^f[cd]/i.test(address);
}
