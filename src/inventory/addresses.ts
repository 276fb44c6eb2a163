/** IP address and name checks shared by the schema and the cross-field rules. */
import { isIP } from 'node:net';

/**
 * A literal IPv4/IPv6 address. Zone ids (`fe80::1%eth0`) are refused: they mean nothing on
 * another host and cannot go into a certificate's SAN.
 */
export function isIpAddress(value: string): boolean {
  return !value.includes('%') && isIP(value) !== 0;
}

/** Why a near-miss is not an address, when we can tell. */
export function addressHint(value: string): string | undefined {
  const slash = value.indexOf('/');
  if (slash > 0 && isIpAddress(value.slice(0, slash))) return 'write the address without a prefix length';
  if (value.includes('%')) return 'zone ids are not allowed';
  return undefined;
}

/** One spelling per address, so `2001:DB8::0:1` and `2001:db8::1` count as the same. */
export function canonicalAddress(value: string): string {
  if (isIP(value) !== 6) return value;
  try {
    return new URL(`http://[${value}]/`).hostname;
  } catch {
    return value.toLowerCase();
  }
}

/** RFC 1123 host name label as used for `name`: what `hostname` accepts, lowercase. */
export const HOST_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A DNS name for a certificate SAN: dot-separated RFC 1123 labels, at most 253 characters. */
export function isDnsName(value: string): boolean {
  if (value.length > 253) return false;
  return value.split('.').every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}
