/**
 * The TLS policy of the generated stunnel configs, proven with real stunnel4, openssl s_client,
 * ovn-nbctl and OVN's ovsdb-server. Every rejection is paired with the nearest accepted probe, so
 * it is the policy (not a broken setup) that refuses.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyFiles } from '../src/fsx.js';
import type { Inventory } from '../src/inventory/types.js';
import { stunnelFiles, pkiPaths } from '../src/paths.js';
import { initPki, issueCertificate, revokeCertificate } from '../src/pki/index.js';
import { ZxRunner } from '../src/runner.js';
import { ALLOWED_CIPHER_RE, renderHostStunnel, type HostStunnelLayout, type StunnelTlsFiles } from '../src/stunnel/index.js';
import { checkStunnelConfig, reloadStunnel, stunnelBinary } from '../src/tools/stunnel.js';
import { probeTls, servedSerial, type TlsProbeOptions } from '../src/tools/tls.js';
import { Daemons, freePorts, missingPrograms, waitForListener } from './helpers/tls-daemons.js';
import { makeForeignCa, makeLeaf, type Pair } from './helpers/tls-fixtures.js';

const runner = new ZxRunner();
const daemons = new Daemons();
const tag = randomBytes(3).toString('hex');
const DAY_MS = 86_400_000;
/** This test's stunnels run unmanaged (no supervisor): the reload signal goes to the pid file's process. */
const hup = (pidFile: string) => async (): Promise<void> => {
  process.kill(Number((await fs.readFile(pidFile, 'utf8')).trim()), 'SIGHUP');
};

// Distinct loopback addresses: the real central listens on .2, the impostor on .4, the local
// client tunnels on 127.0.0.1 (as on a worker).
const CENTRAL_IP = '127.0.0.2';
const IMPOSTOR_IP = '127.0.0.4';

let dir: string;
let pki: ReturnType<typeof pkiPaths>;
let ports: { db: number; nb: number; sb: number; nbImpostor: number; sbImpostor: number; raft: number[] };
const certs: Record<string, Pair & { serial?: string }> = {};
let serverTls: StunnelTlsFiles;
let serverRun: { pidFile: string; logFile: string; conf: string };
let clientRun: { pidFile: string; logFile: string; conf: string };
let impostorServerRun: { pidFile: string; logFile: string; conf: string };
let impostorClientRun: { pidFile: string; logFile: string; conf: string };

function inventory(centralIp: string, nb: number, sb: number): Inventory {
  return {
    site: `tls-${tag}`,
    tls: { mode: 'stunnel' },
    ports: { nb, sb, nbRaft: ports.raft[0]!, sbRaft: ports.raft[1]! },
    loopbackPorts: { nb: ports.db, sb: ports.raft[2]!, nbRaft: ports.raft[3]!, sbRaft: ports.raft[4]! },
    certificates: { caValidityDays: 30, leafValidityDays: 7, renewalWindowDays: 1, caKeyBits: 2048, leafKeyBits: 2048 },
    hosts: [
      { name: 'central-a', addresses: [centralIp], dnsNames: [], roles: ['central'], systemId: 'central-a', datapath: 'system' },
      { name: 'worker-a', addresses: ['127.0.0.3'], dnsNames: [], roles: ['worker'], systemId: 'worker-a', datapath: 'system', encap: { type: 'geneve', ip: '127.0.0.3' } },
    ],
  };
}

/** Renders a host's configs into `etcDir` with the real apply step and starts each in the foreground. */
async function deployStunnel(inv: Inventory, hostName: string, layout: HostStunnelLayout, etcDir: string) {
  const files = renderHostStunnel(inv, hostName, layout);
  await applyFiles(etcDir, files);
  const [name] = [...files.keys()];
  const conf = path.join(etcDir, name!);
  const kind = name === 'stunnel-server.conf' ? 'server' : 'client';
  const run = { ...stunnelFiles(kind, layout), conf };
  // The config must load cleanly: no errors and no warnings.
  const check = await checkStunnelConfig(runner, conf);
  expect(check.warnings, `${conf} warnings`).toEqual([]);
  daemons.start([stunnelBinary(), conf]);
  return run;
}

async function issue(name: string, role: 'central' | 'worker', extra: { sans?: string[]; now?: Date; notBefore?: Date; validityDays?: number } = {}) {
  const c = await issueCertificate(pki.dir, { name, role, keyBits: 2048, ...extra });
  certs[name] = { cert: c.certPath, key: c.keyPath!, serial: c.serial };
  return c;
}

/** OVSDB JSON-RPC echo: proves data really flows to ovsdb-server and back. */
function echo(): Pick<TlsProbeOptions, 'send' | 'expect'> {
  const id = `probe-${randomBytes(4).toString('hex')}`;
  return { send: JSON.stringify({ method: 'echo', params: [], id }), expect: new RegExp(`"id":"${id}","result":\\[\\]`) };
}

/** A TLS 1.2 probe of the central's NB listener with a valid worker certificate. */
function good(over: Partial<TlsProbeOptions> = {}): TlsProbeOptions {
  return {
    host: CENTRAL_IP,
    port: ports.nb,
    caFile: pki.caBundle,
    verifyName: 'central-a',
    cert: certs['worker-a']!.cert,
    key: certs['worker-a']!.key,
    tlsVersion: '1.2',
    ...echo(),
    ...over,
  };
}

async function nbctl(db: string, args: string[], timeoutS = 10) {
  return runner.run(['ovn-nbctl', `--db=${db}`, `--timeout=${timeoutS}`, ...args], { allowFailure: true, timeoutMs: (timeoutS + 5) * 1000 });
}

const missing = missingPrograms(['ovsdb-tool', 'ovsdb-server', 'ovn-nbctl', 'openssl', stunnelBinary()]);
if (missing.length > 0) console.warn(`stunnel TLS matrix skipped: ${missing.join(', ')} not installed (scripts/install-deps.sh)`);

describe.skipIf(missing.length > 0)('stunnel tunnels in front of ovsdb-server (real stunnel4, openssl, OVN)', () => {
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), `ovnd-stunnel-${tag}-`));
    const [db, nb, sb, nbImpostor, sbImpostor, ...raft] = await freePorts(10);
    ports = { db: db!, nb: nb!, sb: sb!, nbImpostor: nbImpostor!, sbImpostor: sbImpostor!, raft };

    pki = pkiPaths(path.join(dir, 'pki'));
    await initPki(pki.dir, { keyBits: 2048, commonName: `stunnel-test-${tag}` });
    await issue('central-a', 'central', { sans: [CENTRAL_IP] });
    await issue('central-b', 'central', { sans: [IMPOSTOR_IP] });
    await issue('worker-a', 'worker');
    await issue('worker-revoked', 'worker');
    // Valid for one day, ten days ago.
    const past = new Date(Date.now() - 10 * DAY_MS);
    await issue('worker-expired', 'worker', { now: past, notBefore: past, validityDays: 1 });
    const foreignCa = await makeForeignCa(path.join(dir, 'foreign'), `foreign-ca-${tag}`);
    certs['foreign-worker'] = await makeLeaf(path.join(dir, 'foreign'), 'foreign-worker', foreignCa, [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=clientAuth',
    ]);
    // Signed by OUR CA, but for servers only.
    certs['server-only'] = await makeLeaf(path.join(dir, 'odd'), 'server-only', { cert: pki.caCert, key: pki.caKey }, [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
    ]);

    // ovsdb-server: plaintext only on 127.0.0.1, as on a central.
    const dbFile = path.join(dir, 'nb.db');
    await runner.run(['ovsdb-tool', 'create', dbFile, '/usr/share/ovn/ovn-nb.ovsschema']);
    daemons.start([
      'ovsdb-server',
      dbFile,
      `--remote=punix:${path.join(dir, 'nb.sock')}`,
      `--remote=ptcp:${ports.db}:127.0.0.1`,
      `--pidfile=${path.join(dir, 'nb.pid')}`,
      `--unixctl=${path.join(dir, 'nb.ctl')}`,
      `--log-file=${path.join(dir, 'nb.log')}`,
    ]);
    await waitForListener('127.0.0.1', ports.db);

    // The server side gets its own copies of the central's certificate and key, so tests can
    // swap them; CA bundle and CRL are the PKI's own files (a revocation rewrites the CRL).
    const tlsDir = path.join(dir, 'server-tls');
    await fs.mkdir(tlsDir, { recursive: true });
    serverTls = { cert: path.join(tlsDir, 'central.crt'), key: path.join(tlsDir, 'central.key'), caFile: pki.caBundle, crlFile: pki.crl };
    await fs.copyFile(certs['central-a']!.cert, serverTls.cert);
    await fs.copyFile(certs['central-a']!.key, serverTls.key);

    const runDirs = { runDir: path.join(dir, 'run'), logDir: path.join(dir, 'log') };
    await fs.mkdir(runDirs.runDir, { recursive: true });
    await fs.mkdir(runDirs.logDir, { recursive: true });
    const workerTls = { cert: certs['worker-a']!.cert, key: certs['worker-a']!.key, caFile: pki.caBundle, crlFile: pki.crl };

    const inv = inventory(CENTRAL_IP, ports.nb, ports.sb);
    serverRun = await deployStunnel(inv, 'central-a', { tls: serverTls, ...runDirs }, path.join(dir, 'etc-central'));
    clientRun = await deployStunnel(inv, 'worker-a', { tls: workerTls, ...runDirs }, path.join(dir, 'etc-worker'));

    // The impostor: a central of the same CA whose certificate names central-b, where the worker
    // believes central-a is.
    const impostorDirs = { runDir: path.join(dir, 'run-impostor'), logDir: path.join(dir, 'log-impostor') };
    await fs.mkdir(impostorDirs.runDir, { recursive: true });
    await fs.mkdir(impostorDirs.logDir, { recursive: true });
    const impostorInv = inventory(IMPOSTOR_IP, ports.nbImpostor, ports.sbImpostor);
    const impostorTls = { cert: certs['central-b']!.cert, key: certs['central-b']!.key, caFile: pki.caBundle, crlFile: pki.crl };
    impostorServerRun = await deployStunnel(impostorInv, 'central-a', { tls: impostorTls, ...impostorDirs }, path.join(dir, 'etc-impostor'));
    impostorClientRun = await deployStunnel(impostorInv, 'worker-a', { tls: workerTls, ...impostorDirs }, path.join(dir, 'etc-impostor-worker'));

    await Promise.all([
      waitForListener(CENTRAL_IP, ports.nb),
      waitForListener('127.0.0.1', ports.nb),
      waitForListener(IMPOSTOR_IP, ports.nbImpostor),
      waitForListener('127.0.0.1', ports.nbImpostor),
    ]);
  });

  afterAll(async () => {
    await daemons.stopAll();
    if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
  });

  it('started every rendered config without a warning in its log', async () => {
    for (const run of [serverRun, clientRun, impostorServerRun, impostorClientRun]) {
      const log = await fs.readFile(run.logFile, 'utf8');
      expect(log).toContain('Configuration successful');
      // [ui] lines are stunnel's own start-up; numbered ones are connections (the tests' probes).
      expect(log.split('\n').filter((l) => /LOG[0-4]\[ui\]/.test(l)), run.logFile).toEqual([]);
    }
  });

  it('carries ovn-nbctl through client tunnel -> server tunnel -> ovsdb-server', async () => {
    const sw = `sw-${tag}-${randomBytes(2).toString('hex')}`;
    const viaTunnel = `tcp:127.0.0.1:${ports.nb}`;
    const add = await nbctl(viaTunnel, ['ls-add', sw]);
    expect(add.exitCode, add.stderr).toBe(0);
    expect((await nbctl(viaTunnel, ['ls-list'])).stdout).toContain(sw);
    // It landed in the real database (read directly over its unix socket).
    expect((await nbctl(`unix:${path.join(dir, 'nb.sock')}`, ['ls-list'])).stdout).toContain(sw);
  });

  it('accepts TLS 1.2 with a valid client certificate, with an ECDHE + AES-GCM cipher', async () => {
    const r = await probeTls(runner, good());
    expect(r.ok, r.raw).toBe(true);
    expect(r.protocol).toBe('TLSv1.2');
    expect(r.cipher).toMatch(/^ECDHE-(RSA|ECDSA)-AES(128|256)-GCM-SHA(256|384)$/);
    expect(r.cipher).toMatch(ALLOWED_CIPHER_RE);
    expect(r.peerSerial).toBe(certs['central-a']!.serial);
    expect(r.reply).toMatch(/"result":\[\]/);
  });

  it.each([
    ['TLS 1.0', '1'],
    ['TLS 1.1', '1.1'],
    ['TLS 1.3', '1.3'],
  ] as const)('rejects %s (the same probe at TLS 1.2 passes)', async (_label, version) => {
    const r = await probeTls(runner, good({ tlsVersion: version }));
    expect(r.ok, r.raw).toBe(false);
    expect(r.error).toMatch(/protocol version/);
    expect(r.reply).toBeUndefined();
    expect((await probeTls(runner, good({ tlsVersion: '1.2' }))).ok).toBe(true);
  });

  it.each([
    ['a CBC cipher', 'ECDHE-RSA-AES128-SHA256'],
    ['a cipher without ECDHE', 'AES256-GCM-SHA384'],
  ])('rejects %s (an allowed cipher passes and is the one negotiated)', async (_label, cipher) => {
    const r = await probeTls(runner, good({ cipher }));
    expect(r.ok, r.raw).toBe(false);
    expect(r.error).toMatch(/handshake failure/);
    const allowed = await probeTls(runner, good({ cipher: 'ECDHE-RSA-AES128-GCM-SHA256' }));
    expect(allowed.ok, allowed.raw).toBe(true);
    expect(allowed.cipher).toBe('ECDHE-RSA-AES128-GCM-SHA256');
  });

  it('rejects a client without a certificate', async () => {
    const { cert: _c, key: _k, ...noCert } = good();
    const logBefore = (await fs.stat(serverRun.logFile)).size;
    const r = await probeTls(runner, noCert);
    expect(r.ok, r.raw).toBe(false);
    // s_client prints "New, TLSv1.2, Cipher is ..." even here: only the alert tells the truth, and a
    // handshake failure alone could be a cipher mismatch: the server's log says why it refused.
    expect(r.error).toBe('alert: handshake failure');
    const log = (await fs.readFile(serverRun.logFile)).subarray(logBefore).toString('utf8');
    expect(log).toMatch(/peer did not return a certificate/);
    expect((await probeTls(runner, good())).ok).toBe(true);
  });

  it.each([
    ['from another CA', 'foreign-worker', /unknown ca/],
    ['that expired', 'worker-expired', /certificate expired/],
    ['without the clientAuth usage', 'server-only', /unsupported certificate/],
  ])('rejects a client certificate %s', async (_label, name, alert) => {
    const r = await probeTls(runner, good({ cert: certs[name]!.cert, key: certs[name]!.key }));
    expect(r.ok, r.raw).toBe(false);
    expect(r.error).toMatch(alert);
    expect((await probeTls(runner, good())).ok).toBe(true);
  });

  it('rejects a revoked client certificate after the CRL is rewritten and stunnel reloaded', async () => {
    const revokable = { cert: certs['worker-revoked']!.cert, key: certs['worker-revoked']!.key };
    const before = await probeTls(runner, good(revokable));
    expect(before.ok, before.raw).toBe(true);
    await revokeCertificate(pki.dir, 'worker-revoked');
    await reloadStunnel(serverRun.logFile, hup(serverRun.pidFile));
    const after = await probeTls(runner, good(revokable));
    expect(after.ok, after.raw).toBe(false);
    expect(after.error).toMatch(/certificate revoked/);
    expect((await probeTls(runner, good())).ok).toBe(true);
  });

  it('makes the client tunnel refuse a central whose certificate names another host', async () => {
    // The impostor's certificate is fine in itself (same CA), only its name is wrong.
    const direct = await probeTls(runner, good({ host: IMPOSTOR_IP, port: ports.nbImpostor, verifyName: 'central-b' }));
    expect(direct.ok, direct.raw).toBe(true);
    const asCentralA = await probeTls(runner, good({ host: IMPOSTOR_IP, port: ports.nbImpostor }));
    expect(asCentralA.verifyError).toBe('hostname mismatch');

    const logBefore = (await fs.stat(impostorClientRun.logFile)).size;
    const started = Date.now();
    const r = await nbctl(`tcp:127.0.0.1:${ports.nbImpostor}`, ['ls-list'], 3);
    expect(r.exitCode, r.stdout).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    // The client tunnel itself refused the central (log lines written during this call only).
    const log = (await fs.readFile(impostorClientRun.logFile)).subarray(logBefore).toString('utf8');
    expect(log).toContain('CERT: Subject checks failed');
  });

  it('detects a reload with a mismatched key, and the old config keeps serving', async () => {
    const goodKey = await fs.readFile(serverTls.key);
    await fs.copyFile(certs['worker-a']!.key, serverTls.key); // some other key
    try {
      await expect(reloadStunnel(serverRun.logFile, hup(serverRun.pidFile))).rejects.toThrow(/failed to reload[\s\S]*key values mismatch/);
      const r = await probeTls(runner, good());
      expect(r.ok, r.raw).toBe(true);
      expect(r.peerSerial).toBe(certs['central-a']!.serial);
    } finally {
      await fs.writeFile(serverTls.key, goodKey, { mode: 0o600 });
    }
    await reloadStunnel(serverRun.logFile, hup(serverRun.pidFile));
    expect((await probeTls(runner, good())).ok).toBe(true);
  });

  it('reports the serial the listener serves, before and after a certificate rotation', async () => {
    const probe = { host: CENTRAL_IP, port: ports.nb, cert: certs['worker-a']!.cert, key: certs['worker-a']!.key, caFile: pki.caBundle };
    expect(await servedSerial(runner, probe)).toBe(certs['central-a']!.serial);
    const renewed = await issue('central-a', 'central', { sans: [CENTRAL_IP] });
    // Certificate first, then key (the order OVSDB's own TLS needs too).
    await fs.copyFile(renewed.certPath, serverTls.cert);
    await fs.copyFile(renewed.keyPath!, serverTls.key);
    await reloadStunnel(serverRun.logFile, hup(serverRun.pidFile));
    expect(await servedSerial(runner, probe)).toBe(renewed.serial);
  });

  it('checkStunnelConfig names what stunnel cannot load', async () => {
    const broken = path.join(dir, 'broken.conf');
    const conf = await fs.readFile(serverRun.conf, 'utf8');
    await fs.writeFile(broken, conf.replace(/^cert = .*$/m, `cert = ${path.join(dir, 'missing.crt')}`));
    await expect(checkStunnelConfig(runner, broken)).rejects.toThrow(/missing\.crt[\s\S]*No such file or directory/);

    // A bad value is reported with its line number in the file as written.
    const lines = conf.split('\n');
    const idle = lines.findIndex((l) => l.startsWith('TIMEOUTidle'));
    lines[idle] = 'TIMEOUTidle = soon';
    await fs.writeFile(broken, lines.join('\n'));
    await expect(checkStunnelConfig(runner, broken)).rejects.toThrow(`${broken}:${idle + 1}: "TIMEOUTidle = soon": Illegal idle timeout`);
  });
});
