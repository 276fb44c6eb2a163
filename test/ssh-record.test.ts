/**
 * The key scanner of the site test (test/helpers/ssh-record.ts) on real archives made by tar and
 * gzip: a key re-encoded (PKCS#1 instead of the PKCS#8 we hold), re-wrapped, or raw DER inside a
 * tar.gz inside a tar is found; other bytes are not.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { keyForms, scanForKeys, unpack } from './helpers/ssh-record.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'ssh-record-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const forms = keyForms('host1', pkcs8);

/** dir/inner.tar.gz holding `name` = content, wrapped in outer.tar; returns the outer tar's bytes. */
function nested(name: string, content: Buffer | string): Buffer {
  const d = mkdtempSync(path.join(tmp, 'n-'));
  mkdirSync(path.join(d, 'in'));
  writeFileSync(path.join(d, 'in', name), content);
  execFileSync('tar', ['-czf', path.join(d, 'inner.tar.gz'), '-C', path.join(d, 'in'), name]);
  execFileSync('tar', ['-cf', path.join(d, 'outer.tar'), '-C', d, 'inner.tar.gz']);
  return readFileSync(path.join(d, 'outer.tar'));
}

describe('ssh record key scan', () => {
  it('finds the key as PKCS#1 PEM wrapped at 76 columns inside a tar.gz inside a tar', () => {
    const der = createPrivateKey(pkcs8).export({ type: 'pkcs1', format: 'der' });
    const rewrapped = `-----BEGIN RSA PRIVATE KEY-----\n${der.toString('base64').replace(/(.{76})/g, '$1\n')}\n-----END RSA PRIVATE KEY-----\n`;
    const hits = scanForKeys(unpack('call.stdin', nested('k.pem', rewrapped)), forms);
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((h) => h.where === 'call.stdin!inner.tar.gz!gunzip' && h.form.startsWith('base64 of DER'))).toBe(true);
  });

  it('finds raw DER and the PEM body in a gzip stream', () => {
    const der = createPrivateKey(pkcs8).export({ type: 'pkcs8', format: 'der' });
    const hits = scanForKeys(unpack('x', nested('k.der', der)), forms);
    expect(hits.map((h) => h.form)).toContain('DER');
    const pemHits = scanForKeys(unpack('y', Buffer.from(`prefix ${pkcs8.replace(/\n/g, ' ')}`)), forms);
    expect(pemHits.map((h) => h.form)).toContain('base64 body');
  });

  it('finds the key inside JSON (escaped line breaks), as a tool would print it', () => {
    const hits = scanForKeys(unpack('report', Buffer.from(JSON.stringify({ host: 'h', key: pkcs8 }))), forms);
    expect(hits.map((h) => h.form)).toContain('base64 body');
  });

  it('finds nothing in another key, a certificate-like blob or plain text', () => {
    expect(scanForKeys(unpack('z', nested('other.pem', other)), forms)).toEqual([]);
    expect(scanForKeys(unpack('t', Buffer.from('nothing to see\n'.repeat(1000))), forms)).toEqual([]);
  });
});
