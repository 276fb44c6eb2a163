/**
 * Checks on what callers pass to the PKI. Every problem is collected so one run reports all of
 * them; the `path` of each problem is the option or field it came from.
 */
import { isIP } from 'node:net';
import { InputError, type Problem } from '../errors.js';
import { addressHint, parseIpAddress } from '../net/address.js';
import { LEAF_ROLES, type LeafRole } from './types.js';

/** A certificate name ends up as a file name (certs/NAME.crt), so it must be safe as one. */
export const CERT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

// One DNS label: letters, digits and inner hyphens, at most 63 characters.
const DNS_LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export type SubjectAltName = { type: 'dns'; value: string } | { type: 'ip'; value: string };

export function isDnsName(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  const labels = s.split('.');
  // An all-numeric last label is a mistyped IP address (300.1.1.1), not a host name.
  if (/^\d+$/.test(labels[labels.length - 1] ?? '')) return false;
  return labels.every((label) => DNS_LABEL_RE.test(label));
}

export function checkName(name: string, path: string, problems: Problem[]): void {
  if (!CERT_NAME_RE.test(name)) {
    problems.push({
      path,
      message: `invalid certificate name ${JSON.stringify(name)}: expected 1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`,
    });
  }
}

export function checkRole(role: string, path: string, problems: Problem[]): role is LeafRole {
  if ((LEAF_ROLES as readonly string[]).includes(role)) return true;
  problems.push({ path, message: `invalid role ${JSON.stringify(role)}: expected one of ${LEAF_ROLES.join(', ')}` });
  return false;
}

/** Classifies each SAN as an IP (node:net isIP) or a DNS name; anything else is a problem. */
export function parseSans(sans: readonly string[], path: string, problems: Problem[]): SubjectAltName[] {
  const out: SubjectAltName[] = [];
  sans.forEach((raw, i) => {
    const s = raw.trim();
    const ip = parseIpAddress(s);
    // The inventory's address policy (src/net/address.ts): a zone id means nothing in a
    // certificate, and an IPv4-mapped IPv6 address is its IPv4 address, spelled once.
    if (ip !== undefined && ip.canonical !== s && ip.family === 4) {
      problems.push({ path: `${path}[${i}]`, message: `invalid subjectAltName ${JSON.stringify(raw)}: an IPv4-mapped IPv6 address; give it as ${ip.canonical}` });
    } else if (ip !== undefined) out.push({ type: 'ip', value: ip.canonical });
    else if (isIP(s) !== 0 || s.includes('%')) problems.push({ path: `${path}[${i}]`, message: `invalid subjectAltName ${JSON.stringify(raw)}: ${addressHint(s) ?? 'not an IP address a certificate can carry'}` });
    else if (isDnsName(s)) out.push({ type: 'dns', value: s.toLowerCase() });
    else problems.push({ path: `${path}[${i}]`, message: `invalid subjectAltName ${JSON.stringify(raw)}: expected a DNS name or an IP address` });
  });
  return out;
}

/** The SAN list a certificate gets: a central always carries its own name; duplicates dropped. */
export function sanList(role: LeafRole, name: string, extra: SubjectAltName[], problems: Problem[], path: string): SubjectAltName[] {
  const all: SubjectAltName[] = [];
  if (role === 'central') {
    if (isIP(name) !== 0) all.push({ type: 'ip', value: name });
    else if (isDnsName(name)) all.push({ type: 'dns', value: name.toLowerCase() });
    else problems.push({ path, message: `a central's name goes into its subjectAltName, so it must be a DNS name or an IP address (got ${JSON.stringify(name)})` });
  }
  all.push(...extra);
  const seen = new Set<string>();
  return all.filter((s) => {
    const key = `${s.type}:${s.value}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function checkPositiveInt(value: number | undefined, path: string, problems: Problem[], max?: number): void {
  if (value === undefined) return;
  if (!Number.isSafeInteger(value) || value <= 0) {
    problems.push({ path, message: `must be a positive integer (got ${String(value)})` });
  } else if (max !== undefined && value > max) {
    problems.push({ path, message: `must be at most ${max} (got ${value})` });
  }
}

export const MIN_KEY_BITS = 2048;
export const MAX_KEY_BITS = 16384;

export function checkKeyBits(bits: number | undefined, path: string, problems: Problem[]): void {
  if (bits === undefined) return;
  if (!Number.isSafeInteger(bits) || bits < MIN_KEY_BITS || bits > MAX_KEY_BITS) {
    problems.push({ path, message: `RSA key size must be an integer from ${MIN_KEY_BITS} to ${MAX_KEY_BITS} (got ${String(bits)})` });
  }
}

export function throwIfProblems(problems: Problem[]): void {
  if (problems.length > 0) throw new InputError(problems);
}
