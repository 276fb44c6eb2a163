/**
 * The TLS policy and the admission by role of the stunnel configs every host runs (issue #20's
 * layout), proven with real stunnel, openssl s_client, ovn-nbctl/ovn-sbctl and OVN's
 * ovsdb-server. Every rejection is paired with the nearest accepted probe, so it is the policy
 * (not a broken setup) that refuses.
 *
 * The site: one network namespace per host on one bridge (inside the central's namespace):
 * central-a at .1 (plus an impostor central at .9), worker-a at .2, the cms host ops-a at .3;
 * worker-b (.4) is a site host that never runs, only its certificate is used (revocation). Each
 * host has its own root directory; its stunnel configs, CA bundle and CRL come from ITS RENDERED
 * BUNDLE (renderSiteBundles with that root), written below the root as apply would write them.
 * NB and SB reach ovsdb-server through the root-only unix sockets hostPaths(root).ovsdbSocket();
 * RAFT ends at the central's loopback address L(C).
 *
 * Each database is a one-member RAFT cluster whose cluster port is on L(C): a RAFT probe's echo
 * is answered by ovsdb-server's RAFT listener itself. The socket directories (0700), run and log
 * directories are made by this test, as apply makes them.
 *
 * Counterparts of the cases this file proved on the old sandbox layout (src/stunnel/host.ts: a
 * client service per database with one `connect` per central, plaintext on 127.0.0.1): every case
 * has one here with the same meaning (TLS 1.2 only, ciphers, no/foreign/expired/server-only client
 * certificate, revocation, impostor central, failed reload, served serial, config check), now per
 * service where the policy is per service. Since the server admits by name, the refused client
 * certificates carry an admitted name (worker-a, worker-b), so a refusal is about the certificate
 * and not the name. New: admission by role (NB: centrals + cms, SB: every site host, RAFT:
 * centrals). No old case lost its counterpart: the client tunnels that became unix sockets are
 * reached through the sockets; the old test's free ports are gone (every host is its own namespace).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyFiles, type RenderedFiles } from '../src/fsx.js';
import { parseInventory } from '../src/inventory/index.js';
import type { Inventory } from '../src/inventory/types.js';
import { bundleSource, hostPaths, hostRenderedPaths, pkiPaths, stunnelFiles } from '../src/paths.js';
import { initPki, issueCertificate, revokeCertificate } from '../src/pki/index.js';
import type { LeafRole } from '../src/pki/types.js';
import { certificateSans, renderSiteBundles, type SitePki } from '../src/render/index.js';
import { ZxRunner } from '../src/runner.js';
import { centralLoopback } from '../src/site/topology.js';
import { ALLOWED_CIPHER_RE } from '../src/stunnel/index.js';
import { checkStunnelConfig, reloadStunnel, stunnelBinary } from '../src/tools/stunnel.js';
import { probeTls, servedSerial, type TlsProbeOptions } from '../src/tools/tls.js';
import { fixtureSecret } from './helpers/render-fixture.js';
import { Daemons, missingPrograms } from './helpers/tls-daemons.js';
import { makeForeignCa, makeLeaf, type Pair } from './helpers/tls-fixtures.js';
import { createTlsNetwork, waitForNetnsListener, type TlsNetwork } from './helpers/tls-netns.js';

const runner = new ZxRunner();
const daemons = new Daemons();
const tag = randomBytes(3).toString('hex');
const DAY_MS = 86_400_000;
const SITE = `st-${tag}`;
const NS = { central: `ovnd-st-${tag}-c`, worker: `ovnd-st-${tag}-w`, ops: `ovnd-st-${tag}-o` };
const CENTRAL_IP = '10.77.0.1';
const IMPOSTOR_IP = '10.77.0.9';
const WORKER_IP = '10.77.0.2';
const OPS_IP = '10.77.0.3';
/** central-b's own address: in its certificate, but nobody's in the site. */
const CENTRAL_B_IP = '10.77.0.8';
const L = centralLoopback(SITE, 'central-a');

/** The site; `centralIp` is where central-a is believed to be (the impostor's view puts it at .9). */
function inventory(centralIp: string): Inventory {
  const yaml = `site: ${SITE}
hosts:
  - { name: central-a, addresses: [${centralIp}], roles: [central] }
  - { name: worker-a, addresses: [${WORKER_IP}], roles: [worker], encap: { type: geneve, ip: ${WORKER_IP} } }
  - { name: worker-b, addresses: [10.77.0.4], roles: [worker], encap: { type: geneve, ip: 10.77.0.4 } }
  - { name: ops-a, addresses: [${OPS_IP}], roles: [cms] }
`;
  return parseInventory(yaml, 'stunnel-test-site.yaml').inventory;
}
const INV = inventory(CENTRAL_IP);
const PORTS = INV.ports;

type Kind = 'server' | 'client';
interface HostRun {
  root: string;
  netns: string;
  conf: Partial<Record<Kind, string>>;
}

let dir: string;
let pki: ReturnType<typeof pkiPaths>;
let net: TlsNetwork | undefined;
const certs: Record<string, Pair & { serial?: string }> = {};
let central: HostRun;
let worker: HostRun;
let ops: HostRun;
let impostor: HostRun;
let workerOfImpostor: HostRun;

const sitePki = async (): Promise<SitePki> => ({ caBundlePem: await fs.readFile(pki.caBundle, 'utf8'), crlPem: await fs.readFile(pki.crl, 'utf8') });

/** Issues a certificate and keeps its own copy (the PKI's files of a name are overwritten by the next issue). */
async function issue(label: string, name: string, role: LeafRole, extra: { sans?: string[]; now?: Date; notBefore?: Date; validityDays?: number } = {}) {
  const c = await issueCertificate(pki.dir, { name, role, keyBits: 2048, ...extra });
  const pair = { cert: path.join(dir, 'certs', `${label}.crt`), key: path.join(dir, 'certs', `${label}.key`), serial: c.serial };
  await fs.mkdir(path.dirname(pair.cert), { recursive: true });
  await fs.copyFile(c.certPath, pair.cert);
  await fs.copyFile(c.keyPath!, pair.key);
  certs[label] = pair;
  return pair;
}

const siteHost = (inv: Inventory, name: string) => inv.hosts.find((h) => h.name === name)!;

/**
 * Writes what `hostName`'s rendered bundle (rendered for `root`) places for stunnel: its configs,
 * the CA bundle and the CRL, at their manifest destinations below the root.
 */
async function placeFromBundle(inv: Inventory, hostName: string, root: string): Promise<Partial<Record<Kind, string>>> {
  const bundle = renderSiteBundles(inv, await sitePki(), { metadataSecret: fixtureSecret(), root }).get(hostName)!;
  const hp = hostPaths('/');
  const confDest = { server: hostRenderedPaths('/').stunnelConf('server'), client: hostRenderedPaths('/').stunnelConf('client') };
  const wanted = new Set<string>([confDest.server, confDest.client, hp.pki.caBundle, hp.pki.crl]);
  const plan: RenderedFiles = new Map();
  for (const entry of bundle.manifest.files) {
    if (!wanted.has(entry.dest)) continue;
    const file = bundle.files.get(bundleSource(entry.dest))!;
    plan.set(entry.dest.replace(/^\/+/, ''), { content: file.content, mode: entry.mode });
  }
  await applyFiles(root, plan);
  const out: Partial<Record<Kind, string>> = {};
  for (const kind of ['server', 'client'] as const) if (plan.has(confDest[kind].slice(1))) out[kind] = path.join(root, confDest[kind]);
  return out;
}

/** A host root as apply leaves it for stunnel: bundle files, the host's certificate and key, the directories. */
async function prepareHost(inv: Inventory, hostName: string, label: string, certLabel: string, netns: string): Promise<HostRun> {
  const root = path.join(dir, 'hosts', label);
  const hp = hostPaths(root);
  for (const d of [hp.runDir, hp.logDir, hp.pki.dir]) await fs.mkdir(d, { recursive: true });
  await fs.mkdir(hp.ovsdbDir, { recursive: true, mode: 0o700 });
  await fs.copyFile(certs[certLabel]!.cert, hp.pki.cert);
  await fs.copyFile(certs[certLabel]!.key, hp.pki.key);
  await fs.chmod(hp.pki.key, 0o600);
  const conf = await placeFromBundle(inv, hostName, root);
  return { root, netns, conf };
}

/** Checks a config (no errors, no warnings) and starts it in the foreground in the host's namespace. */
async function startStunnel(h: HostRun, kind: Kind): Promise<void> {
  const conf = h.conf[kind]!;
  const check = await checkStunnelConfig(runner, conf);
  expect(check.warnings, `${conf} warnings`).toEqual([]);
  daemons.start(['ip', 'netns', 'exec', h.netns, stunnelBinary(), conf]);
}

const files = (h: HostRun, kind: Kind) => stunnelFiles(kind, hostPaths(h.root));
/** This test's stunnels run unmanaged (no supervisor): the reload signal goes to the pid file's process. */
const hup = (h: HostRun, kind: Kind) => async (): Promise<void> => {
  process.kill(Number((await fs.readFile(files(h, kind).pidFile, 'utf8')).trim()), 'SIGHUP');
};
const reload = (h: HostRun, kind: Kind) => reloadStunnel(files(h, kind).logFile, hup(h, kind));
const logSize = async (h: HostRun, kind: Kind) => (await fs.stat(files(h, kind).logFile)).size;
const logSince = async (h: HostRun, kind: Kind, offset: number) => (await fs.readFile(files(h, kind).logFile)).subarray(offset).toString('utf8');

async function waitForSocket(file: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fs.stat(file).catch(() => undefined))?.isSocket()) {
    if (Date.now() > deadline) throw new Error(`no unix socket at ${file} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** OVSDB JSON-RPC echo: proves data really flows to ovsdb-server and back. */
function echo(): Pick<TlsProbeOptions, 'send' | 'expect'> {
  const id = `probe-${randomBytes(4).toString('hex')}`;
  return { send: JSON.stringify({ method: 'echo', params: [], id }), expect: new RegExp(`"id":"${id}","result":\\[\\]`) };
}

type Service = 'nb' | 'sb' | 'nbRaft' | 'sbRaft';
const SERVICES: Service[] = ['nb', 'sb', 'nbRaft', 'sbRaft'];
/** A certificate each service admits (a host of its role), probed from the worker's namespace. */
const ADMITTED_AS: Record<Service, string> = { nb: 'ops-a', sb: 'worker-a', nbRaft: 'central-a', sbRaft: 'central-a' };

/** A TLS 1.2 probe of the central's `service` port, from the worker's namespace, with a certificate the service admits. */
function good(service: Service = 'sb', over: Partial<TlsProbeOptions> = {}): TlsProbeOptions {
  const as = certs[ADMITTED_AS[service]]!;
  return {
    host: CENTRAL_IP,
    port: PORTS[service],
    netns: NS.worker,
    caFile: pki.caBundle,
    verifyName: 'central-a',
    cert: as.cert,
    key: as.key,
    tlsVersion: '1.2',
    ...echo(),
    ...over,
  };
}

async function ctl(tool: 'ovn-nbctl' | 'ovn-sbctl', netns: string, socket: string, args: string[], timeoutS = 10) {
  return runner.run([tool, `--db=unix:${socket}`, `--timeout=${timeoutS}`, ...args], { netns, allowFailure: true, timeoutMs: (timeoutS + 5) * 1000 });
}

const missing = missingPrograms(['ip', 'bash', 'ovsdb-tool', 'ovsdb-server', 'ovn-nbctl', 'ovn-sbctl', 'openssl', stunnelBinary()]);
const notRoot = process.getuid?.() !== 0;
if (missing.length > 0 || notRoot) console.warn(`stunnel TLS matrix skipped: ${notRoot ? 'needs root (network namespaces)' : `${missing.join(', ')} not installed (scripts/install-deps.sh)`}`);

describe.skipIf(missing.length > 0 || notRoot)('stunnel on the real layout: each host its namespace, root and rendered bundle (real stunnel, openssl, OVN)', () => {
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), `ovnd-stunnel-${tag}-`));
    net = await createTlsNetwork(runner, [
      { netns: NS.central, addresses: [CENTRAL_IP, IMPOSTOR_IP] },
      { netns: NS.worker, addresses: [WORKER_IP] },
      { netns: NS.ops, addresses: [OPS_IP] },
    ]);

    pki = pkiPaths(path.join(dir, 'pki'));
    await initPki(pki.dir, { keyBits: 2048, commonName: `stunnel-test-${tag}` });
    // Valid for one day, ten days ago; issued first, so that worker-a's current one is the good one.
    const past = new Date(Date.now() - 10 * DAY_MS);
    await issue('worker-a-expired', 'worker-a', 'worker', { sans: certificateSans(siteHost(INV, 'worker-a')), now: past, notBefore: past, validityDays: 1 });
    await issue('central-a', 'central-a', 'central', { sans: certificateSans(siteHost(INV, 'central-a')) });
    await issue('worker-a', 'worker-a', 'worker', { sans: certificateSans(siteHost(INV, 'worker-a')) });
    await issue('worker-b', 'worker-b', 'worker', { sans: certificateSans(siteHost(INV, 'worker-b')) });
    await issue('ops-a', 'ops-a', 'cms', { sans: certificateSans(siteHost(INV, 'ops-a')) });
    // Of our CA, but for a name that is no host of the site.
    await issue('stranger', 'stranger', 'worker', { sans: ['stranger'] });
    // The impostor: a central of the same CA, with its own name and address.
    await issue('central-b', 'central-b', 'central', { sans: ['central-b', CENTRAL_B_IP] });
    // Named worker-a, but from another CA; and of our CA but for servers only.
    const foreignCa = await makeForeignCa(path.join(dir, 'foreign'), `foreign-ca-${tag}`);
    const clientExt = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'subjectAltName=DNS:worker-a'];
    certs['foreign-worker'] = await makeLeaf(path.join(dir, 'foreign'), 'worker-a', foreignCa, [...clientExt, 'extendedKeyUsage=clientAuth']);
    certs['server-only'] = await makeLeaf(path.join(dir, 'odd'), 'worker-a', { cert: pki.caCert, key: pki.caKey }, [...clientExt, 'extendedKeyUsage=serverAuth']);

    const impostorInv = inventory(IMPOSTOR_IP);
    central = await prepareHost(INV, 'central-a', 'central-a', 'central-a', NS.central);
    worker = await prepareHost(INV, 'worker-a', 'worker-a', 'worker-a', NS.worker);
    ops = await prepareHost(INV, 'ops-a', 'ops-a', 'ops-a', NS.ops);
    // The impostor runs central-a's rendered server config (for .9) with central-b's certificate;
    // a second root on the worker holds worker-a's client config of a site that puts central-a at .9.
    impostor = await prepareHost(impostorInv, 'central-a', 'impostor', 'central-b', NS.central);
    workerOfImpostor = await prepareHost(impostorInv, 'worker-a', 'worker-a-of-impostor', 'worker-a', NS.worker);
    expect(Object.keys(central.conf)).toEqual(['server']);
    expect(Object.keys(worker.conf)).toEqual(['client']);
    expect(Object.keys(ops.conf)).toEqual(['client']);

    // ovsdb-server per database in the central's namespace, on the rendered unix socket (and the
    // impostor's); each database a one-member RAFT cluster whose cluster port is on L(C).
    for (const [db, schema, raft] of [
      ['nb', 'ovn-nb', INV.loopbackPorts.nbRaft],
      ['sb', 'ovn-sb', INV.loopbackPorts.sbRaft],
    ] as const) {
      const dbDir = path.join(dir, 'db');
      await fs.mkdir(dbDir, { recursive: true });
      const dbFile = path.join(dbDir, `${db}.db`);
      await runner.run(['ovsdb-tool', 'create-cluster', dbFile, `/usr/share/ovn/${schema}.ovsschema`, `tcp:${L}:${raft}`]);
      daemons.start([
        'ip', 'netns', 'exec', NS.central,
        'ovsdb-server',
        dbFile,
        `--remote=punix:${hostPaths(central.root).ovsdbSocket('central-a', db)}`,
        `--remote=punix:${hostPaths(impostor.root).ovsdbSocket('central-a', db)}`,
        `--pidfile=${path.join(dbDir, `${db}.pid`)}`,
        `--unixctl=${path.join(dbDir, `${db}.ctl`)}`,
        `--log-file=${path.join(dbDir, `${db}.log`)}`,
      ]);
      await waitForNetnsListener(runner, NS.central, L, raft);
    }

    await startStunnel(central, 'server');
    await startStunnel(impostor, 'server');
    await startStunnel(worker, 'client');
    await startStunnel(ops, 'client');
    await startStunnel(workerOfImpostor, 'client');
    await Promise.all([
      ...SERVICES.map((s) => waitForNetnsListener(runner, NS.worker, CENTRAL_IP, PORTS[s])),
      waitForNetnsListener(runner, NS.worker, IMPOSTOR_IP, PORTS.sb),
      waitForSocket(hostPaths(worker.root).ovsdbSocket('central-a', 'sb')),
      waitForSocket(hostPaths(ops.root).ovsdbSocket('central-a', 'nb')),
      waitForSocket(hostPaths(ops.root).ovsdbSocket('central-a', 'sb')),
      waitForSocket(hostPaths(workerOfImpostor.root).ovsdbSocket('central-a', 'sb')),
    ]);
  });

  afterAll(async () => {
    await daemons.stopAll();
    await net?.destroy();
    if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
  });

  it('started every rendered config without a warning in its log', async () => {
    for (const [h, kind] of [[central, 'server'], [impostor, 'server'], [worker, 'client'], [ops, 'client'], [workerOfImpostor, 'client']] as const) {
      const log = await fs.readFile(files(h, kind).logFile, 'utf8');
      expect(log).toContain('Configuration successful');
      // [ui] lines are stunnel's own start-up; numbered ones are connections (the tests' probes).
      expect(log.split('\n').filter((l) => /LOG[0-4]\[ui\]/.test(l)), files(h, kind).logFile).toEqual([]);
    }
  });

  it("carries ovn-sbctl (worker) and ovn-nbctl (cms host) through their tunnels' unix sockets -> the central's server -> ovsdb-server's unix sockets", async () => {
    // The tunnels a host has: the worker the SB only, the cms host NB and SB (the rendered layout, as stunnel made them).
    const socketsOf = async (h: HostRun) => (await fs.readdir(hostPaths(h.root).ovsdbDir)).sort();
    expect(await socketsOf(worker)).toEqual(['central-a.sb']);
    expect(await socketsOf(ops)).toEqual(['central-a.nb', 'central-a.sb']);

    const ch = `ch-${tag}-${randomBytes(2).toString('hex')}`;
    const add = await ctl('ovn-sbctl', NS.worker, hostPaths(worker.root).ovsdbSocket('central-a', 'sb'), ['chassis-add', ch, 'geneve', WORKER_IP]);
    expect(add.exitCode, add.stderr).toBe(0);
    // It landed in the real database (read directly on ovsdb-server's own socket on the central).
    const direct = await ctl('ovn-sbctl', NS.central, hostPaths(central.root).ovsdbSocket('central-a', 'sb'), ['--bare', '--columns=name', 'list', 'Chassis']);
    expect(direct.stdout).toContain(ch);

    const sw = `sw-${tag}-${randomBytes(2).toString('hex')}`;
    for (const args of [['ls-add', sw], ['ls-list']]) {
      const r = await ctl('ovn-nbctl', NS.ops, hostPaths(ops.root).ovsdbSocket('central-a', 'nb'), args);
      expect(r.exitCode, r.stderr).toBe(0);
    }
    expect((await ctl('ovn-nbctl', NS.central, hostPaths(central.root).ovsdbSocket('central-a', 'nb'), ['ls-list'])).stdout).toContain(sw);
  });

  it.each(SERVICES)('accepts TLS 1.2 on %s with a certificate of its role, with an ECDHE + AES-GCM cipher', async (service) => {
    const r = await probeTls(runner, good(service));
    expect(r.ok, r.raw).toBe(true);
    expect(r.protocol).toBe('TLSv1.2');
    expect(r.cipher).toMatch(/^ECDHE-(RSA|ECDSA)-AES(128|256)-GCM-SHA(256|384)$/);
    expect(r.cipher).toMatch(ALLOWED_CIPHER_RE);
    expect(r.peerSerial).toBe(certs['central-a']!.serial);
    expect(r.reply).toMatch(/"result":\[\]/);
  });

  it("admits by role at the central's server: NB centrals + cms, SB every site host, RAFT centrals; a certificate of the CA for no site host nowhere", async () => {
    const admits: Record<Service, string[]> = {
      nb: ['central-a', 'ops-a'],
      sb: ['central-a', 'ops-a', 'worker-a', 'worker-b'],
      nbRaft: ['central-a'],
      sbRaft: ['central-a'],
    };
    const got: Record<string, string[]> = {};
    for (const service of SERVICES) {
      got[service] = [];
      for (const who of ['central-a', 'ops-a', 'worker-a', 'worker-b', 'stranger']) {
        const logBefore = await logSize(central, 'server');
        const r = await probeTls(runner, good(service, { cert: certs[who]!.cert, key: certs[who]!.key }));
        if (r.ok) {
          got[service].push(who);
          continue;
        }
        // A refusal is the server's verdict on the certificate, inside the TLS 1.2 handshake, and
        // its log says why: the name check (checkHost), not the chain, the CRL or the cipher.
        expect(r.error, `${service} as ${who}: ${r.raw}`).toBe('alert: internal error');
        const log = await logSince(central, 'server', logBefore);
        expect(log, `${service} as ${who}`).toMatch(new RegExp(`CERT: Subject checks failed\\n.*Rejected by CERT at depth=0: .*CN=${who}\\n`));
      }
    }
    expect(got).toEqual(admits);
  });

  it.each(SERVICES.flatMap((s) => (['1', '1.1', '1.3'] as const).map((v) => [s, v] as const)))(
    'rejects on %s TLS %s (the same probe at TLS 1.2 passes)',
    async (service, version) => {
      const r = await probeTls(runner, good(service, { tlsVersion: version }));
      expect(r.ok, r.raw).toBe(false);
      expect(r.error).toMatch(/protocol version/);
      expect(r.reply).toBeUndefined();
      expect((await probeTls(runner, good(service, { tlsVersion: '1.2' }))).ok).toBe(true);
    },
  );

  it.each(
    SERVICES.flatMap((s) =>
      [
        ['a CBC cipher', 'ECDHE-RSA-AES128-SHA256'],
        ['a cipher without ECDHE', 'AES256-GCM-SHA384'],
      ].map(([label, cipher]) => [s, label!, cipher!] as const),
    ),
  )('rejects on %s %s (an allowed cipher passes and is the one negotiated)', async (service, _label, cipher) => {
    const r = await probeTls(runner, good(service, { cipher }));
    expect(r.ok, r.raw).toBe(false);
    expect(r.error).toMatch(/handshake failure/);
    const allowed = await probeTls(runner, good(service, { cipher: 'ECDHE-RSA-AES128-GCM-SHA256' }));
    expect(allowed.ok, allowed.raw).toBe(true);
    expect(allowed.cipher).toBe('ECDHE-RSA-AES128-GCM-SHA256');
  });

  it.each(SERVICES)('rejects on %s a client without a certificate', async (service) => {
    const { cert: _c, key: _k, ...noCert } = good(service);
    const logBefore = await logSize(central, 'server');
    const r = await probeTls(runner, noCert);
    expect(r.ok, r.raw).toBe(false);
    // s_client prints "New, TLSv1.2, Cipher is ..." even here: only the alert tells the truth, and a
    // handshake failure alone could be a cipher mismatch: the server's log says why it refused.
    expect(r.error).toBe('alert: handshake failure');
    expect(await logSince(central, 'server', logBefore)).toMatch(/peer did not return a certificate/);
    expect((await probeTls(runner, good(service))).ok).toBe(true);
  });

  it.each([
    ['from another CA (named worker-a)', 'foreign-worker', /unknown ca/],
    ['that expired (worker-a, of our CA)', 'worker-a-expired', /certificate expired/],
    ['without the clientAuth usage (worker-a, of our CA)', 'server-only', /unsupported certificate/],
  ])('rejects a client certificate %s, where the same name with a good certificate passes', async (_label, name, alert) => {
    const r = await probeTls(runner, good('sb', { cert: certs[name]!.cert, key: certs[name]!.key }));
    expect(r.ok, r.raw).toBe(false);
    expect(r.error).toMatch(alert);
    expect((await probeTls(runner, good('sb'))).ok).toBe(true);
  });

  it("rejects a revoked client certificate once the central's bundle carries the new CRL and stunnel reloaded", async () => {
    const revokable = { cert: certs['worker-b']!.cert, key: certs['worker-b']!.key };
    const before = await probeTls(runner, good('sb', revokable));
    expect(before.ok, before.raw).toBe(true);
    await revokeCertificate(pki.dir, 'worker-b');
    // The new CRL reaches the central the way it always does: in its rendered bundle.
    await placeFromBundle(INV, 'central-a', central.root);
    expect(await fs.readFile(hostPaths(central.root).pki.crl, 'utf8')).toBe(await fs.readFile(pki.crl, 'utf8'));
    await reload(central, 'server');
    const after = await probeTls(runner, good('sb', revokable));
    expect(after.ok, after.raw).toBe(false);
    expect(after.error).toMatch(/certificate revoked/);
    expect((await probeTls(runner, good('sb'))).ok).toBe(true);
  });

  it('makes the client tunnel refuse a central whose certificate names another host', async () => {
    // The impostor's certificate is fine in itself (same CA), only its names are wrong.
    const direct = await probeTls(runner, good('sb', { host: IMPOSTOR_IP, verifyName: 'central-b' }));
    expect(direct.ok, direct.raw).toBe(true);
    const asCentralA = await probeTls(runner, good('sb', { host: IMPOSTOR_IP }));
    expect(asCentralA.verifyError).toBe('hostname mismatch');

    const logBefore = await logSize(workerOfImpostor, 'client');
    const started = Date.now();
    const r = await ctl('ovn-sbctl', NS.worker, hostPaths(workerOfImpostor.root).ovsdbSocket('central-a', 'sb'), ['list', 'SB_Global'], 3);
    expect(r.exitCode, r.stdout).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    // The client tunnel itself refused the central (log lines written during this call only).
    expect(await logSince(workerOfImpostor, 'client', logBefore)).toContain('CERT: Subject checks failed');
  });

  it('detects a reload with a mismatched key, and the old config keeps serving', async () => {
    const keyFile = hostPaths(central.root).pki.key;
    const goodKey = await fs.readFile(keyFile);
    await fs.copyFile(certs['worker-a']!.key, keyFile); // some other key
    try {
      await expect(reload(central, 'server')).rejects.toThrow(/failed to reload[\s\S]*key values mismatch/);
      const r = await probeTls(runner, good('sb'));
      expect(r.ok, r.raw).toBe(true);
      expect(r.peerSerial).toBe(certs['central-a']!.serial);
    } finally {
      await fs.writeFile(keyFile, goodKey, { mode: 0o600 });
    }
    await reload(central, 'server');
    expect((await probeTls(runner, good('sb'))).ok).toBe(true);
  });

  it('reports the serial the listener serves, before and after a certificate rotation', async () => {
    const w = certs['worker-a']!;
    const probe = { host: CENTRAL_IP, port: PORTS.sb, netns: NS.worker, cert: w.cert, key: w.key, caFile: pki.caBundle };
    expect(await servedSerial(runner, probe)).toBe(certs['central-a']!.serial);
    const renewed = await issue('central-a-renewed', 'central-a', 'central', { sans: certificateSans(siteHost(INV, 'central-a')) });
    // Certificate first, then key (the order OVSDB's own TLS needs too).
    await fs.copyFile(renewed.cert, hostPaths(central.root).pki.cert);
    await fs.copyFile(renewed.key, hostPaths(central.root).pki.key);
    await reload(central, 'server');
    expect(await servedSerial(runner, probe)).toBe(renewed.serial);
  });

  it('checkStunnelConfig names what stunnel cannot load', async () => {
    const broken = path.join(dir, 'broken.conf');
    const conf = await fs.readFile(central.conf.server!, 'utf8');
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
