/**
 * The PKI side of the certificate lifecycle: several CAs in one PKI directory (new CA, trust
 * bundle, a CRL for every trusted CA whoever writes the CRL, switching the issuer) and undoing a
 * failed renewal in the index. Chains and CRLs are checked with `openssl verify -crl_check`, the
 * same OpenSSL stunnel uses.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crlFacts, isIssuedBy } from '../src/certs/cert-facts.js';
import { pkiPaths, rolloverPaths } from '../src/paths.js';
import {
  createNextCa,
  initPki,
  issueCertificate,
  loadCa,
  nextCaCommonName,
  normalizeSerial,
  readBundle,
  readIndex,
  refreshCrl,
  reinstateCertificate,
  revokeCertificate,
  setTrustedCas,
  switchIssuer,
} from '../src/pki/index.js';
import { ZxRunner } from '../src/runner.js';

const runner = new ZxRunner();
let root: string;

/** `openssl verify` of a leaf against the PKI's bundle and CRL file, as stunnel would check it. */
async function verify(dir: string, certPath: string): Promise<{ ok: boolean; out: string }> {
  const p = pkiPaths(dir);
  const r = await runner.run(['openssl', 'verify', '-crl_check', '-CAfile', p.caBundle, '-CRLfile', p.crl, certPath], { allowFailure: true, mutates: false });
  return { ok: r.exitCode === 0, out: r.stdout + r.stderr };
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'od-certs-pki-'));
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('nextCaCommonName', () => {
  it('numbers successive CAs so each has its own subject', () => {
    expect(nextCaCommonName('ovn-deploy CA sandbox 1609')).toBe('sandbox 1609 #2');
    expect(nextCaCommonName('ovn-deploy CA sandbox 1609 #2')).toBe('sandbox 1609 #3');
    expect(nextCaCommonName('ovn-deploy CA site-a #9')).toBe('site-a #10');
  });
});

describe('CA rollover in the PKI directory', () => {
  let dir: string;
  let oldSerial: string;
  let newSerial: string;

  beforeAll(async () => {
    dir = path.join(root, 'rollover');
    await initPki(dir, { keyBits: 2048, commonName: 'test' });
    oldSerial = normalizeSerial((await loadCa(dir)).serial);
    await issueCertificate(dir, { name: 'w1', role: 'worker' });
    newSerial = await createNextCa(dir);
  });

  it('a new CA goes to the store with its own name and the same key size, and is neither trusted nor issuing yet', async () => {
    expect(newSerial).not.toBe(oldSerial);
    const stored = await loadCa(rolloverPaths(dir).caStore(newSerial));
    expect(stored.cert.subject.getField('CN').value).toBe('ovn-deploy CA test #2');
    expect(stored.key.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect((await fs.stat(pkiPaths(rolloverPaths(dir).caStore(newSerial)).caKey)).mode & 0o777).toBe(0o600);
    // The current CA was kept in the store as well, for when it is no longer current.
    expect(await fs.readFile(pkiPaths(rolloverPaths(dir).caStore(oldSerial)).caCert, 'utf8')).toBe(await fs.readFile(pkiPaths(dir).caCert, 'utf8'));
    expect((await readBundle(dir)).map((c) => c.serial)).toEqual([oldSerial]);
    expect(normalizeSerial((await loadCa(dir)).serial)).toBe(oldSerial);
  });

  it('trusting both CAs writes both into the bundle and a CRL for each into crl.pem', async () => {
    await setTrustedCas(dir, [newSerial, oldSerial]);
    expect((await readBundle(dir)).map((c) => c.serial)).toEqual([oldSerial, newSerial]);
    const crls = crlFacts(await fs.readFile(pkiPaths(dir).crl, 'utf8'));
    expect(crls.map((c) => c.issuerCommonName)).toEqual(['ovn-deploy CA test', 'ovn-deploy CA test #2']);
    const w1 = pkiPaths(dir).cert('w1');
    expect((await verify(dir, w1)).ok).toBe(true);
  });

  it('every writer of crl.pem (revoke, refresh) keeps a CRL for every trusted CA', async () => {
    await issueCertificate(dir, { name: 'gone', role: 'worker' });
    await revokeCertificate(dir, 'gone');
    let crls = crlFacts(await fs.readFile(pkiPaths(dir).crl, 'utf8'));
    expect(crls).toHaveLength(2);
    expect(crls[0]?.revokedSerials).toHaveLength(1);
    expect(crls[1]?.revokedSerials).toEqual([]);
    expect((await verify(dir, pkiPaths(dir).cert('gone'))).out).toMatch(/revoked/);
    await refreshCrl(dir);
    crls = crlFacts(await fs.readFile(pkiPaths(dir).crl, 'utf8'));
    expect(crls.map((c) => c.issuerCommonName)).toEqual(['ovn-deploy CA test', 'ovn-deploy CA test #2']);
    expect(crls[0]?.crlNumber).toBe(crls[1]?.crlNumber);
  });

  it('removing the current issuer from the bundle is refused', async () => {
    await expect(setTrustedCas(dir, [newSerial])).rejects.toThrow(/must trust the current issuer/);
    expect((await readBundle(dir)).map((c) => c.serial)).toEqual([oldSerial, newSerial]);
  });

  it('switching the issuer: new leaves come from the new CA, old leaves still verify while both are trusted', async () => {
    await switchIssuer(dir, newSerial);
    const ca = await loadCa(dir);
    expect(normalizeSerial(ca.serial)).toBe(newSerial);
    const issued = await issueCertificate(dir, { name: 'w2', role: 'worker' });
    const stored = await fs.readFile(pkiPaths(rolloverPaths(dir).caStore(newSerial)).caCert, 'utf8');
    expect(isIssuedBy(issued.certPem, stored)).toBe(true);
    expect((await readIndex(dir)).find((e) => e.name === 'w2')?.issuer.replace(/^0+/, '')).toBe(newSerial);
    // The CRL file now lists the new (current) CA first, and both leaves verify.
    expect(crlFacts(await fs.readFile(pkiPaths(dir).crl, 'utf8')).map((c) => c.issuerCommonName)).toEqual(['ovn-deploy CA test #2', 'ovn-deploy CA test']);
    expect((await verify(dir, pkiPaths(dir).cert('w1'))).ok).toBe(true);
    expect((await verify(dir, pkiPaths(dir).cert('w2'))).ok).toBe(true);
    // Idempotent: switching again changes nothing.
    await switchIssuer(dir, newSerial);
    expect(normalizeSerial((await loadCa(dir)).serial)).toBe(newSerial);
  });

  it('retiring the old CA: only the new CA and its CRL remain, and an old-CA leaf no longer verifies', async () => {
    await setTrustedCas(dir, [newSerial]);
    expect((await readBundle(dir)).map((c) => c.serial)).toEqual([newSerial]);
    expect(crlFacts(await fs.readFile(pkiPaths(dir).crl, 'utf8')).map((c) => c.issuerCommonName)).toEqual(['ovn-deploy CA test #2']);
    expect((await verify(dir, pkiPaths(dir).cert('w2'))).ok).toBe(true);
    const old = await verify(dir, pkiPaths(dir).cert('w1'));
    expect(old.ok).toBe(false);
    expect(old.out).toMatch(/unable to get local issuer certificate/);
  });
});

describe('reinstateCertificate (undoing a renewal whose rollout failed)', () => {
  it('makes the previous certificate current again and revokes the abandoned one in the index and the CRL', async () => {
    const dir = path.join(root, 'reinstate');
    await initPki(dir, { keyBits: 2048, commonName: 'test' });
    const first = await issueCertificate(dir, { name: 'central', role: 'central' });
    const second = await issueCertificate(dir, { name: 'central', role: 'central' });
    let index = await readIndex(dir);
    expect(index.map((e) => e.status)).toEqual(['superseded', 'valid']);
    await reinstateCertificate(dir, { name: 'central', previousSerial: first.serial, abandonedSerial: second.serial });
    index = await readIndex(dir);
    expect(index.find((e) => e.serial === first.serial)?.status).toBe('valid');
    const abandoned = index.find((e) => e.serial === second.serial);
    expect(abandoned?.status).toBe('revoked');
    expect(abandoned?.revocationReason).toBe('superseded');
    const crl = crlFacts(await fs.readFile(pkiPaths(dir).crl, 'utf8'));
    expect(crl[0]?.revokedSerials).toEqual([normalizeSerial(second.serial)]);
    await expect(reinstateCertificate(dir, { name: 'central', previousSerial: first.serial, abandonedSerial: 'abcdef' })).rejects.toThrow(/no certificate abcdef/);
  });
});
