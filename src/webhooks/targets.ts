/**
 * Where webhooks may be sent (docs/webhooks.md, "Security"): http(s) URLs whose host resolves only to
 * public unicast addresses, unless webhooks.allow_private_targets is set. The check runs when an
 * endpoint is saved and again on every connection (the lookup below), so a name that later resolves
 * to a private address (DNS rebinding) is refused too.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { AppError } from '../shared/errors.ts';

/** Public unicast only: loopback, private, link-local, unique-local, CGNAT, multicast, reserved... are not. */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  return parsed.range() === 'unicast';
}

export class TargetRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetRefused';
  }
}

function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

function resolveAll(host: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => dnsLookup(host, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))));
}

/** Validates an endpoint URL for the admin API and the config file; throws validation_failed. */
export async function checkEndpointUrl(raw: string, allowPrivate: boolean): Promise<void> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refused(raw, 'is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refused(raw, 'must be http or https');
  if (url.username || url.password) throw refused(raw, 'must not carry credentials (the signature authenticates callplane)');
  if (allowPrivate) return;
  const host = hostOf(url);
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await resolveAll(host)).map((a) => a.address);
    } catch {
      throw refused(raw, `has a host (${host}) that does not resolve`);
    }
  }
  const privateOne = addresses.find((a) => !isPublicAddress(a));
  if (privateOne) throw refused(raw, `resolves to ${privateOne}, a loopback, link-local or private address (set webhooks.allow_private_targets to allow it)`);
}

function refused(url: string, why: string): AppError {
  return new AppError('validation_failed', `The endpoint URL ${why}`, { errors: [{ in: 'body', path: '/url', message: why }], url });
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A dns.lookup for http.request that refuses non-public addresses at connection time. An IP literal
 * never reaches a lookup function, so deliveries check literals with `refusedLiteral` first.
 */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '');
      const bad = allowPrivate ? undefined : addresses.find((a) => !isPublicAddress(a.address));
      if (bad) return callback(Object.assign(new TargetRefused(`${hostname} resolves to ${bad.address}, a non-public address`), { code: 'ETARGETREFUSED' }), '');
      if ((options as LookupAllOptions).all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '');
      callback(null, first.address, first.family);
    });
  };
}

/** A reason to refuse a URL whose host is an IP literal, or null. */
export function refusedLiteral(url: URL, allowPrivate: boolean): string | null {
  const host = hostOf(url);
  if (allowPrivate || !isIP(host) || isPublicAddress(host)) return null;
  return `${host} is a non-public address`;
}
