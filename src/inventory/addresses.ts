/** IP address and name checks shared by the schema and the cross-field rules. */

// The address policy lives in src/net/address.ts (shared with the PKI); re-exported for the inventory.
export { addressHint, canonicalAddress, isIpAddress, unusableAddressReason } from '../net/address.js';

/** RFC 1123 host name label as used for `name`: what `hostname` accepts, lowercase. */
export const HOST_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A DNS name for a certificate SAN: dot-separated RFC 1123 labels, at most 253 characters. */
export function isDnsName(value: string): boolean {
  if (value.length > 253) return false;
  return value.split('.').every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}
