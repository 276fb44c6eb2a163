/**
 * The native shortcuts of the signing path give exactly what node-forge gives: the certificate
 * PEM assembled around the signed TBSCertificate, the subjectKeyIdentifier hashed natively, the
 * CSR public key imported as PKCS#1 and the plain-PEM fast path of the CSR reader. Real keys,
 * real openssl.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fullForge from 'node-forge';
import { afterAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { InputError } from '../src/errors.js';
import { createCsr, keyIdOf, readVerifiedCsr, rsaPublicKeyDer } from '../src/pki/csr.js';
import { encodeTlv, readTlv } from '../src/pki/der.js';
import { signCertificatePem } from '../src/pki/native-sign.js';
import { buildLeafCertificate, randomSerial } from '../src/pki/templates.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pki-encoding-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const caPair = generateKeyPairSync('rsa', { modulusLength: 2048 });
const caKey = caPair.privateKey;
const caForgeCert = (() => {
  const c = fullForge.pki.createCertificate();
  c.publicKey = fullForge.pki.publicKeyFromPem(caPair.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  c.serialNumber = '01';
  c.validity.notBefore = new Date(Date.now() - 60_000);
  c.validity.notAfter = new Date(Date.now() + 86_400_000);
  c.setSubject([{ shortName: 'CN', value: 'encoding test CA' }]);
  c.setIssuer([{ shortName: 'CN', value: 'encoding test CA' }]);
  return c;
})();
const ca = { cert: caForgeCert, skiBytes: 'ca-key-identifier!!!' };

function leafPair(): { keyPem: string; spkiPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), spkiPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

function leaf(spkiPem: string, keyId?: string) {
  return buildLeafCertificate(fullForge.pki.publicKeyFromPem(spkiPem), ca, {
    serial: randomSerial(),
    notBefore: new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000),
    notAfter: new Date(Math.floor(Date.now() / 1000) * 1000 + 86_400_000),
    name: 'box1',
    role: 'central',
    sans: [{ type: 'dns', value: 'box1.example.org' }, { type: 'ip', value: '192.0.2.1' }],
    ...(keyId === undefined ? {} : { keyId }),
  });
}

describe('certificate PEM from the signed TBSCertificate', () => {
  it('is byte for byte what forge.pki.certificateToPem gives, and verifies against the CA key', async () => {
    const cert = leaf(leafPair().spkiPem);
    const pem = await signCertificatePem(cert, caKey);
    expect(pem).toBe(fullForge.pki.certificateToPem(cert));
    const x = new X509Certificate(pem);
    expect(x.verify(caPair.publicKey)).toBe(true);
    expect(x.subject).toContain('CN=box1');
  });

  it('openssl reads the PEM: algorithm, extensions', () => {
    const cert = leaf(leafPair().spkiPem);
    return signCertificatePem(cert, caKey).then((pem) => {
      const certFile = path.join(tmp, 'leaf.crt');
      writeFileSync(certFile, pem);
      const r = spawnSync('openssl', ['x509', '-in', certFile, '-noout', '-text'], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('Signature Algorithm: sha256WithRSAEncryption');
      expect(r.stdout).toContain('DNS:box1.example.org, IP Address:192.0.2.1');
    });
  });
});

describe('subjectKeyIdentifier computed natively', () => {
  it('equals the one forge computes from the key, as openssl reads it too', async () => {
    const { spkiPem } = leafPair();
    const rsaPub = rsaPublicKeyDer(createPublicKey(spkiPem).export({ type: 'spki', format: 'der' }));
    const forgeCert = leaf(spkiPem);
    const nativeCert = leaf(spkiPem, keyIdOf(rsaPub));
    const opensslSki = async (c: typeof forgeCert): Promise<string> => {
      const file = path.join(tmp, `ski-${Math.random().toString(36).slice(2)}.crt`);
      writeFileSync(file, await signCertificatePem(c, caKey));
      return spawnSync('openssl', ['x509', '-in', file, '-noout', '-ext', 'subjectKeyIdentifier'], { encoding: 'utf8' }).stdout;
    };
    const fromOpenssl = await opensslSki(nativeCert);
    expect(fromOpenssl).toBe(await opensslSki(forgeCert));
    const fromForge = (forgeCert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier: string }).subjectKeyIdentifier;
    expect(fromForge).toMatch(/^[0-9a-f]{40}$/);
    expect(Buffer.from(keyIdOf(rsaPub), 'binary').toString('hex')).toBe(fromForge);
    expect(fromOpenssl.replace(/[^0-9A-F]/g, '').slice(-40).toLowerCase()).toBe(fromForge);
  });
});

describe('CSR reader shortcuts', () => {
  const { keyPem } = leafPair();
  const csrPem = createCsr(keyPem, 'box7', ['box7.example.org']);

  it('reads a plain CSR natively with the same key, key size and identifier as forge', () => {
    const csr = readVerifiedCsr(csrPem, 'box7.csr');
    expect(csr.commonName).toBe('box7');
    expect(csr.keyBits).toBe(2048);
    const forgeCsr = fullForge.pki.certificationRequestFromPem(csrPem);
    expect(fullForge.pki.publicKeyToPem(csr.publicKey)).toBe(fullForge.pki.publicKeyToPem(forgeCsr.publicKey as fullForge.pki.PublicKey));
    const rsaPub = rsaPublicKeyDer(createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' }));
    expect(csr.keyId).toBe(fullForge.md.sha1.create().update(rsaPub.toString('binary')).digest().getBytes());
  });

  it('a CSR with LF, CRLF or NEW CERTIFICATE REQUEST armour reads the same, without the forge PEM reader', () => {
    // forge.pem.decode is the fallback: the shared forge object is the one the PKI uses.
    const decode = vi.spyOn(fullForge.pem, 'decode');
    onTestFinished(() => decode.mockRestore());
    const crlf = csrPem.replace(/\r?\n/g, '\r\n');
    const lf = csrPem.replace(/\r\n/g, '\n');
    const legacy = lf.replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST');
    for (const pem of [crlf, lf, legacy, `garbage before\n${lf}garbage after\n`]) {
      expect(readVerifiedCsr(pem, 'x.csr').keyId).toBe(readVerifiedCsr(csrPem, 'x.csr').keyId);
    }
    expect(decode).not.toHaveBeenCalled();
  });

  it('a CSR the fast path does not take (trailing blanks on its lines) goes through forge and still verifies', () => {
    const decode = vi.spyOn(fullForge.pem, 'decode');
    onTestFinished(() => decode.mockRestore());
    const spaced = csrPem.replace(/\r?\n/g, ' \n');
    expect(readVerifiedCsr(spaced, 'x.csr').commonName).toBe('box7');
    expect(decode).toHaveBeenCalledTimes(1);
  });

  it('a CSR whose signed bytes were changed is refused on either path', () => {
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    const outer = readTlv(der, 0);
    const cri = readTlv(der, outer.contentStart);
    const flipped = Buffer.from(der);
    const at = cri.end - 3; // inside the attributes, still well-formed DER
    flipped[at] = (flipped[at] ?? 0) ^ 0x01;
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${flipped.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(() => readVerifiedCsr(pem, 'bad.csr')).toThrow(InputError);
    expect(() => readVerifiedCsr(pem, 'bad.csr')).toThrow(/signature check failed/);
    expect(() => readVerifiedCsr(pem.replace(/\n/g, ' \n'), 'bad.csr')).toThrow(/signature check failed/);
  });

  it('an EC CSR is refused as not RSA', () => {
    const key = path.join(tmp, 'ec.key');
    spawnSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
    const r = spawnSync('openssl', ['req', '-new', '-key', key, '-subj', '/CN=ec1'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(() => readVerifiedCsr(r.stdout, 'ec.csr')).toThrow(/only RSA keys are supported/);
  });
});

describe('DER lengths', () => {
  it('short and long forms', () => {
    expect([...encodeTlv(0x04, Buffer.alloc(3))].slice(0, 2)).toEqual([0x04, 3]);
    expect([...encodeTlv(0x04, Buffer.alloc(127))].slice(0, 2)).toEqual([0x04, 127]);
    expect([...encodeTlv(0x04, Buffer.alloc(128))].slice(0, 3)).toEqual([0x04, 0x81, 128]);
    expect([...encodeTlv(0x30, Buffer.alloc(300))].slice(0, 4)).toEqual([0x30, 0x82, 0x01, 0x2c]);
    const big = encodeTlv(0x30, Buffer.alloc(70_000));
    expect(readTlv(big, 0).end).toBe(big.length);
  });

  it('a real openssl certificate, split into its parts and wrapped again, is the same bytes', () => {
    const key = path.join(tmp, 'self.key');
    const crt = path.join(tmp, 'self.crt');
    expect(spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-subj', '/CN=self', '-days', '1']).status).toBe(0);
    const der = new X509Certificate(readFileSync(crt)).raw;
    const outer = readTlv(der, 0);
    const parts: Buffer[] = [];
    for (let at = outer.contentStart; at < outer.end; ) {
      const t = readTlv(der, at);
      parts.push(der.subarray(t.start, t.end));
      at = t.end;
    }
    expect(encodeTlv(0x30, ...parts).equals(der)).toBe(true);
  });
});
