/**
 * Certificate renewal on a host (recorded service manager, mocked ovs-vsctl/systemctl, real files
 * under --root): inside the renewal window apply makes a NEXT key and a CSR for it while the
 * current key and certificate keep serving; `--certificate` for that key installs it, moves the
 * key into place and reloads (never restarts) the TLS daemons.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runApply } from '../src/apply/index.js';
import { planApply, type Observed } from '../src/apply/plan.js';
import type { BundleManifestInput } from '../src/bundle/manifest.js';
import { manifestSchema } from '../src/bundle/manifest.js';
import { InputError } from '../src/errors.js';
import { hostPaths, pkiPaths } from '../src/paths.js';
import { createCsr, initPki, signCsr } from '../src/pki/index.js';
import { fixtureTrust, FixtureRunner, oneBoxManifest, RecordedServices, writeBundle } from './helpers/apply-fixture.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'apply-renewal-test-'));
let pkiDir: string;
let caPem: string;
let crlPem: string;

beforeAll(async () => {
  pkiDir = path.join(tmp, 'pki');
  await initPki(pkiDir, { keyBits: 2048, commonName: 'apply-renewal-test' });
  caPem = readFileSync(pkiPaths(pkiDir).caBundle, 'utf8');
  crlPem = readFileSync(pkiPaths(pkiDir).crl, 'utf8');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let seq = 0;
/** One host: its root, its bundle, and one runner (it holds the host's mocked OVS state). */
function fresh(windowDays: number): { root: string; bundle: string; runner: FixtureRunner } {
  const d = path.join(tmp, `case${++seq}`);
  const c = { root: path.join(d, 'root'), bundle: path.join(d, 'bundle'), runner: new FixtureRunner() };
  const { manifest, files } = oneBoxManifest('box1', caPem, crlPem);
  (manifest.certificate as { renewalWindowDays?: number }).renewalWindowDays = windowDays;
  writeBundle(c.bundle, manifest, files, c.root);
  return c;
}

const apply = (c: { root: string; bundle: string; runner: FixtureRunner }, services: RecordedServices, more: Partial<Parameters<typeof runApply>[0]> = {}) =>
  runApply({ trustCa: fixtureTrust(), bundleDir: c.bundle, root: c.root, runner: c.runner, services, skipPackages: true, healthTimeoutMs: 1_000, ...more });

const sign = async (csr: string, validityDays: number): Promise<string> =>
  (await signCsr(pkiDir, csr, { role: 'central', name: 'box1', sans: ['box1', '192.0.2.10'], validityDays })).certPem;

const spkiOfKey = (pem: string): string => createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'pem' }).toString();
const spkiOfCsr = (pem: string): string => {
  const k = forge.pki.certificationRequestFromPem(pem).publicKey;
  return createPublicKey(forge.pki.publicKeyToPem(k as forge.pki.rsa.PublicKey)).export({ type: 'spki', format: 'pem' }).toString();
};
const serialOf = (pem: string): string => new X509Certificate(pem).serialNumber;

/** A converged one-box host whose certificate is valid for `validityDays`. */
async function convergedHost(windowDays: number, validityDays: number) {
  const c = fresh(windowDays);
  const services = new RecordedServices();
  const first = await apply(c, services);
  expect(first.exitCode).toBe(3);
  const cert = await sign(first.report.csr ?? '', validityDays);
  const ok = await apply(c, services, { certificate: { pem: cert, from: 'box1.pem' } });
  // Installing a certificate never asks for the next one in the same run.
  expect(ok.report.status).toBe('converged');
  services.calls.length = 0;
  return { c, services, hp: hostPaths(c.root), cert };
}

describe('apply: certificate renewal (recorded service manager, mocked ovs-vsctl)', () => {
  it('outside the renewal window nothing is requested; inside it a NEXT key (0600) and its CSR, exit 3, while the current key and certificate stay and nothing is reloaded', async () => {
    const outside = await convergedHost(5, 10);
    const quiet = await apply(outside.c, outside.services);
    expect(quiet.exitCode).toBe(0);
    expect(quiet.report.changes).toEqual([]);
    expect(existsSync(outside.hp.pki.keyNext)).toBe(false);

    const { c, services, hp, cert } = await convergedHost(30, 10);
    const keyBefore = readFileSync(hp.pki.key, 'utf8');
    const out = await apply(c, services);
    expect(out.exitCode).toBe(3);
    expect(out.report.status).toBe('needs-certificate');
    expect(out.report.changes).toEqual([
      { kind: 'certificate', target: hostPaths().pki.keyNext, action: 'generate-key' },
      { kind: 'certificate', target: hostPaths().pki.csr, action: 'create-csr' },
      { kind: 'certificate', target: hostPaths().pki.cert, action: 'renewal-requested' },
    ]);
    expect(statSync(hp.pki.keyNext).mode & 0o777).toBe(0o600);
    const next = readFileSync(hp.pki.keyNext, 'utf8');
    // The CSR is for the NEW key, not for the one that serves.
    expect(spkiOfCsr(out.report.csr ?? '')).toBe(spkiOfKey(next));
    expect(spkiOfKey(next)).not.toBe(spkiOfKey(keyBefore));
    expect(out.report.signCommand).toContain('pki sign-csr');
    // Still serving: key and certificate untouched, no stop, reload or restart of anything.
    expect(readFileSync(hp.pki.key, 'utf8')).toBe(keyBefore);
    expect(readFileSync(hp.pki.cert, 'utf8')).toBe(cert);
    expect(services.calls).toEqual([]);
    // The rest of apply still ran: its health checks are in the report.
    expect(out.report.health.length).toBeGreaterThan(0);
  });

  it('no renewal loop when the certificate already ends with its CA (a new one could not live longer); --renew-certificate still renews', async () => {
    const shortCaDir = path.join(tmp, 'pki-short-ca');
    await initPki(shortCaDir, { keyBits: 2048, commonName: 'short-ca', validityDays: 20 });
    const c = fresh(30);
    const { manifest, files } = oneBoxManifest('box1', readFileSync(pkiPaths(shortCaDir).caBundle, 'utf8'), readFileSync(pkiPaths(shortCaDir).crl, 'utf8'));
    (manifest.certificate as { renewalWindowDays?: number }).renewalWindowDays = 30;
    writeBundle(c.bundle, manifest, files, c.root);
    const services = new RecordedServices();
    const first = await apply(c, services);
    // Asked for 365 days, capped at the CA's 20: inside the 30-day window.
    const cert = (await signCsr(shortCaDir, first.report.csr ?? '', { role: 'central', name: 'box1', sans: ['box1', '192.0.2.10'], validityDays: 365 })).certPem;
    expect(Date.parse(new X509Certificate(cert).validTo) - Date.now()).toBeLessThan(30 * 86_400_000);
    expect((await apply(c, services, { certificate: { pem: cert, from: 'box1.pem' } })).exitCode).toBe(0);
    const again = await apply(c, services);
    expect(again.exitCode).toBe(0);
    expect(again.report.changes).toEqual([]);
    expect((await apply(c, services, { renewCertificate: true })).exitCode).toBe(3);
  });

  it('a repeated apply reuses the pending key and CSR (no new key)', async () => {
    const { c, services, hp } = await convergedHost(30, 10);
    const first = await apply(c, services);
    const next = readFileSync(hp.pki.keyNext, 'utf8');
    const again = await apply(c, services);
    expect(again.exitCode).toBe(3);
    expect(again.report.changes).toEqual([{ kind: 'certificate', target: hostPaths().pki.cert, action: 'renewal-requested' }]);
    expect(readFileSync(hp.pki.keyNext, 'utf8')).toBe(next);
    expect(again.report.csr).toBe(first.report.csr);
    // --renew-certificate on top of a pending renewal reuses it too.
    const forced = await apply(c, services, { renewCertificate: true });
    expect(forced.report.changes.map((ch) => ch.action)).toEqual(['renewal-requested']);
    expect(readFileSync(hp.pki.keyNext, 'utf8')).toBe(next);
  });

  it('--renew-certificate asks for a new key outside the window too', async () => {
    const { c, services, hp } = await convergedHost(5, 400);
    const out = await apply(c, services, { renewCertificate: true });
    expect(out.exitCode).toBe(3);
    expect(out.plan.find((s) => s.kind === 'renewal-requested')).toEqual({ kind: 'renewal-requested', reason: 'forced' });
    expect(spkiOfCsr(out.report.csr ?? '')).toBe(spkiOfKey(readFileSync(hp.pki.keyNext, 'utf8')));
  });

  it('the certificate for the pending key: installed, the key moved into place (0600), TLS daemons reloaded not restarted; the next apply changes nothing', async () => {
    const { c, services, hp, cert: oldCert } = await convergedHost(30, 10);
    const req = await apply(c, services);
    const next = readFileSync(hp.pki.keyNext, 'utf8');
    services.calls.length = 0;
    const renewed = await sign(req.report.csr ?? '', 365);
    const out = await apply(c, services, { certificate: { pem: renewed, from: '-' } });
    expect(out.exitCode).toBe(0);
    expect(out.plan.filter((s) => s.kind === 'install-certificate' || s.kind === 'reload' || s.kind === 'restart')).toEqual([
      { kind: 'install-certificate', rotateKey: true },
      { kind: 'reload', service: 'stunnel-server' },
    ]);
    expect(services.calls).toEqual(['reload stunnel-server']);
    expect(out.report.changes.map((ch) => `${ch.action} ${ch.target}`)).toEqual([
      `install ${hostPaths().pki.cert}`,
      `rotate-key ${hostPaths().pki.key}`,
      'reload stunnel-server',
    ]);
    expect(readFileSync(hp.pki.key, 'utf8')).toBe(next);
    expect(statSync(hp.pki.key).mode & 0o777).toBe(0o600);
    expect(existsSync(hp.pki.keyNext)).toBe(false);
    expect(serialOf(readFileSync(hp.pki.cert, 'utf8'))).not.toBe(serialOf(oldCert));
    const again = await apply(c, services);
    expect(again.exitCode).toBe(0);
    expect(again.report.changes).toEqual([]);
  });

  it('a certificate matching neither key is bad input (exit 2); one for the current key still installs and leaves the pending key', async () => {
    const { c, services, hp } = await convergedHost(30, 10);
    await apply(c, services);
    const next = readFileSync(hp.pki.keyNext, 'utf8');
    const certBefore = readFileSync(hp.pki.cert, 'utf8');
    const stranger = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
    const wrong = await sign(createCsr(forge.pki.privateKeyToPem(stranger.privateKey), 'box1', ['box1', '192.0.2.10']), 365);
    const err = await apply(c, services, { certificate: { pem: wrong, from: 'wrong.pem' } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).exitCode).toBe(2);
    expect(readFileSync(hp.pki.cert, 'utf8')).toBe(certBefore);
    expect(readFileSync(hp.pki.keyNext, 'utf8')).toBe(next);

    // A longer certificate for the CURRENT key (signed from a CSR of that key) works as before.
    const current = await sign(createCsr(readFileSync(hp.pki.key, 'utf8'), 'box1', ['box1', '192.0.2.10']), 365);
    const keyBefore = readFileSync(hp.pki.key, 'utf8');
    const out = await apply(c, services, { certificate: { pem: current, from: 'current.pem' } });
    expect(out.exitCode).toBe(0);
    expect(out.plan.find((s) => s.kind === 'install-certificate')).toEqual({ kind: 'install-certificate' });
    expect(readFileSync(hp.pki.key, 'utf8')).toBe(keyBefore);
    expect(readFileSync(hp.pki.cert, 'utf8')).toBe(current);
  });

  it('an apply stopped after the certificate was written but before the key moved is finished by the next apply', async () => {
    const { c, services, hp } = await convergedHost(30, 10);
    const req = await apply(c, services);
    const next = readFileSync(hp.pki.keyNext, 'utf8');
    writeFileSync(hp.pki.cert, await sign(req.report.csr ?? '', 365));
    const out = await apply(c, services);
    expect(out.exitCode).toBe(0);
    expect(out.plan.find((s) => s.kind === 'install-certificate')).toEqual({ kind: 'install-certificate', rotateKey: true });
    expect(readFileSync(hp.pki.key, 'utf8')).toBe(next);
    expect(existsSync(hp.pki.keyNext)).toBe(false);
  });

  it('the same: stopped in between, then the same certificate given again with --certificate', async () => {
    const { c, services, hp } = await convergedHost(30, 10);
    const req = await apply(c, services);
    const next = readFileSync(hp.pki.keyNext, 'utf8');
    const renewed = await sign(req.report.csr ?? '', 365);
    writeFileSync(hp.pki.cert, renewed);
    const out = await apply(c, services, { certificate: { pem: renewed, from: '-' } });
    expect(out.exitCode).toBe(0);
    expect(readFileSync(hp.pki.key, 'utf8')).toBe(next);
    expect(existsSync(hp.pki.keyNext)).toBe(false);
  });
});

describe('planApply: renewal (pure)', () => {
  const m = manifestSchema.parse({ ...(oneBoxManifest('box1').manifest as Omit<BundleManifestInput, 'files'>), files: [] });
  const base: Observed = {
    missingDirs: [],
    files: new Map(),
    users: new Map([['root', 0]]),
    groups: new Map([['root', 0]]),
    certificate: { keyPresent: true, verdict: 'ok', csrCurrent: true, given: false },
    dbs: new Map([...m.raft.map((r) => [r.dbFile, 'present'] as const), [m.standaloneDbs[0]!.dbFile, 'present']]),
    services: new Map(m.services.map((s) => [s.name, { running: true, hash: `h-${s.name}` }])),
    unlisted: [],
    pending: { reload: [], restart: [] },
    initialized: true,
    distroUnits: [],
    ovs: {
      initialized: true,
      externalIds: { ...m.ovs!.externalIds },
      bridges: new Map([['br-int', { datapathType: 'netdev', failMode: 'secure', ports: ['br-int'] }]]),
    },
    servicesKind: 'own',
  };
  const hash = (s: { name: string }) => `h-${s.name}`;

  it('an old bundle (no renewalWindowDays) parses with 0: no renewal', () => {
    expect(m.certificate.renewalWindowDays).toBe(0);
    expect(planApply(m, base, hash)).toEqual([]);
  });

  it('due with no pending key: key, CSR, request; nothing stopped or reloaded, the rest of the plan goes on', () => {
    const steps = planApply(m, { ...base, certificate: { ...base.certificate, renewal: { reason: 'window', pendingKeyPresent: false, csrCurrent: false } } }, hash);
    expect(steps).toEqual([{ kind: 'renewal-key' }, { kind: 'renewal-csr' }, { kind: 'renewal-requested', reason: 'window' }]);
    const reuse = planApply(m, { ...base, certificate: { ...base.certificate, renewal: { reason: 'window', pendingKeyPresent: true, csrCurrent: true } } }, hash);
    expect(reuse).toEqual([{ kind: 'renewal-requested', reason: 'window' }]);
  });

  it('a certificate for the pending key: install + rotate, then a reload of every running TLS daemon', () => {
    const steps = planApply(m, { ...base, certificate: { ...base.certificate, given: true, rotateKey: true } }, hash);
    expect(steps).toEqual([{ kind: 'install-certificate', rotateKey: true }, { kind: 'reload', service: 'stunnel-server' }]);
  });
});
