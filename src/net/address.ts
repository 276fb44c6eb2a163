/**
 * The address policy: which IP literals ovn-deploy accepts for a host (its addresses, its encap
 * IP, its certificate's IP SANs), one spelling per address, and why the others cannot work. Used
 * by the inventory (schema and duplicate rules) and written for the PKI's SAN checks as well.
 */
import { isIP } from 'node:net';

export interface IpAddress {
  family: 4 | 6;
  /** One spelling per address: lower-case compressed IPv6; an IPv4-mapped IPv6 address as its IPv4. */
  canonical: string;
}

/**
 * A literal IPv4/IPv6 address, or undefined. Zone ids (`fe80::1%eth0`) are refused: they mean
 * nothing on another host and cannot go into a certificate's SAN.
 */
export function parseIpAddress(value: string): IpAddress | undefined {
  if (value.includes('%')) return undefined;
  const family = isIP(value);
  if (family === 4) return { family: 4, canonical: value };
  if (family !== 6) return undefined;
  let canonical: string;
  try {
    canonical = new URL(`http://[${value}]/`).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
  // An IPv4-mapped address is that IPv4 address (URL spells ::ffff:192.0.2.11 as ::ffff:c000:20b).
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (hex?.[1] !== undefined && hex[2] !== undefined) {
    const n = (Number.parseInt(hex[1], 16) << 16) | Number.parseInt(hex[2], 16);
    return { family: 4, canonical: [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.') };
  }
  return { family: 6, canonical };
}

export const isIpAddress = (value: string): boolean => parseIpAddress(value) !== undefined;

/** One spelling per address, so `2001:DB8::0:1` and `2001:db8::1` (or `::ffff:1.2.3.4` and `1.2.3.4`) count as the same. */
export function canonicalAddress(value: string): string {
  return parseIpAddress(value)?.canonical ?? value;
}

/** Why a near-miss is not an address, when we can tell. */
export function addressHint(value: string): string | undefined {
  const slash = value.indexOf('/');
  if (slash > 0 && isIpAddress(value.slice(0, slash))) return 'write the address without a prefix length';
  if (value.includes('%')) return 'zone ids are not allowed';
  return undefined;
}

function ipv4Octets(a: string): number[] {
  return a.split('.').map(Number);
}

/** The 16 bytes of a canonical IPv6 address. */
function ipv6Bytes(a: string): number[] {
  const [head = '', tail] = a.split('::');
  const words = (s: string): number[] => (s === '' ? [] : s.split(':').map((w) => Number.parseInt(w, 16)));
  const h = words(head);
  const t = tail === undefined ? [] : words(tail);
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  return all.flatMap((w) => [w >> 8, w & 255]);
}

/**
 * Why this address cannot be the address of a host other hosts reach (and that stunnel listens
 * on, and a certificate names), or undefined when it can. IPv4 link-local (169.254/16) is kept:
 * hosts on one link can use it. IPv6 link-local needs a zone id on every host, which a site-wide
 * address cannot carry.
 */
export function unusableAddressReason(value: string): string | undefined {
  const ip = parseIpAddress(value);
  if (ip === undefined) return undefined;
  if (ip.family === 4) {
    const [a = 0] = ipv4Octets(ip.canonical);
    if (ip.canonical === '0.0.0.0') return 'the unspecified address (listens everywhere, reaches nothing)';
    if (a === 0) return 'in 0.0.0.0/8 ("this network"), not a host address';
    if (a === 127) return 'a loopback address (every host has its own)';
    if (ip.canonical === '255.255.255.255') return 'the broadcast address';
    if (a >= 224 && a <= 239) return 'a multicast address';
    if (a >= 240) return 'in 240.0.0.0/4 (reserved), not a host address';
    return undefined;
  }
  const bytes = ipv6Bytes(ip.canonical);
  if (bytes.every((x) => x === 0)) return 'the unspecified address (listens everywhere, reaches nothing)';
  if (bytes.slice(0, 15).every((x) => x === 0) && bytes[15] === 1) return 'the loopback address (every host has its own)';
  if (bytes[0] === 0xff) return 'a multicast address';
  if (bytes[0] === 0xfe && ((bytes[1] ?? 0) & 0xc0) === 0x80) return 'an IPv6 link-local address (it needs a zone id on each host, which a site-wide address cannot carry)';
  return undefined;
}
