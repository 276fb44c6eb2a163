/**
 * What a CLI sent to and got from its hosts over SSH, observed from outside the tool: an `ssh`
 * first in the CLI's PATH that records every call's argv, stdin and stdout (byte for byte) into the
 * directory named by OD_SSH_RECORD (one per CLI call, so a call that recorded nothing is seen)
 * and then runs the real client. A call without OD_SSH_RECORD fails: a shim that stopped
 * recording cannot pass as "nothing sent".
 *
 * scanForKeys looks for OUR keys only, in every form that would carry one: the PEM base64 body,
 * the raw DER, and DER slices base64-encoded at all three byte phases (so a key re-wrapped,
 * re-encoded as PKCS#1/PKCS#8 or embedded in a larger base64 blob is found too), in the raw bytes
 * and with line breaks (also JSON-escaped ones) removed, inside gzip and tar archives unpacked
 * recursively.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ZxRunner } from '../../src/runner.js';

export interface SshRecorder {
  binDir: string;
  /** Environment for one CLI call: PATH with the shim first, its own record directory. */
  env(step: string): Promise<Record<string, string>>;
  /** Every recorded file of one step (or of all steps). */
  files(step?: string): Promise<string[]>;
  steps(): Promise<string[]>;
}

export async function sshRecorder(dir: string): Promise<SshRecorder> {
  const binDir = path.join(dir, 'shim-bin');
  const logDir = path.join(dir, 'ssh-log');
  await fs.mkdir(binDir, { recursive: true });
  await fs.mkdir(logDir, { recursive: true, mode: 0o700 });
  const realSsh = (await new ZxRunner().run(['sh', '-c', 'command -v ssh'])).stdout.trim();
  const script = [
    '#!/bin/sh',
    '[ -d "$OD_SSH_RECORD" ] || { echo "ssh shim: OD_SSH_RECORD is not a directory" >&2; exit 97; }',
    'n="$OD_SSH_RECORD/$(date +%s%N)-$$"',
    'printf \'%s\\n\' "$@" > "$n.argv"',
    // The real client's exit status, not tee's, is the shim's.
    `tee "$n.stdin" | { ${realSsh} "$@"; echo $? > "$n.rc"; } | tee "$n.stdout"`,
    'exit "$(cat "$n.rc")"',
    '',
  ].join('\n');
  await fs.writeFile(path.join(binDir, 'ssh'), script, { mode: 0o755 });
  const list = async (d: string): Promise<string[]> => (await fs.readdir(d)).filter((f) => !f.endsWith('.rc')).map((f) => path.join(d, f));
  return {
    binDir,
    env: async (step) => {
      const d = path.join(logDir, step);
      await fs.mkdir(d, { mode: 0o700 });
      return { PATH: `${binDir}:${process.env.PATH ?? ''}`, OD_SSH_RECORD: d };
    },
    steps: async () => (await fs.readdir(logDir)).sort(),
    files: async (step) => {
      const steps = step === undefined ? (await fs.readdir(logDir)).sort() : [step];
      return (await Promise.all(steps.map((s) => list(path.join(logDir, s))))).flat().sort();
    },
  };
}

/** Base64 body of a PEM block, without line breaks. */
export const pemBody = (pem: string): string => pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');

export interface KeyForm {
  key: string;
  form: string;
  needle: Buffer;
  /** Searched in the haystack with all line breaks removed, escaped ones (`\n` in JSON) too (base64 forms). */
  stripped: boolean;
}

/** The forms in which a private key (PEM) would travel. */
export function keyForms(label: string, pem: string): KeyForm[] {
  const body = pemBody(pem);
  const der = Buffer.from(body, 'base64');
  if (der.length < 600) throw new Error(`${label}: not a private key PEM (${der.length} DER bytes)`);
  const forms: KeyForm[] = [
    { key: label, form: 'base64 body', needle: Buffer.from(body, 'latin1'), stripped: true },
    { key: label, form: 'DER', needle: der, stripped: false },
  ];
  // Slices from the private part (past the modulus): present in PKCS#1 and PKCS#8 alike.
  for (const at of [Math.floor(der.length / 2), der.length - 100]) {
    const slice = der.subarray(at, at + 48);
    forms.push({ key: label, form: `DER bytes ${at}+48`, needle: slice, stripped: false });
    for (const phase of [0, 1, 2]) {
      const b64 = der.subarray(at + phase, at + phase + 48).toString('base64');
      forms.push({ key: label, form: `base64 of DER ${at + phase}+48`, needle: Buffer.from(b64, 'latin1'), stripped: true });
    }
  }
  return forms;
}

const isGzip = (b: Buffer): boolean => b.length > 18 && b[0] === 0x1f && b[1] === 0x8b;
const isTar = (b: Buffer): boolean => b.length >= 512 && b.subarray(257, 262).toString('latin1') === 'ustar';

/** Regular-file members of a tar (name, content). */
export function tarMembers(b: Buffer): { name: string; data: Buffer }[] {
  const out: { name: string; data: Buffer }[] = [];
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= b.length) {
    const h = b.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const str = (s: number, n: number): string => h.subarray(s, s + n).toString('latin1').replace(/\0.*$/s, '');
    const size = (h[124] ?? 0) & 0x80 ? Number(h.readBigUInt64BE(128)) : parseInt(str(124, 12).trim() || '0', 8);
    const type = str(156, 1) || '0';
    const prefix = str(345, 155);
    const name = longName ?? (prefix === '' ? str(0, 100) : `${prefix}/${str(0, 100)}`);
    const data = b.subarray(off + 512, off + 512 + size);
    longName = undefined;
    if (type === 'L') longName = data.toString('latin1').replace(/\0.*$/s, '');
    else if (type === '0' || type === '7') out.push({ name, data });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

export interface Blob {
  /** file, then `!member` per archive level. */
  where: string;
  data: Buffer;
}

/** The bytes themselves plus, recursively, what gzip and tar archives inside them hold. */
export function unpack(where: string, data: Buffer, depth = 0): Blob[] {
  const out: Blob[] = [{ where, data }];
  if (depth > 6) return out;
  if (isGzip(data)) {
    let inner: Buffer | undefined;
    try {
      inner = gunzipSync(data);
    } catch {
      inner = undefined; // not really gzip: scanned as it is
    }
    if (inner !== undefined) out.push(...unpack(`${where}!gunzip`, inner, depth + 1));
  } else if (isTar(data)) {
    // The tar's own bytes hold its members verbatim; only archives inside need unpacking.
    for (const m of tarMembers(data)) if (isGzip(m.data) || isTar(m.data)) out.push(...unpack(`${where}!${m.name}`, m.data, depth + 1));
  }
  return out;
}

export interface Finding {
  where: string;
  key: string;
  form: string;
}

/** Every place (blob) where any form of any key occurs. Identical blobs are scanned once. */
export function scanForKeys(blobs: Blob[], forms: KeyForm[]): Finding[] {
  const cache = new Map<string, Omit<Finding, 'where'>[]>();
  const found: Finding[] = [];
  for (const b of blobs) {
    const hash = createHash('sha256').update(b.data).digest('hex');
    let hits = cache.get(hash);
    if (hits === undefined) {
      const stripped = Buffer.from(b.data.toString('latin1').replace(/\\[nr]|\\u000[adAD]|\s+/g, ''), 'latin1');
      hits = forms.filter((f) => b.data.includes(f.needle) || (f.stripped && stripped.includes(f.needle))).map((f) => ({ key: f.key, form: f.form }));
      cache.set(hash, hits);
    }
    for (const h of hits) found.push({ where: b.where, ...h });
  }
  return found;
}
