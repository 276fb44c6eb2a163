/**
 * The certificate lifecycle without daemons: renewal rules, the s_client parsers, the status
 * verdict, the renewal timer (checked by `systemd-analyze verify`), and rotation / CA rollover
 * against a deployment whose stunnel reload is mocked (files and PKI are real). The same flows
 * against real stunnel, ovsdb-server and ovn-controller are in certs.slow.test.ts.
 */
import { runCli, type CliResult } from './helpers/cli.js';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caRollover } from '../src/certs/ca-rollover.js';
import { certFacts, crlFacts } from '../src/certs/cert-facts.js';
import type { Deployment, TlsEndpoint } from '../src/certs/deployment.js';
import { acceptedCaNames, servedIssuerName } from '../src/certs/probes.js';
import { crlNeedsRefresh, DAY_MS, leafDue } from '../src/certs/renewal.js';
import { revokeHost } from '../src/certs/revoke.js';
import { rotateCertificates, RotationError, startOrder } from '../src/certs/rotate.js';
import { judgeCertsStatus, renderCertsStatus, type Collected, type CollectedEndpoint } from '../src/certs/status.js';
import { cronWord, renderCronLine, renderRenewalUnits, systemdWord } from '../src/certs/timer.js';
import { ExitError } from '../src/errors.js';
import { hostPaths, pkiPaths, rolloverPaths } from '../src/paths.js';
import { initPki, normalizeSerial, readBundle, readIndex, refreshCrl, signCsr } from '../src/pki/index.js';
import { installPendingPair, keyMatchesOnHost, pendingKeyCsr, publicFileOf, publicFilePath, restorePreviousPair, writePublicFile } from '../src/certs/host-files.js';
import { ZxRunner } from '../src/runner.js';

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'od-certs-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const at = (iso: string) => new Date(iso);

describe('renewal rules', () => {
  it('a leaf is due in the last third of its lifetime, or with less than 7 days left', () => {
    const nb = at('2026-01-01T00:00:00Z');
    const na = at('2026-01-31T00:00:00Z'); // 30 days: due from day 20
    expect(leafDue(nb, na, at('2026-01-19T00:00:00Z'))).toBe(false);
    expect(leafDue(nb, na, at('2026-01-21T00:00:00Z'))).toBe(true);
    // A 1-day certificate is due at once: the daily timer must not wait for its last 8 hours.
    expect(leafDue(nb, at('2026-01-02T00:00:00Z'), nb)).toBe(true);
    // An explicit window replaces both rules.
    expect(leafDue(nb, na, at('2026-01-21T00:00:00Z'), 5)).toBe(false);
    expect(leafDue(nb, na, at('2026-01-26T00:00:00Z'), 5)).toBe(true);
  });

  it('a CRL is refreshed within 7 days or the last third of its period, whichever comes first', () => {
    const thisUpdate = at('2026-01-01T00:00:00Z');
    const next = new Date(thisUpdate.getTime() + 30 * DAY_MS);
    expect(crlNeedsRefresh(thisUpdate, next, at('2026-01-15T00:00:00Z'))).toBe(false);
    expect(crlNeedsRefresh(thisUpdate, next, at('2026-01-22T00:00:00Z'))).toBe(true);
    expect(crlNeedsRefresh(thisUpdate, new Date(thisUpdate.getTime() + 300 * DAY_MS), new Date(thisUpdate.getTime() + 294 * DAY_MS))).toBe(true);
    expect(crlNeedsRefresh(thisUpdate, next, at('2026-03-01T00:00:00Z'))).toBe(true);
  });
});

// What `openssl s_client` printed against a sandbox's stunnel server (trimmed).
const S_CLIENT = `CONNECTED(00000003)
---
Certificate chain
 0 s:O = ovn-deploy, OU = central, CN = central
   i:O = ovn-deploy, CN = ovn-deploy CA sandbox 1609
---
Server certificate
-----BEGIN CERTIFICATE-----
MIIB
-----END CERTIFICATE-----
subject=O = ovn-deploy, OU = central, CN = central
issuer=O = ovn-deploy, CN = ovn-deploy CA sandbox 1609 #2
---
Acceptable client certificate CA names
O = ovn-deploy, CN = ovn-deploy CA sandbox 1609
O = ovn-deploy, CN = ovn-deploy CA sandbox 1609 #2
Client Certificate Types: RSA sign, DSA sign, ECDSA sign
Requested Signature Algorithms: ECDSA+SHA256:RSA+SHA256
---
`;

describe('s_client parsers', () => {
  it('reads the CAs a running server accepts and the issuer of what it serves', () => {
    expect(acceptedCaNames(S_CLIENT)).toEqual(['ovn-deploy CA sandbox 1609', 'ovn-deploy CA sandbox 1609 #2']);
    expect(servedIssuerName(S_CLIENT)).toBe('ovn-deploy CA sandbox 1609 #2');
    expect(acceptedCaNames('CONNECTED\nNo client certificate CA names sent\n')).toEqual([]);
  });
});

describe('certs status verdict (pure)', () => {
  const endpoint = (host: string, side: 'server' | 'client'): TlsEndpoint => ({
    host,
    role: side === 'server' ? 'central' : 'worker',
    certName: host,
    sans: [host],
    certPath: `/pki/certs/${host}.crt`,
    keyPath: `/pki/private/${host}.key`,
    caFile: '/pki/ca/ca-bundle.crt',
    crlFile: '/pki/ca/crl.pem',
    stunnel: { serviceName: `${host}-stunnel`, pidFile: '/x.pid', logFile: '/x.log', side, listeners: side === 'server' ? [{ host: '10.0.0.1', port: 6642 }] : [] },
  });
  const now = at('2026-06-01T00:00:00Z');
  const ca = { serial: 'ca1', commonName: 'ovn-deploy CA t', notBefore: at('2026-01-01T00:00:00Z'), notAfter: at('2036-01-01T00:00:00Z') };
  const crl = { issuerCommonName: 'ovn-deploy CA t', thisUpdate: at('2026-05-30T00:00:00Z'), nextUpdate: at('2026-06-29T00:00:00Z'), crlNumber: 3n, revokedSerials: [] };
  const cert = (serial: string, notAfter: string) => ({ serial, commonName: 'x', issuerCommonName: 'ovn-deploy CA t', notBefore: at('2026-01-01T00:00:00Z'), notAfter: at(notAfter), pem: '' });
  const collected = (eps: Partial<CollectedEndpoint>[]): Collected => ({
    deployment: 'test',
    selector: ['--dir', '/sb'],
    issuingSerial: 'ca1',
    rollover: undefined,
    endpoints: eps.map((e, i) => ({
      endpoint: endpoint(i === 0 ? 'central' : `worker${i}`, i === 0 ? 'server' : 'client'),
      cert: cert(`s${i}`, '2028-01-01T00:00:00Z'),
      keyMatches: true,
      indexStatus: 'valid',
      served: i === 0 ? [{ listener: '10.0.0.1:6642', view: { ok: true, servedSerial: 's0', acceptedCas: ['ovn-deploy CA t'] } }] : [],
      tunnel: i === 0 ? undefined : { ok: true, detail: 'ok' },
      trusted: [ca],
      crls: [crl],
      ...e,
    })),
  });

  it('a healthy deployment has no warnings and nothing due', () => {
    const r = judgeCertsStatus(collected([{}, {}]), now);
    expect(r.warnings).toEqual([]);
    expect(r.due).toEqual([]);
    expect(r.endpoints[0]?.served[0]?.matchesFile).toBe(true);
    expect(r.cas).toEqual([{ serial: 'ca1', commonName: 'ovn-deploy CA t', notAfter: '2036-01-01T00:00:00.000Z', daysLeft: 3501, due: false, critical: false, issuing: true }]);
    expect(r.critical).toEqual([]);
    expect(renderCertsStatus(r)).toMatch(/central\s+central\s+central\s+s0\s+ovn-deploy CA t\s+2028-01-01\s+\d+\s+valid\s+same/);
  });

  it('warns about a due certificate, a stale reload, a broken tunnel, a key mismatch, a missing CRL and a CRL near nextUpdate', () => {
    const r = judgeCertsStatus(
      collected([
        { served: [{ listener: '10.0.0.1:6642', view: { ok: true, servedSerial: 'old', acceptedCas: [] } }] },
        { cert: cert('s1', '2026-06-02T00:00:00Z'), tunnel: { ok: false, detail: 'reset by peer' }, keyMatches: false },
        {
          endpoint: { ...endpoint('worker2', 'client'), crlFile: '/w2/crl.pem' },
          trusted: [ca, { ...ca, serial: 'ca2', commonName: 'ovn-deploy CA t #2' }],
          crls: [{ ...crl, nextUpdate: at('2026-06-03T00:00:00Z') }],
        },
      ]),
      now,
    );
    const w = r.warnings.join('\n');
    expect(r.due).toEqual(['worker1']);
    expect(w).toMatch(/worker1's certificate worker1 .* is due: 1 day\(s\) left/);
    expect(w).toMatch(/serves serial old, but \/pki\/certs\/central.crt holds s0/);
    expect(w).toMatch(/worker1's TLS tunnel .* reset by peer/);
    expect(w).toMatch(/does not match the certificate/);
    expect(w).toMatch(/no CRL for trusted CA "ovn-deploy CA t #2"/);
    expect(w).toMatch(/needs its next update by 2026-06-03/);
    expect(r.crls.find((c) => c.needsRefresh)?.daysLeft).toBe(2);
    // The broken tunnel, the key mismatch and the missing CRL break connections: critical; a due leaf is not (yet).
    const c = r.critical.join('\n');
    expect(c).toMatch(/reset by peer/);
    expect(c).toMatch(/does not match the certificate/);
    expect(c).toMatch(/no CRL for trusted CA "ovn-deploy CA t #2"/);
    expect(c).not.toMatch(/is due/);
  });

  it('a CA past half its lifetime: prepare the next one; with a sixth left: critical; a stale CRL and an expired leaf are critical', () => {
    const half = judgeCertsStatus(collected([{}]), at('2031-02-01T00:00:00Z'));
    expect(half.cas[0]).toMatchObject({ due: true, critical: false });
    expect(half.warnings.join('\n')).toMatch(/CA "ovn-deploy CA t" expires in \d+ day\(s\), past half its lifetime: prepare the next CA/);
    expect(half.critical.join('\n')).not.toMatch(/CA "ovn-deploy CA t"/);
    const early = judgeCertsStatus(collected([{}]), at('2030-12-01T00:00:00Z'));
    expect(early.cas[0]).toMatchObject({ due: false, critical: false });
    const late = judgeCertsStatus(collected([{ cert: cert('s0', '2036-06-01T00:00:00Z'), served: [] }]), at('2034-09-01T00:00:00Z'));
    expect(late.cas[0]).toMatchObject({ due: true, critical: true });
    expect(late.critical.join('\n')).toMatch(/a sixth of its lifetime or less: roll it over now/);
    const stale = judgeCertsStatus(collected([{ cert: cert('s0', '2026-05-01T00:00:00Z') }]), now);
    expect(stale.critical.join('\n')).toMatch(/EXPIRED on 2026-05-01/);
    const crlGone = judgeCertsStatus(collected([{ crls: [{ ...crl, thisUpdate: at('2026-05-01T00:00:00Z'), nextUpdate: at('2026-05-31T00:00:00Z') }] }]), now);
    expect(crlGone.critical.join('\n')).toMatch(/is STALE since 2026-05-31/);
  });

  it('a host revoked by `certs revoke` is shown but not warned about (its refusal is intended)', () => {
    const c = collected([{}, { indexStatus: 'revoked', tunnel: { ok: false, detail: 'certificate revoked' } }]);
    const r = judgeCertsStatus({ ...c, revokedHosts: ['worker1'] }, now);
    expect(r.warnings).toEqual([]);
    expect(r.endpoints[1]).toMatchObject({ host: 'worker1', status: 'revoked', due: false });
    // Without the record, the same files are critical findings.
    expect(judgeCertsStatus(c, now).critical.join('\n')).toMatch(/worker1's certificate .* is REVOKED/);
  });
});

describe('renewal timer', () => {
  const spec = { deployment: 'sandbox /var/lib/ovn-deploy/sandbox', program: [process.execPath, '/opt/ovn deploy/cli.js'], selector: ['--dir', '/var/lib/ovn-deploy/sandbox'] };

  it('quotes for systemd and for cron (spaces, %, $)', () => {
    expect(systemdWord('/a b/c%d$e')).toBe('"/a b/c%%d$$e"');
    expect(systemdWord('--dir')).toBe('--dir');
    expect(cronWord("/a b/it's%")).toBe("'/a b/it'\\''s\\%'");
    expect(cronWord('/usr/bin/ovn-deploy')).toBe('/usr/bin/ovn-deploy');
  });

  it('renders a oneshot service and a daily randomized timer running `certs rotate --dir`', () => {
    const files = renderRenewalUnits(spec);
    const service = String(files.get('ovn-deploy-cert-renew.service')?.content);
    const timer = String(files.get('ovn-deploy-cert-renew.timer')?.content);
    expect(service).toMatch(/^# generated by ovn-deploy from templates\/systemd\/ovn-deploy-cert-renew\.service\.hbs, do not edit/);
    expect(service).toContain(`ExecStart=${process.execPath} "/opt/ovn deploy/cli.js" certs rotate --dir /var/lib/ovn-deploy/sandbox\n`);
    expect(service).toContain('Type=oneshot');
    expect(timer).toContain('OnCalendar=daily');
    expect(timer).toContain('RandomizedDelaySec=1h');
    expect(timer).toContain('Persistent=true');
    expect(timer).toContain('Unit=ovn-deploy-cert-renew.service');
    expect(() => renderRenewalUnits({ ...spec, selector: ['--dir', '/x\nExecStartPre=/bin/evil'] })).toThrow(/control characters/);
    expect(() => renderRenewalUnits({ ...spec, program: ['ovn-deploy'] })).toThrow(/absolute path/);
  });

  const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
  if (!analyze) console.warn('certs.test.ts: systemd-analyze missing (scripts/install-deps.sh test installs systemd): unit verification skipped');

  it.skipIf(!analyze)('systemd-analyze verify accepts the units, and rejects a broken one', async () => {
    const dir = path.join(root, 'units');
    await fs.mkdir(dir, { recursive: true });
    const files = renderRenewalUnits({ ...spec, program: [process.execPath, '/opt/cli.js'] });
    for (const [name, f] of files) await fs.writeFile(path.join(dir, name), f.content);
    const verify = () => spawnSync('systemd-analyze', ['verify', './ovn-deploy-cert-renew.service', './ovn-deploy-cert-renew.timer'], { cwd: dir, encoding: 'utf8' });
    const ok = verify();
    expect(ok.status, ok.stderr).toBe(0);
    await fs.writeFile(path.join(dir, 'ovn-deploy-cert-renew.timer'), String(files.get('ovn-deploy-cert-renew.timer')?.content).replace('OnCalendar=daily', 'OnCalendar=whenever'));
    const bad = verify();
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/calendar/i);
  });

  it('the cron line runs at a fixed time per deployment, as root, logging to a file', () => {
    const line = renderCronLine(spec);
    expect(line).toMatch(/^\d{1,2} [1-5] \* \* \* root /);
    expect(line).toContain(`certs rotate --dir /var/lib/ovn-deploy/sandbox >>/var/log/ovn-deploy-cert-renew.log 2>&1`);
    expect(renderCronLine(spec)).toBe(line);
    expect(renderCronLine({ ...spec, selector: ['--dir', '/other'] }).split(' ').slice(0, 2)).not.toEqual(line.split(' ').slice(0, 2));
  });
});

/**
 * A deployment of three "hosts" whose files are real (each a root directory with a real host's
 * layout, its key made there by the host-side functions a real host runs over SSH) and whose
 * stunnel reload is mocked: it succeeds unless the test says otherwise, and records every call.
 */
async function mockedDeployment(name: string, hosts = ['central', 'worker1', 'worker2']) {
  const pkiDir = path.join(root, name, 'pki');
  await initPki(pkiDir, { keyBits: 2048, commonName: name });
  const p = pkiPaths(pkiDir);
  const placeOf = (h: string) => hostPaths(path.join(root, name, 'hosts', h));
  const endpoints: TlsEndpoint[] = hosts.map((h) => ({
    host: h,
    role: h.startsWith('central') ? 'central' : 'worker',
    certName: h,
    sans: h.startsWith('central') ? [h, '10.0.0.1'] : [h],
    certPath: placeOf(h).pki.cert,
    keyPath: placeOf(h).pki.key,
    caFile: placeOf(h).pki.caBundle,
    crlFile: placeOf(h).pki.crl,
    stunnel: { serviceName: `${h}-stunnel`, pidFile: '/nonexistent.pid', logFile: '/nonexistent.log', side: h.startsWith('central') ? 'server' : 'client', listeners: [] },
  }));
  for (const e of endpoints) {
    const hp = placeOf(e.host);
    const csr = await pendingKeyCsr(hp, { name: e.certName, sans: e.sans, keyBits: 2048 });
    const issued = await signCsr(pkiDir, csr, { role: e.role, name: e.certName, sans: e.sans, host: e.host });
    await installPendingPair(hp, issued.certPem);
    await fs.copyFile(p.caBundle, e.caFile);
    await fs.copyFile(p.crl, e.crlFile);
  }
  const reloads: string[] = [];
  const failReload = new Set<string>();
  const ref = (e: TlsEndpoint, file: string) => {
    const r = publicFileOf(placeOf(e.host), file);
    if (r === undefined) throw new Error(`not a public file: ${file}`);
    return r;
  };
  const d: Deployment = {
    description: `mocked ${name}`,
    pkiDir,
    endpoints,
    leafPolicy: { validityDays: 730, keyBits: 2048 },
    runnerFor: () => new ZxRunner(),
    selector: ['--dir', `/mock/${name}`],
    read: async (e, file) => fs.readFile(publicFilePath(placeOf(e.host), ref(e, file)), 'utf8').catch(() => undefined),
    write: async (e, file, content) => writePublicFile(placeOf(e.host), ref(e, file), content),
    newKey: async (e, req) => pendingKeyCsr(placeOf(e.host), req),
    installPair: async (e, certPem) => installPendingPair(placeOf(e.host), certPem),
    restorePair: async (e, certPem) => restorePreviousPair(placeOf(e.host), certPem),
    keyMatches: async (e) => keyMatchesOnHost(placeOf(e.host)),
    reload: async (e) => {
      reloads.push(e.host);
      if (failReload.has(e.host)) {
        failReload.delete(e.host);
        throw new ExitError(`stunnel (pid 1) failed to reload its configuration and keeps running the previous one:\nSSL_CTX_use_PrivateKey: key values mismatch`);
      }
    },
    lock: async () => ({ release: async () => undefined }),
  };
  return { d, reloads, failReload, pkiDir };
}

const serialOf = async (file: string) => certFacts(await fs.readFile(file, 'utf8'))?.serial;

describe('certs rotate (mocked stunnel reload)', () => {
  it('renews only what is due unless forced, keeps the previous pair as .prev, reloads each stunnel once', async () => {
    const { d, reloads } = await mockedDeployment('rotate');
    const none = await rotateCertificates(d);
    expect(none.outcomes.map((o) => o.action)).toEqual(['skipped', 'skipped', 'skipped']);
    expect(reloads).toEqual([]);
    const central = d.endpoints[0]!;
    const before = await fs.readFile(central.certPath, 'utf8');
    const r = await rotateCertificates(d, { hosts: ['central'], force: true });
    expect(r.outcomes.map((o) => [o.certName, o.action])).toEqual([['central', 'renewed']]);
    expect(reloads).toEqual(['central']);
    expect(await fs.readFile(`${central.certPath}.prev`, 'utf8')).toBe(before);
    expect(await serialOf(central.certPath)).toBe(r.outcomes[0]?.newSerial);
    expect((await fs.stat(central.keyPath)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(`${central.keyPath}.prev`)).mode & 0o777).toBe(0o600);
    await expect(rotateCertificates(d, { hosts: ['nope'] })).rejects.toThrow(/no host "nope"/);
  });

  it('--concurrency 3: up to three hosts at once but never two centrals; outcomes in host order', async () => {
    const hosts = ['central1', 'central2', 'central3', 'worker1', 'worker2', 'worker3'];
    const { d } = await mockedDeployment('concurrent', hosts);
    // In the middle of a change: from its new key to the end of its reload (which takes a while here).
    const inFlight = new Set<string>();
    let most = 0;
    let mostCentrals = 0;
    const { newKey, reload } = d;
    d.newKey = async (e, req) => {
      inFlight.add(e.host);
      most = Math.max(most, inFlight.size);
      mostCentrals = Math.max(mostCentrals, [...inFlight].filter((h) => h.startsWith('central')).length);
      return newKey(e, req);
    };
    d.reload = async (e) => {
      await new Promise((r) => setTimeout(r, 150));
      await reload(e);
      inFlight.delete(e.host);
    };
    const r = await rotateCertificates(d, { force: true, concurrency: 3 });
    expect(r.outcomes.map((o) => [o.certName, o.action])).toEqual(hosts.map((h) => [h, 'renewed']));
    expect(mostCentrals).toBe(1);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(3);
    for (const e of d.endpoints) expect(await serialOf(e.certPath), e.host).toBe(r.outcomes.find((o) => o.certName === e.host)?.newSerial);
  });

  it('start order: each central followed by up to concurrency - 1 other hosts; one at a time keeps the given order', () => {
    expect(startOrder([true, true, true, false, false, false], 3)).toEqual([0, 3, 4, 1, 5, 2]);
    expect(startOrder([false, true, false, true], 2)).toEqual([1, 0, 3, 2]);
    expect(startOrder([false, false], 4)).toEqual([0, 1]);
    expect(startOrder([true, false, true], 1)).toEqual([0, 1, 2]);
  });

  it('a failed reload restores the previous files, reinstates the previous certificate and revokes the new one', async () => {
    const { d, reloads, failReload, pkiDir } = await mockedDeployment('rollback');
    const w1 = d.endpoints[1]!;
    const [oldCert, oldKey] = await Promise.all([fs.readFile(w1.certPath, 'utf8'), fs.readFile(w1.keyPath, 'utf8')]);
    const oldSerial = await serialOf(w1.certPath);
    failReload.add('worker1');
    const error = await rotateCertificates(d, { force: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RotationError);
    const result = (error as RotationError).result;
    expect(result.outcomes.map((o) => [o.certName, o.action])).toEqual([
      ['central', 'renewed'],
      ['worker1', 'rolled-back'],
      ['worker2', 'renewed'],
    ]);
    const failed = result.outcomes[1]!;
    expect(failed.reason).toMatch(/key values mismatch.*rolled back: previous files restored, new certificate \w+ revoked/s);
    expect(failed.restored).toBe(true);
    expect(await fs.readFile(w1.certPath, 'utf8')).toBe(oldCert);
    expect(await fs.readFile(w1.keyPath, 'utf8')).toBe(oldKey);
    expect(reloads.filter((h) => h === 'worker1')).toHaveLength(2);
    const index = await readIndex(pkiDir);
    expect(index.find((e) => normalizeSerial(e.serial) === oldSerial)?.status).toBe('valid');
    expect(index.find((e) => normalizeSerial(e.serial) === failed.newSerial)?.status).toBe('revoked');
    expect(index.filter((e) => e.name === 'worker1' && e.status === 'valid')).toHaveLength(1);
  });

  it('re-signs a CRL near its nextUpdate, copies it to the hosts and reloads every stunnel, even with nothing due', async () => {
    const { d, reloads } = await mockedDeployment('crl');
    await refreshCrl(d.pkiDir, { nextUpdateDays: 2 });
    const r = await rotateCertificates(d);
    expect(r.crlRefreshed).toMatch(/due for its next update/);
    expect(r.outcomes.every((o) => o.action === 'skipped')).toBe(true);
    expect(reloads.sort()).toEqual(['central', 'worker1', 'worker2']);
    const crl = crlFacts(await fs.readFile(d.endpoints[2]!.crlFile, 'utf8'));
    expect(crl[0]!.nextUpdate.getTime() - Date.now()).toBeGreaterThan(20 * DAY_MS);
    // Current again: the next run leaves it alone.
    expect((await rotateCertificates(d)).crlRefreshed).toBeNull();
  });

  it('a host whose CRL copy differs from the PKI\'s (it was down, or its file was replaced) gets the current one and only it is reloaded', async () => {
    const { d, reloads } = await mockedDeployment('crl-behind');
    const w1 = d.endpoints[1]!;
    const current = await fs.readFile(pkiPaths(d.pkiDir).crl, 'utf8');
    const stale = await fs.readFile(d.endpoints[2]!.crlFile, 'utf8');
    await refreshCrl(d.pkiDir, {});
    await fs.writeFile(w1.crlFile, stale);
    await fs.writeFile(d.endpoints[0]!.crlFile, await fs.readFile(pkiPaths(d.pkiDir).crl, 'utf8'));
    await fs.writeFile(d.endpoints[2]!.crlFile, await fs.readFile(pkiPaths(d.pkiDir).crl, 'utf8'));
    expect(current).not.toBe(await fs.readFile(pkiPaths(d.pkiDir).crl, 'utf8'));
    const r = await rotateCertificates(d);
    expect(r.outcomes.every((o) => o.action === 'skipped')).toBe(true);
    expect(await fs.readFile(w1.crlFile, 'utf8')).toBe(await fs.readFile(pkiPaths(d.pkiDir).crl, 'utf8'));
    expect(reloads).toEqual(['worker1']);
  });

  it('the key is made on the host and never lands in the PKI; a failed reload restores the hosts\' files and the CRL reaches them', async () => {
    const { d, failReload } = await mockedDeployment('copies');
    const [central, w1] = [d.endpoints[0]!, d.endpoints[1]!];
    const r = await rotateCertificates(d, { hosts: ['central'], force: true });
    expect(await serialOf(central.certPath)).toBe(r.outcomes[0]?.newSerial);
    expect(await fs.readFile(central.certPath, 'utf8')).toBe(await fs.readFile(pkiPaths(d.pkiDir).cert('central'), 'utf8'));
    await expect(fs.stat(pkiPaths(d.pkiDir).key('central'))).rejects.toThrow(/ENOENT/);
    const before = await fs.readFile(w1.certPath, 'utf8');
    const pkiBefore = await fs.readFile(pkiPaths(d.pkiDir).cert('worker1'), 'utf8');
    failReload.add('worker1');
    await expect(rotateCertificates(d, { hosts: ['worker1'], force: true })).rejects.toThrow(/rolled back/);
    expect(await fs.readFile(w1.certPath, 'utf8')).toBe(before);
    expect(await fs.readFile(pkiPaths(d.pkiDir).cert('worker1'), 'utf8')).toBe(pkiBefore);
    // The re-signed CRL (listing the abandoned certificate) was copied to the hosts.
    expect(await fs.readFile(w1.crlFile, 'utf8')).toBe(await fs.readFile(pkiPaths(d.pkiDir).crl, 'utf8'));
  });
});

describe('certs ca-rollover ordering (mocked stunnel reload)', () => {
  it('refuses out-of-order phases with exit 2, resumes per host, and ends with only the new CA', async () => {
    const { d, reloads } = await mockedDeployment('order');
    const refusedStart = await caRollover(d, { phase: 'issue' }).catch((e: unknown) => e);
    expect(refusedStart).toBeInstanceOf(ExitError);
    expect((refusedStart as ExitError).exitCode).toBe(2);
    expect((refusedStart as ExitError).message).toMatch(/no CA rollover is in progress/);

    const partial = await caRollover(d, { phase: 'trust', hosts: ['worker1', 'worker2'] });
    expect(partial.pending.trust).toEqual(['central']);
    expect(partial.complete).toBe(false);
    const { oldCa, newCa } = partial.state;
    expect((await readBundle(d.pkiDir)).map((c) => c.serial)).toEqual([oldCa.serial, newCa.serial]);

    const refused = await caRollover(d, { phase: 'issue' }).catch((e: unknown) => e);
    expect((refused as ExitError).exitCode).toBe(2);
    expect((refused as ExitError).message).toMatch(/refusing phase 2 \(issue\).*\n\s+central: has not completed phase trust/);
    // Refused means untouched: the old CA still issues, no leaf was renewed.
    expect((await readIndex(d.pkiDir)).every((e) => normalizeSerial(e.issuer) === oldCa.serial)).toBe(true);
    expect(reloads.sort()).toEqual(['worker1', 'worker2']);

    const rest = await caRollover(d);
    expect(rest.complete).toBe(true);
    expect(rest.ran.map((r) => [r.phase, r.hosts])).toEqual([
      ['trust', ['central']],
      ['issue', ['central', 'worker1', 'worker2']],
      ['retire', ['central', 'worker1', 'worker2']],
    ]);
    expect((await readBundle(d.pkiDir)).map((c) => c.serial)).toEqual([newCa.serial]);
    const valid = (await readIndex(d.pkiDir)).filter((e) => e.status === 'valid').sort((a, b) => a.name.localeCompare(b.name));
    expect(valid.map((e) => [e.name, normalizeSerial(e.issuer)])).toEqual([
      ['central', newCa.serial],
      ['worker1', newCa.serial],
      ['worker2', newCa.serial],
    ]);
    const state = JSON.parse(await fs.readFile(rolloverPaths(d.pkiDir).state, 'utf8')) as { completedAt?: string };
    expect(state.completedAt).toBeDefined();
    // Going back is refused too.
    const again = await caRollover(d, { phase: 'retire' }).catch((e: unknown) => e);
    expect((again as ExitError).exitCode).toBe(2);
  });
});

describe('certs revoke (mocked stunnel reload)', () => {
  it('a host the PKI never issued for is bad input (exit 2), and nothing is reloaded', async () => {
    const { d, reloads } = await mockedDeployment('revoke');
    const err = await revokeHost(d, 'worker9').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExitError);
    expect((err as ExitError).exitCode).toBe(2);
    expect((err as ExitError).message).toMatch(/no host "worker9" .*\(hosts: central, worker1, worker2\)/);
    expect(reloads).toEqual([]);
    // A known host: every certificate of it revoked, every stunnel reloaded, the CRL lists them.
    const r = await revokeHost(d, 'worker2');
    expect(r.revoked.map((e) => e.name)).toEqual(['worker2']);
    expect(reloads.sort()).toEqual(['central', 'worker1', 'worker2']);
    expect((await readIndex(d.pkiDir)).find((e) => e.name === 'worker2')?.status).toBe('revoked');
  });
});

describe('ovn-deploy certs (CLI)', () => {
  async function run(...args: string[]): Promise<CliResult> {
    return runCli(['certs', ...args]);
  }

  it('status on a directory without a sandbox exits 3; bad numbers exit 2', async () => {
    const none = await run('status', '--dir', path.join(root, 'nothing-here'));
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/no sandbox in/);
    const bad = await run('rotate', '--dir', path.join(root, 'nothing-here'), '--days', '0', '--window-days', 'x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--days: must be a positive integer/);
    expect(bad.stderr).toMatch(/--window-days: must be a positive integer/);
    const badRollover = await run('ca-rollover', '--dir', path.join(root, 'nothing-here'), '--concurrency', '0');
    expect(badRollover.code).toBe(2);
    expect(badRollover.stderr).toMatch(/--concurrency: must be a positive integer/);
    expect(badRollover.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('timer --cron prints one cron.d line; timer --out writes both units', async () => {
    const cron = await run('timer', '--cron', '--dir', '/var/lib/x', '--bin', '/usr/bin/ovn-deploy');
    expect(cron.code).toBe(0);
    expect(cron.stdout.trim()).toMatch(/^\d+ \d \* \* \* root \/usr\/bin\/ovn-deploy certs rotate --dir \/var\/lib\/x >>\/var\/log\/ovn-deploy-cert-renew.log 2>&1$/);
    const out = path.join(root, 'timer-out');
    const w = await run('timer', '--dir', '/var/lib/x', '--bin', '/usr/bin/ovn-deploy', '--out', out);
    expect(w.code).toBe(0);
    expect((await fs.readdir(out)).sort()).toEqual(['ovn-deploy-cert-renew.service', 'ovn-deploy-cert-renew.timer']);
    expect(await fs.readFile(path.join(out, 'ovn-deploy-cert-renew.service'), 'utf8')).toContain('ExecStart=/usr/bin/ovn-deploy certs rotate --dir /var/lib/x');
    // Same input, same files: nothing rewritten.
    expect((await run('timer', '--dir', '/var/lib/x', '--bin', '/usr/bin/ovn-deploy', '--out', out)).stdout).toMatch(/unchanged .*service/);
  });
});
