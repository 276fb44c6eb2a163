/**
 * The PKI library against the real openssl CLI: extensions, purposes (EKU), serials, key files,
 * CSRs, revocation/CRL and status. CA keys are 2048 bits for speed (one test checks the 3072 default).
 */
import { spawnSync } from 'node:child_process';
import fsSync, { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ExitError, InputError } from '../src/errors.js';
import { pkiPaths } from '../src/paths.js';
import {
  createCsr,
  generateKeyPair,
  initPki,
  issueCertificate,
  issueCertificates,
  pkiStatus,
  readCrlInfo,
  readIndex,
  refreshCrl,
  revokeCertificate,
  signCsr,
  signCsrs,
  type IssuedCertificate,
} from '../src/pki/index.js';
import { ZxRunner } from '../src/runner.js';

const runner = new ZxRunner();
const openssl = (...args: string[]) => runner.run(['openssl', ...args], { allowFailure: true });
const tag = Math.random().toString(36).slice(2, 8);
const DAY = 86_400_000;

let root: string;
let dir: string;
let central: IssuedCertificate;
let worker: IssuedCertificate;
let agent: IssuedCertificate;

async function verify(purpose: 'sslserver' | 'sslclient', cert: string, extra: string[] = []) {
  return openssl('verify', '-purpose', purpose, '-CAfile', pkiPaths(dir).caCert, ...extra, cert);
}

async function text(cert: string): Promise<string> {
  return (await runner.run(['openssl', 'x509', '-in', cert, '-noout', '-text'])).stdout;
}

async function modulusOfCert(cert: string): Promise<string> {
  return (await runner.run(['openssl', 'x509', '-in', cert, '-noout', '-modulus'])).stdout.trim();
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), `pki-test-${tag}-`));
  dir = path.join(root, 'pki');
  const r = await initPki(dir, { keyBits: 2048, commonName: `test-${tag}` });
  expect(r.created).toBe(true);
  [central, worker, agent] = await Promise.all([
    issueCertificate(dir, { name: `central-${tag}`, role: 'central', sans: ['127.0.0.1', 'central.example.org', '::1'] }),
    issueCertificate(dir, { name: `chassis-${tag}`, role: 'worker' }),
    issueCertificate(dir, { name: `meta-${tag}`, role: 'metadata-agent' }),
  ]);
}, 60_000);

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('CA', () => {
  it('is a critical CA:TRUE with keyCertSign+cRLSign, an SKI and a 10-year life', async () => {
    const t = await text(pkiPaths(dir).caCert);
    expect(t).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE/);
    expect(t).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(t).toMatch(/X509v3 Subject Key Identifier:\s+[0-9A-F:]{59}/);
    expect(t).toContain(`CN = ovn-deploy CA test-${tag}`);
    expect(t).toContain('Public-Key: (2048 bit)');
    expect(t).toContain('Signature Algorithm: sha256WithRSAEncryption');
    const dates = (await runner.run(['openssl', 'x509', '-in', pkiPaths(dir).caCert, '-noout', '-startdate', '-enddate'])).stdout;
    const nb = Date.parse(/notBefore=(.*)/.exec(dates)?.[1] ?? '');
    const na = Date.parse(/notAfter=(.*)/.exec(dates)?.[1] ?? '');
    expect(Math.round((na - nb) / DAY)).toBe(3650);
    // openssl accepts the self-signature (native crypto.sign put into a forge certificate)
    expect((await openssl('verify', '-CAfile', pkiPaths(dir).caCert, pkiPaths(dir).caCert)).exitCode).toBe(0);
  });

  it('writes the CA bundle, an empty index, a verifiable first CRL and a 0600 key', async () => {
    const p = pkiPaths(dir);
    expect(await fs.readFile(p.caBundle, 'utf8')).toBe(await fs.readFile(p.caCert, 'utf8'));
    expect(((await fs.stat(p.caKey)).mode & 0o777).toString(8)).toBe('600');
    const crl = await openssl('crl', '-CAfile', p.caCert, '-in', p.crl, '-noout');
    expect(crl.stderr + crl.stdout).toMatch(/verify OK/);
    expect(crl.exitCode).toBe(0);
  });

  it('keeps an existing CA (idempotent init)', async () => {
    const before = await fs.readFile(pkiPaths(dir).caCert, 'utf8');
    const r = await initPki(dir, { keyBits: 2048 });
    expect(r).toEqual({ created: false, caCertPath: pkiPaths(dir).caCert });
    expect(await fs.readFile(pkiPaths(dir).caCert, 'utf8')).toBe(before);
  });

  it('defaults to an RSA 3072 key', async () => {
    const d = path.join(root, 'default-ca');
    await initPki(d, { commonName: 'defaults' });
    expect(await text(pkiPaths(d).caCert)).toContain('Public-Key: (3072 bit)');
  });
});

describe('leaf certificates', () => {
  it('central: sslserver and sslclient, SANs with its own name, EKU, CA:FALSE, AKI', async () => {
    expect((await verify('sslserver', central.certPath)).exitCode).toBe(0);
    expect((await verify('sslclient', central.certPath)).exitCode).toBe(0);
    const t = await text(central.certPath);
    expect(t).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(t).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(t).toMatch(/X509v3 Extended Key Usage:\s*\n\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(t).toContain(`DNS:central-${tag}`);
    expect(t).toContain('DNS:central.example.org');
    expect(t).toContain('IP Address:127.0.0.1');
    expect(t).toContain('IP Address:0:0:0:0:0:0:0:1');
    const caSki = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(await text(pkiPaths(dir).caCert))?.[1];
    expect(caSki).toBeDefined();
    expect(t).toMatch(new RegExp(`Authority Key Identifier:\\s+(keyid:)?${caSki}`));
    expect(t).toMatch(/Subject Key Identifier:\s+[0-9A-F:]{59}/);
    expect(t).toContain('Public-Key: (2048 bit)');
  });

  it('worker: client only — sslclient ok, sslserver FAILS (the EKU is enforced)', async () => {
    expect((await verify('sslclient', worker.certPath)).exitCode).toBe(0);
    const server = await verify('sslserver', worker.certPath);
    expect(server.exitCode).not.toBe(0);
    expect(server.stdout + server.stderr).toMatch(/unsuitable certificate purpose/);
    const t = await text(worker.certPath);
    expect(t).toContain(`CN = chassis-${tag}`);
    expect(t).toMatch(/X509v3 Extended Key Usage:\s*\n\s+TLS Web Client Authentication\n/);
  });

  it('metadata-agent: client certificate', async () => {
    expect((await verify('sslclient', agent.certPath)).exitCode).toBe(0);
    expect((await verify('sslserver', agent.certPath)).exitCode).not.toBe(0);
  });

  it('leaf lifetime is 730 days by default and the index records it', async () => {
    const entries = await readIndex(dir);
    const e = entries.find((x) => x.serial === central.serial);
    expect(e).toMatchObject({ name: `central-${tag}`, role: 'central', host: `central-${tag}`, status: 'valid' });
    const days = (Date.parse(e?.notAfter ?? '') - Date.parse(e?.notBefore ?? '')) / DAY;
    expect(Math.round(days)).toBe(730);
    const endDate = (await runner.run(['openssl', 'x509', '-in', central.certPath, '-noout', '-enddate'])).stdout;
    expect(Date.parse(endDate.replace('notAfter=', '').trim())).toBe(central.notAfter.getTime());
  });

  it('key files are 0600 in private/, certificates 0644, and the key matches the certificate', async () => {
    const keyPath = worker.keyPath ?? '';
    expect(keyPath).toBe(pkiPaths(dir).key(`chassis-${tag}`));
    expect(((await fs.stat(keyPath)).mode & 0o777).toString(8)).toBe('600');
    expect(((await fs.stat(worker.certPath)).mode & 0o777).toString(8)).toBe('644');
    const keyMod = (await runner.run(['openssl', 'rsa', '-in', keyPath, '-noout', '-modulus'])).stdout.trim();
    expect(keyMod).toBe(await modulusOfCert(worker.certPath));
  });

  it('re-issue makes a fresh key and supersedes the previous certificate', async () => {
    const name = `renew-${tag}`;
    const first = await issueCertificate(dir, { name, role: 'worker' });
    const firstMod = await modulusOfCert(first.certPath);
    const second = await issueCertificate(dir, { name, role: 'worker' });
    expect(await modulusOfCert(second.certPath)).not.toBe(firstMod);
    expect(second.serial).not.toBe(first.serial);
    const entries = (await readIndex(dir)).filter((e) => e.name === name);
    expect(entries.map((e) => [e.serial, e.status])).toEqual([
      [first.serial, 'superseded'],
      [second.serial, 'valid'],
    ]);
  });

  it('serials are positive 128-bit random numbers, unique over many issues, as openssl prints them', async () => {
    const { privateKeyPem } = await generateKeyPair(2048);
    const csr = createCsr(privateKeyPem, `serials-${tag}`);
    const issued: IssuedCertificate[] = [];
    for (let i = 0; i < 150; i++) issued.push(await signCsr(dir, csr, { role: 'worker', name: `serial-${tag}-${i}` }));
    const serials = issued.map((c) => c.serial);
    expect(new Set(serials).size).toBe(serials.length);
    for (const s of serials) {
      expect(s).toMatch(/^[0-9a-f]{32}$/);
      const first = parseInt(s.slice(0, 2), 16);
      expect(first).toBeLessThan(0x80);
      expect(first).toBeGreaterThan(0);
    }
    // Random, not sequential: the first bytes spread over the range.
    expect(new Set(serials.map((s) => s[0])).size).toBeGreaterThan(4);
    const last = issued[issued.length - 1];
    const printed = (await runner.run(['openssl', 'x509', '-in', last?.certPath ?? '', '-noout', '-serial'])).stdout.trim();
    expect(printed).toBe(`serial=${last?.serial.toUpperCase()}`);
  });

  it('serialises concurrent in-process issues: no index entry is lost', async () => {
    const { privateKeyPem } = await generateKeyPair(2048);
    const csr = createCsr(privateKeyPem, `par-${tag}`);
    const before = (await readIndex(dir)).length;
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => signCsr(dir, csr, { role: 'worker', name: `par-${tag}-${i}` })));
    const entries = await readIndex(dir);
    expect(entries.length).toBe(before + 12);
    for (const r of results) expect(entries.some((e) => e.serial === r.serial)).toBe(true);
  });
});

describe('batched commits', () => {
  it('concurrent issues of one name land in order: the file on disk is the one the index calls valid', async () => {
    const { privateKeyPem } = await generateKeyPair(2048);
    const csr = createCsr(privateKeyPem, `same-${tag}`);
    const name = `same-${tag}`;
    const results = await Promise.all(Array.from({ length: 5 }, () => signCsr(dir, csr, { role: 'worker', name })));
    const entries = (await readIndex(dir)).filter((e) => e.name === name);
    expect(entries.map((e) => e.serial)).toEqual(results.map((r) => r.serial));
    expect(entries.filter((e) => e.status === 'valid').map((e) => e.serial)).toEqual([results[4]?.serial]);
    const onDisk = (await runner.run(['openssl', 'x509', '-in', pkiPaths(dir).cert(name), '-noout', '-serial'])).stdout.trim();
    expect(onDisk).toBe(`serial=${results[4]?.serial.toUpperCase()}`);
  });

  it('a bad request among concurrent ones fails alone', async () => {
    const { privateKeyPem } = await generateKeyPair(2048);
    const csr = createCsr(privateKeyPem, `batch-${tag}`);
    const settled = await Promise.allSettled([
      signCsr(dir, csr, { role: 'worker', name: `batch-a-${tag}` }),
      // notBefore after notAfter: rejected when the batch is prepared
      issueCertificate(dir, { name: `batch-b-${tag}`, role: 'worker', notBefore: new Date(Date.now() + 800 * DAY) }),
      signCsr(dir, csr, { role: 'worker', name: `batch-c-${tag}` }),
    ]);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const names = (await readIndex(dir)).map((e) => e.name);
    expect(names).toContain(`batch-a-${tag}`);
    expect(names).toContain(`batch-c-${tag}`);
    expect(names).not.toContain(`batch-b-${tag}`);
  });
});

describe('input errors', () => {
  it('an uninitialised directory gives exit 2 and the init command to run', async () => {
    const empty = path.join(root, 'empty');
    const e = await issueCertificate(empty, { name: 'x', role: 'worker' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ExitError);
    expect((e as ExitError).exitCode).toBe(2);
    expect((e as ExitError).message).toBe(`no CA in ${empty}: run \`ovn-deploy pki init --dir ${empty}\``);
  });

  it('rejects unsafe names, bad SANs and bad numbers, all at once', async () => {
    const e = await issueCertificate(dir, { name: '../etc/x', role: 'worker', sans: ['ok.example', 'not a name', '300.1.1.1'], validityDays: 0 }).catch(
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(InputError);
    const paths = (e as InputError).problems.map((p) => p.path).sort();
    expect(paths).toEqual(['name', 'sans[1]', 'sans[2]', 'validityDays']);
    await expect(fs.stat(path.join(dir, 'certs', '..', 'etc'))).rejects.toThrow();
  });
});

describe('CSRs', () => {
  it('signs an `openssl req` CSR: the host keeps its key, only the certificate is written', async () => {
    const name = `csrhost-${tag}`;
    const key = path.join(root, `${name}.key`);
    const csrFile = path.join(root, `${name}.csr`);
    await runner.run(['openssl', 'genrsa', '-out', key, '2048']);
    await runner.run(['openssl', 'req', '-new', '-key', key, '-subj', `/O=Elsewhere/CN=${name}`, '-out', csrFile]);
    const c = await signCsr(dir, await fs.readFile(csrFile, 'utf8'), { role: 'central', sans: ['10.1.2.3'], file: csrFile });
    expect(c.name).toBe(name);
    expect(c.keyPath).toBeUndefined();
    await expect(fs.stat(pkiPaths(dir).key(name))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await verify('sslserver', c.certPath)).exitCode).toBe(0);
    const keyMod = (await runner.run(['openssl', 'rsa', '-in', key, '-noout', '-modulus'])).stdout.trim();
    expect(await modulusOfCert(c.certPath)).toBe(keyMod);
    const t = await text(c.certPath);
    expect(t).toContain(`DNS:${name}`);
    expect(t).toContain('IP Address:10.1.2.3');
    // Our policy sets the subject; the requested O is not copied.
    expect(t).toContain(`Subject: O = ovn-deploy, OU = central, CN = ${name}`);
  });

  it('a CSR for a name whose key this PKI keeps is refused, and the key stays (it is never deleted)', async () => {
    const name = `moved-${tag}`;
    const first = await issueCertificate(dir, { name, role: 'worker' });
    expect(first.keyPath).toBeDefined();
    const key = await fs.readFile(first.keyPath ?? '');
    const { privateKeyPem } = await generateKeyPair(2048);
    await expect(signCsr(dir, createCsr(privateKeyPem, name), { role: 'worker' })).rejects.toThrow(/key is kept in this PKI/);
    expect(await fs.readFile(first.keyPath ?? '')).toEqual(key);
  });

  it('signCsrs signs a batch under one lock with one index write; every certificate is in the index', async () => {
    const names = Array.from({ length: 5 }, (_, i) => `batch${i}-${tag}`);
    const csrs = await Promise.all(names.map(async (n) => createCsr((await generateKeyPair(2048)).privateKeyPem, n)));
    const index = path.resolve(pkiPaths(dir).index);
    const rename = vi.spyOn(fsSync, 'renameSync');
    let signed: IssuedCertificate[];
    try {
      signed = await signCsrs(dir, csrs.map((csrPem) => ({ csrPem, opts: { role: 'worker' } })));
      expect(rename.mock.calls.filter((c) => c[1] === index)).toHaveLength(1);
      // The index is renamed before any certificate: no certificate file the index does not list.
      expect(String(rename.mock.calls[0]?.[1])).toBe(index);
    } finally {
      rename.mockRestore();
    }
    expect(signed.map((c) => c.name)).toEqual(names);
    const entries = await readIndex(dir);
    for (const c of signed) {
      expect(entries.filter((e) => e.serial === c.serial && e.name === c.name && e.status === 'valid')).toHaveLength(1);
      expect((await verify('sslclient', c.certPath)).exitCode).toBe(0);
    }
    // One bad request: nothing of the batch is signed.
    const before = entries.length;
    await expect(signCsrs(dir, [{ csrPem: csrs[0] ?? '', opts: { role: 'worker' } }, { csrPem: 'junk', opts: { role: 'worker', file: 'junk.csr' } }])).rejects.toThrow(/junk\.csr/);
    expect((await readIndex(dir)).length).toBe(before);
  });

  it('issueCertificates makes fresh keys in parallel and writes the index once', async () => {
    const names = [`ib0-${tag}`, `ib1-${tag}`, `ib2-${tag}`];
    const index = path.resolve(pkiPaths(dir).index);
    const rename = vi.spyOn(fsSync, 'renameSync');
    let issued: IssuedCertificate[];
    try {
      issued = await issueCertificates(dir, names.map((name) => ({ name, role: 'worker' as const })));
      expect(rename.mock.calls.filter((c) => c[1] === index)).toHaveLength(1);
    } finally {
      rename.mockRestore();
    }
    const entries = await readIndex(dir);
    for (const c of issued) {
      expect(entries.some((e) => e.serial === c.serial && e.status === 'valid')).toBe(true);
      const keyMod = (await runner.run(['openssl', 'rsa', '-in', c.keyPath ?? '', '-noout', '-modulus'])).stdout.trim();
      expect(await modulusOfCert(c.certPath)).toBe(keyMod);
    }
    await expect(issueCertificates(dir, [{ name: names[0] ?? '', role: 'worker' }, { name: names[0] ?? '', role: 'worker' }])).rejects.toThrow(/requested twice/);
  });

  it('rejects a tampered CSR with exit 2 naming the CSR file', async () => {
    const key = path.join(root, 'tamper.key');
    const csrFile = path.join(root, 'tamper.csr');
    await runner.run(['openssl', 'genrsa', '-out', key, '2048']);
    await runner.run(['openssl', 'req', '-new', '-key', key, '-subj', `/CN=honest-${tag}`, '-out', csrFile]);
    const pem = await fs.readFile(csrFile, 'utf8');
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const at = der.indexOf(Buffer.from(`honest-${tag}`));
    expect(at).toBeGreaterThan(0);
    der.write('evil', at, 'latin1'); // same length: still parses, signature no longer matches
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    const e = await signCsr(dir, tampered, { role: 'worker', file: csrFile }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).exitCode).toBe(2);
    expect((e as InputError).message).toContain(csrFile);
    expect((e as InputError).message).toMatch(/signature check failed/);
    expect((await readIndex(dir)).some((x) => x.name.startsWith('evil'))).toBe(false);
  });

  it('createCsr makes a CSR openssl verifies, with the SANs requested', async () => {
    const { privateKeyPem } = await generateKeyPair(2048);
    const pem = createCsr(privateKeyPem, `made-${tag}`, ['made.example.org', '192.0.2.7']);
    const file = path.join(root, 'made.csr');
    await fs.writeFile(file, pem);
    const r = await runner.run(['openssl', 'req', '-in', file, '-noout', '-verify', '-text']);
    expect(r.stdout + r.stderr).toMatch(/verify OK/i);
    expect(r.stdout).toContain('DNS:made.example.org');
    expect(r.stdout).toContain('IP Address:192.0.2.7');
    expect(r.stdout).toContain(`CN = made-${tag}`);
  });

  it('rejects a private key passed as a CSR without echoing it', async () => {
    const { privateKeyPem } = await generateKeyPair(2048);
    const e = await signCsr(dir, privateKeyPem, { role: 'worker', file: 'oops.pem' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).message).toContain('oops.pem');
    expect((e as InputError).message).not.toContain('PRIVATE KEY');
    expect((e as InputError).message).not.toContain(privateKeyPem.split('\n')[1] ?? 'x');
  });
});

describe('revocation and CRL', () => {
  it('revoke lists the serial in a verifiable CRL; openssl -crl_check rejects it, others still verify', async () => {
    const victim = await issueCertificate(dir, { name: `victim-${tag}`, role: 'worker' });
    const p = pkiPaths(dir);
    const before = (await readCrlInfo(dir))?.crlNumber ?? 0n;
    const revoked = await revokeCertificate(dir, `victim-${tag}`, { reason: 'keyCompromise' });
    expect(revoked.map((e) => e.serial)).toEqual([victim.serial]);
    const after = await readCrlInfo(dir);
    expect(after?.crlNumber).toBe(before + 1n);

    const crlText = await openssl('crl', '-CAfile', p.caCert, '-in', p.crl, '-noout', '-text');
    expect(crlText.exitCode).toBe(0);
    expect(crlText.stdout + crlText.stderr).toMatch(/verify OK/);
    expect(crlText.stdout).toContain(`Serial Number: ${victim.serial.toUpperCase()}`);
    expect(crlText.stdout).toContain('Key Compromise');
    expect(crlText.stdout).toMatch(/X509v3 CRL Number:\s+\d+/);

    const rejected = await verify('sslclient', victim.certPath, ['-crl_check', '-CRLfile', p.crl]);
    expect(rejected.exitCode).not.toBe(0);
    expect(rejected.stdout + rejected.stderr).toMatch(/certificate revoked/);
    expect((await verify('sslclient', worker.certPath, ['-crl_check', '-CRLfile', p.crl])).exitCode).toBe(0);
    expect((await verify('sslserver', central.certPath, ['-crl_check', '-CRLfile', p.crl])).exitCode).toBe(0);

    const entry = (await readIndex(dir)).find((e) => e.serial === victim.serial);
    expect(entry).toMatchObject({ status: 'revoked', revocationReason: 'keyCompromise' });
    expect(entry?.revokedAt).toMatch(/^\d{4}-/);
    // Revoking again changes nothing but still re-signs the CRL.
    expect(await revokeCertificate(dir, `victim-${tag}`)).toEqual([]);
    await expect(revokeCertificate(dir, `never-issued-${tag}`)).rejects.toBeInstanceOf(InputError);
  });

  it('revoking a name also revokes its superseded certificates', async () => {
    const name = `twice-${tag}`;
    const a = await issueCertificate(dir, { name, role: 'worker' });
    const b = await issueCertificate(dir, { name, role: 'worker' });
    const revoked = await revokeCertificate(dir, name);
    expect(revoked.map((e) => e.serial).sort()).toEqual([a.serial, b.serial].sort());
    expect((await readCrlInfo(dir))?.revokedSerials).toEqual(expect.arrayContaining([a.serial, b.serial]));
  });

  it('init rebuilds a lost CRL from the index, keeping revocations', async () => {
    const revoked = (await readIndex(dir)).filter((e) => e.status === 'revoked').map((e) => e.serial);
    expect(revoked.length).toBeGreaterThan(0);
    await fs.rm(pkiPaths(dir).crl);
    expect((await initPki(dir)).created).toBe(false);
    expect((await readCrlInfo(dir))?.revokedSerials.sort()).toEqual(revoked.sort());
  });

  it('refreshCrl re-signs with a new nextUpdate and a higher number', async () => {
    const now = new Date();
    const before = await readCrlInfo(dir);
    await refreshCrl(dir, { now, nextUpdateDays: 10 });
    const after = await readCrlInfo(dir);
    expect(after?.crlNumber).toBe((before?.crlNumber ?? 0n) + 1n);
    expect(after?.revokedSerials.sort()).toEqual(before?.revokedSerials.sort());
    expect(Math.round(((after?.nextUpdate?.getTime() ?? 0) - now.getTime()) / DAY)).toBe(10);
    const p = pkiPaths(dir);
    expect((await openssl('crl', '-CAfile', p.caCert, '-in', p.crl, '-noout')).exitCode).toBe(0);
  });
});

describe('status', () => {
  it('marks a certificate in its last third as due, with a warning; a fresh one is not due', async () => {
    const d = path.join(root, 'status');
    await initPki(d, { keyBits: 2048, commonName: 'status' });
    const now = new Date();
    // Issued 2 days ago for 3 days: 1 day left, inside the last third.
    const soon = await issueCertificate(d, { name: `soon-${tag}`, role: 'worker', validityDays: 3, now: new Date(now.getTime() - 2 * DAY) });
    const gone = await issueCertificate(d, { name: `gone-${tag}`, role: 'worker', validityDays: 1, now: new Date(now.getTime() - 3 * DAY) });
    await issueCertificate(d, { name: `fresh-${tag}`, role: 'central', now });
    const report = await pkiStatus(d, { now });
    const row = (name: string) => report.rows.find((r) => r.name === name);
    expect(report.rows[0]).toMatchObject({ role: 'ca', due: false, status: 'valid' });
    expect(row(`soon-${tag}`)).toMatchObject({ serial: soon.serial, status: 'valid', due: true, daysLeft: 0 });
    expect(row(`gone-${tag}`)).toMatchObject({ serial: gone.serial, status: 'expired', due: true });
    expect(row(`fresh-${tag}`)).toMatchObject({ status: 'valid', due: false, daysLeft: 729 });
    expect(report.warnings.some((w) => w.includes(`soon-${tag}`) && w.includes('expires in'))).toBe(true);
    expect(report.warnings.some((w) => w.includes(`gone-${tag}`) && w.includes('expired'))).toBe(true);
    expect(report.warnings.some((w) => w.includes(`fresh-${tag}`))).toBe(false);
    expect(report.crl).toMatchObject({ daysLeft: 29, revoked: 0 });
    expect(report.warnings.some((w) => /CRL/.test(w))).toBe(false);
    // A window of 1000 days makes everything due.
    const wide = await pkiStatus(d, { now, renewalWindowDays: 1000 });
    expect(wide.rows.find((r) => r.name === `fresh-${tag}`)?.due).toBe(true);
  });

  it('warns about a CRL close to, or past, its next update', async () => {
    const d = path.join(root, 'status');
    const now = new Date();
    await refreshCrl(d, { now, nextUpdateDays: 3 });
    expect((await pkiStatus(d, { now })).warnings.some((w) => /CRL's next update is due in 2 day/.test(w))).toBe(true);
    const later = new Date(now.getTime() + 4 * DAY);
    expect((await pkiStatus(d, { now: later })).warnings.some((w) => /CRL is stale/.test(w))).toBe(true);
    await refreshCrl(d, { now, nextUpdateDays: 30 });
    expect((await pkiStatus(d, { now })).warnings.some((w) => /CRL/.test(w))).toBe(false);
  });
});

describe('locking', () => {
  it('takes over a stale lock file and removes its own', async () => {
    const lock = pkiPaths(dir).lock;
    await fs.writeFile(lock, '999999\n');
    const old = new Date(Date.now() - 60_000);
    await fs.utimes(lock, old, old);
    await refreshCrl(dir);
    await expect(fs.stat(lock)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('takes over at once a fresh lock whose holder (pid, start time, our pid namespace) is dead', async () => {
    const lock = pkiPaths(dir).lock;
    const child = spawnSync('true');
    const ns = fsSync.readlinkSync('/proc/self/ns/pid');
    await fs.writeFile(lock, `${child.pid} 1 ${ns}\n`); // exited: no such process any more
    const started = Date.now();
    await refreshCrl(dir);
    // Well under the 30 s after which any lock counts as stale.
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(fs.stat(lock)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.each([
    ['a holder in the old format (pid only)', () => '999999\n'],
    ['a holder named in another pid namespace (not ours to judge)', () => `${spawnSync('true').pid} 1 pid:[4026531836000]\n`],
  ])('waits while another process holds the lock: %s', async (_label, content) => {
    const lock = pkiPaths(dir).lock;
    await fs.writeFile(lock, content());
    let done = false;
    const pending = refreshCrl(dir).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(done).toBe(false);
    await fs.rm(lock);
    await pending;
    expect(done).toBe(true);
  });
});
