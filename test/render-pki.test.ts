/**
 * What `render` reads of the PKI without the certificate libraries (src/pki/ca-signer.ts,
 * src/pki/crl-next-update.ts): the same nextUpdate as the full CRL parser, the same refusals for
 * a CRL that is not one, and a CA key that must be its certificate's.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleSigner, readSitePki } from '../src/deploy/site-pki.js';
import { pkiPaths } from '../src/paths.js';
import { crlNextUpdate } from '../src/pki/crl-next-update.js';
import { initPki, loadCa, parseCrl } from '../src/pki/index.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'od-render-pki-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const dirA = path.join(tmp, 'a');
const dirB = path.join(tmp, 'b');

beforeAll(async () => {
  await initPki(dirA, { keyBits: 2048, commonName: 'render-pki-a' });
  await initPki(dirB, { keyBits: 2048, commonName: 'render-pki-b' });
}, 60_000);

describe("render's PKI reads", () => {
  it('crlNextUpdate reads the nextUpdate the full parser reads, from a CRL the PKI signed', () => {
    const pem = readFileSync(pkiPaths(dirA).crl, 'utf8');
    const next = crlNextUpdate(pem);
    expect(next).toBeInstanceOf(Date);
    expect(next?.getTime()).toBe(parseCrl(pem).nextUpdate?.getTime());
    expect(next!.getTime()).toBeGreaterThan(Date.now());
  });

  it('crlNextUpdate refuses what is not a CRL: no PEM block, a certificate in CRL armour, trailing bytes', () => {
    expect(() => crlNextUpdate('hello\n')).toThrow(/no "X509 CRL" PEM block/);
    const certB64 = readFileSync(pkiPaths(dirA).caCert, 'utf8').replace(/-----[A-Z ]+-----|\s/g, '');
    expect(() => crlNextUpdate(`-----BEGIN X509 CRL-----\n${certB64}\n-----END X509 CRL-----\n`)).toThrow(/not a (CertificateList|TBSCertList)/);
    const crlB64 = readFileSync(pkiPaths(dirA).crl, 'utf8').replace(/-----[A-Z ]+-----|\s/g, '');
    const padded = Buffer.concat([Buffer.from(crlB64, 'base64'), Buffer.from([0, 0])]).toString('base64');
    expect(() => crlNextUpdate(`-----BEGIN X509 CRL-----\n${padded}\n-----END X509 CRL-----\n`)).toThrow(/not DER/);
  });

  it('readSitePki: a certificate where the CRL goes is bad input naming the file', async () => {
    const dir = path.join(tmp, 'bad-crl');
    await initPki(dir, { keyBits: 2048, commonName: 'bad-crl' });
    const cert = readFileSync(pkiPaths(dir).caCert, 'utf8').replace(/CERTIFICATE/g, 'X509 CRL');
    writeFileSync(pkiPaths(dir).crl, cert);
    await expect(readSitePki(dir)).rejects.toMatchObject({ problems: [{ file: pkiPaths(dir).crl, message: expect.stringMatching(/^not a CRL: /) as string }] });
  }, 60_000);

  it('bundleSigner: the same key and certificate as the full CA loader; a CA key that is not the certificate\'s is refused', async () => {
    const light = await bundleSigner(dirA);
    const full = await loadCa(dirA);
    expect(light.certPem).toBe(full.certPem);
    expect(light.key.export({ type: 'pkcs8', format: 'pem' })).toBe(full.key.export({ type: 'pkcs8', format: 'pem' }));
    const mixed = path.join(tmp, 'mixed');
    await initPki(mixed, { keyBits: 2048, commonName: 'mixed' });
    writeFileSync(pkiPaths(mixed).caKey, readFileSync(pkiPaths(dirB).caKey), { mode: 0o600 });
    await expect(bundleSigner(mixed)).rejects.toThrow(/is not the key of .*ca-cert|is not the key of/);
    await expect(bundleSigner(path.join(tmp, 'none'))).rejects.toThrow(/no CA in/);
  }, 60_000);
});
