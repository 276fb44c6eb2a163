/**
 * The rendered bundles of three centrals and a worker make a working site: each host in its own
 * network namespace (its own loopback, so every L(C) and port is free), every service of each
 * manifest runs with its rendered argv, env and stunnel configs (paths moved under a temporary
 * root per host; every NB/SB endpoint is a unix socket in the host's socket directory, a central's
 * local-access.nft is loaded in its namespace). The first central creates the NB and SB clusters, the others join through
 * their stunnel clients; a write on one member is read on another through the remote list every
 * host uses; one ovn-northd is active; the worker's ovn-controller registers its chassis through
 * its stunnel client. (apply's job, done by hand here, so that render is tested alone.)
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BundleManifest } from '../src/bundle/manifest.js';
import type { Host, Inventory } from '../src/inventory/types.js';
import { hostPaths, hostRenderedPaths, pkiPaths } from '../src/paths.js';
import { initPki, issueCertificate } from '../src/pki/index.js';
import { renderSiteBundles } from '../src/render/index.js';
import { ZxRunner } from '../src/runner.js';
import { ovsdbRemotes, siteTopology } from '../src/site/topology.js';
import { Daemons, missingPrograms } from './helpers/tls-daemons.js';

const PROGRAMS = ['ip', 'nft', 'ovsdb-tool', 'ovsdb-server', 'ovs-appctl', 'ovs-vsctl', 'ovs-vswitchd', 'ovn-nbctl', 'ovn-sbctl', 'ovn-appctl', 'ovn-northd', 'ovn-controller', 'stunnel4'];
const missing = missingPrograms(PROGRAMS);
if (missing.length > 0) process.stderr.write(`render-raft: ${missing.join(', ')} not installed; skipping\n`);

const runner = new ZxRunner();
const daemons = new Daemons();
const tag = `rr${randomBytes(3).toString('hex')}`;
const hub = `${tag}-hub`;
const names = ['central1', 'central2', 'central3'];
const worker = 'worker1';
const netns = (host: string) => `${tag}-${host}`;
let dir: string;
let bundles: Map<string, { manifest: BundleManifest; files: Map<string, { content: string | Uint8Array; mode?: number }> }>;
let inv: Inventory;
const created: string[] = [];

/** Every path render uses on a host, moved under `root` (one pass, so /var/run/ovn-deploy stays whole). */
function rooted(root: string, text: string): string {
  return text.replace(/\/etc\/(?:ovn-deploy|openvswitch)|\/var\/(?:run|log|lib)\/(?:ovn(?:-deploy)?|openvswitch)(?=[/\s:,]|$)/g, (m) => `${root}${m}`);
}

const rootOf = (host: string) => path.join(dir, host);

async function ip(...args: string[]): Promise<void> {
  await runner.run(['ip', ...args], { timeoutMs: 10_000 });
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  if (missing.length > 0) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-raft-'));
  // Three hosts on one segment, the segment's bridge inside a namespace of its own.
  await ip('netns', 'add', hub);
  created.push(hub);
  await ip('-n', hub, 'link', 'add', 'br0', 'type', 'bridge');
  await ip('-n', hub, 'link', 'set', 'br0', 'up');
  const hosts: Host[] = [];
  for (const [i, name] of [...names, worker].entries()) {
    const ns = netns(name);
    await ip('netns', 'add', ns);
    created.push(ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', hub);
    await ip('-n', hub, 'link', 'set', `p${i}`, 'master', 'br0', 'up');
    await ip('-n', ns, 'addr', 'add', `10.77.0.${i + 1}/24`, 'dev', 'eth0');
    await ip('-n', ns, 'link', 'set', 'eth0', 'up');
    hosts.push(
      name === worker
        ? { name, addresses: [`10.77.0.${i + 1}`], dnsNames: [], roles: ['worker'], datapath: 'netdev', systemId: `${tag}-${name}`, encap: { type: 'geneve', ip: `10.77.0.${i + 1}` } }
        : { name, addresses: [`10.77.0.${i + 1}`], dnsNames: [], roles: ['central'], datapath: 'system', systemId: name },
    );
  }
  inv = {
    site: tag,
    tls: { mode: 'stunnel', sbAdminPort: 6648 },
    ports: { nb: 6641, sb: 6642, nbRaft: 6643, sbRaft: 6644 },
    loopbackPorts: { nb: 16641, sb: 16642, nbRaft: 16643, sbRaft: 16644 },
    certificates: { caValidityDays: 30, leafValidityDays: 7, renewalWindowDays: 1, caKeyBits: 2048, leafKeyBits: 2048 },
    hosts,
  };
  const pkiDir = path.join(dir, 'pki');
  await initPki(pkiDir, { keyBits: 2048, commonName: tag });
  const p = pkiPaths(pkiDir);
  for (const h of hosts) {
    const c = bundlesCertificate(h);
    await issueCertificate(pkiDir, { name: c.name, role: c.role, sans: c.sans, keyBits: 2048 });
  }
  bundles = renderSiteBundles(inv, { caBundlePem: await readFile(p.caBundle, 'utf8'), crlPem: await readFile(p.crl, 'utf8') });

  // What apply would do: place the files, the host's certificate and key, the db files.
  const hp = hostPaths();
  for (const h of hosts) {
    const root = rootOf(h.name);
    const bundle = bundles.get(h.name)!;
    for (const f of bundle.manifest.files) {
      const file = path.join(root, f.dest);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, rooted(root, String(bundle.files.get(f.source)?.content)), { mode: f.mode });
    }
    await writeFile(path.join(root, hp.pki.cert), await readFile(p.cert(h.name)));
    await writeFile(path.join(root, hp.pki.key), await readFile(p.key(h.name)), { mode: 0o600 });
    for (const d of [hp.ovn.dbDir, hp.ovn.runDir, hp.ovn.logDir, hp.ovs.dbDir, hp.ovs.runDir, hp.ovs.logDir, hp.runDir, hp.logDir]) {
      await mkdir(path.join(root, d), { recursive: true });
    }
    // Every NB/SB endpoint of the host is a unix socket in here (apply makes it 0700).
    await mkdir(path.join(root, hp.ovsdbDir), { recursive: true, mode: 0o700 });
    // A central's local-access rules (RAFT loopback ports: root only), loaded as apply does, in
    // the host's own namespace: the rendered file loads, and RAFT (root's) still forms below.
    const localAccess = bundle.manifest.files.find((f) => f.dest === hostRenderedPaths().localAccess);
    expect(localAccess !== undefined, `${h.name}: local-access.nft in the bundle`).toBe(h.roles.includes('central'));
    if (localAccess !== undefined) await runner.run(['nft', '-f', path.join(root, localAccess.dest)], { netns: netns(h.name), timeoutMs: 10_000 });
    for (const r of bundle.manifest.raft) {
      const db = rooted(root, r.dbFile);
      await runner.run(r.bootstrap ? ['ovsdb-tool', 'create-cluster', db, r.schema, r.localAddress] : ['ovsdb-tool', 'join-cluster', db, r.name, r.localAddress, ...r.peers], {
        timeoutMs: 10_000,
      });
    }
    for (const d of bundle.manifest.standaloneDbs) await runner.run(['ovsdb-tool', 'create', rooted(root, d.dbFile), d.schema], { timeoutMs: 10_000 });
  }
  const start = async (h: Host, stage: 0 | 1) => {
    const root = rootOf(h.name);
    for (const s of bundles.get(h.name)!.manifest.services.filter((x) => x.stage === stage)) {
      const env = Object.fromEntries(Object.entries(s.env).map(([k, v]) => [k, rooted(root, v)]));
      daemons.start(['ip', 'netns', 'exec', netns(h.name), ...s.argv.map((a) => rooted(root, a))], { env: { ...process.env, ...env } });
    }
  };
  for (const h of hosts) await start(h, 0);
  // What apply does between the stages on a worker: OVS's external_ids from the manifest (ovn-remote
  // names the worker's SB sockets: moved under its root too).
  const ovs = bundles.get(worker)!.manifest.ovs!;
  const vsctl = ['ovs-vsctl', `--db=unix:${rooted(rootOf(worker), ovs.dbSock)}`, '--timeout=10'];
  await waitFor('the worker conf.db socket', async () => ((await runner.run([...vsctl, '--no-wait', 'init'], { allowFailure: true })).exitCode === 0 ? true : undefined));
  await runner.run([...vsctl, '--no-wait', 'set', 'Open_vSwitch', '.', ...Object.entries(ovs.externalIds).map(([k, v]) => `external_ids:${k}="${rooted(rootOf(worker), v)}"`)]);
  for (const h of hosts) await start(h, 1);
}, 120_000);

/** The certificate each host's manifest asks for (render computes it; the test PKI signs it). */
function bundlesCertificate(h: Host): { name: string; role: 'central' | 'worker'; sans: string[] } {
  return { name: h.name, role: h.roles.includes('central') ? 'central' : 'worker', sans: [h.name, ...h.addresses] };
}

afterAll(async () => {
  await daemons.stopAll();
  for (const ns of created.reverse()) await runner.run(['ip', 'netns', 'del', ns], { allowFailure: true });
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('three rendered centrals and a worker', () => {
  it.skipIf(missing.length > 0)('form NB and SB RAFT clusters over the rendered stunnel configs, one active northd, and a registered chassis', async () => {
    const hp = hostPaths();
    const status = async (host: string) =>
      (await runner.run(['ovs-appctl', '-t', rooted(rootOf(host), hp.ovn.nbCtl), 'cluster/status', 'OVN_Northbound'], { netns: netns(host), allowFailure: true, timeoutMs: 5_000 })).stdout;
    // Every member is in, sees all three servers and knows the leader.
    for (const host of names) {
      let last = '';
      await waitFor(`${host} in a 3-member cluster`, async () => {
        const s = await status(host);
        last = s;
        const servers = s.split('Servers:')[1] ?? '';
        return /Leader: (?!unknown)\S+/.test(s) && /Status: cluster member/.test(s) && (servers.match(/^\s+[0-9a-f]{4} \(/gm) ?? []).length === 3 ? s : undefined;
      }).catch(async (e: unknown) => {
        const logs = await Promise.all(
          ['var/log/ovn-deploy/stunnel-client.log', 'var/log/ovn-deploy/stunnel-server.log', 'var/log/ovn/ovsdb-server-nb.log'].map(async (f) =>
            readFile(path.join(rootOf(host), f), 'utf8').then((t) => `== ${f}\n${t.split('\n').slice(-15).join('\n')}`, () => `== ${f}: none`),
          ),
        );
        throw new Error(`${(e as Error).message}\n${last}\n${logs.join('\n')}`);
      });
    }
    const c1 = await status('central1');
    for (const lo of siteTopology(inv).centrals.map((c) => c.loopback)) expect(c1).toContain(`tcp:${lo}:16643`);

    // A write on the bootstrap member (its unix socket) ...
    const sock = (host: string) => `unix:${rooted(rootOf(host), hp.ovn.nbSock)}`;
    await runner.run(['ovn-nbctl', `--db=${sock('central1')}`, '--no-leader-only', 'init'], { netns: netns('central1'), timeoutMs: 20_000 });
    await runner.run(['ovn-nbctl', `--db=${sock('central1')}`, '--no-leader-only', 'ls-add', `${tag}-ls`], { netns: netns('central1'), timeoutMs: 20_000 });
    // ... is read on central3 through the remote list every central uses (its stunnel client's
    // sockets for the others), moved under central3's root.
    const remotes = rooted(rootOf('central3'), ovsdbRemotes(siteTopology(inv), 'nb'));
    const seen = await waitFor('the switch on central3', async () => {
      const r = await runner.run(['ovn-nbctl', `--db=${remotes}`, '--no-leader-only', '--timeout=5', 'ls-list'], { netns: netns('central3'), allowFailure: true, timeoutMs: 10_000 });
      return r.stdout.includes(`${tag}-ls`) ? r.stdout : undefined;
    });
    expect(seen).toContain(`${tag}-ls`);
    // The remote list reaches another member only through stunnel: central3's tunnel to central2 alone also has it.
    const other = await runner.run(['ovn-nbctl', `--db=unix:${rooted(rootOf('central3'), hp.ovsdbSocket('central2', 'nb'))}`, '--no-leader-only', '--timeout=5', 'ls-list'], {
      netns: netns('central3'),
      timeoutMs: 10_000,
    });
    expect(other.stdout).toContain(`${tag}-ls`);

    // The SB cluster formed too, and exactly one ovn-northd holds the lock.
    const sbStatus = await runner.run(['ovs-appctl', '-t', rooted(rootOf('central2'), hp.ovn.sbCtl), 'cluster/status', 'OVN_Southbound'], { netns: netns('central2'), timeoutMs: 5_000 });
    expect(sbStatus.stdout).toMatch(/Status: cluster member/);
    const northd = async () =>
      Promise.all(
        names.map(async (h) => (await runner.run(['ovn-appctl', '-t', rooted(rootOf(h), hp.ovn.northdCtl), 'status'], { netns: netns(h), allowFailure: true, timeoutMs: 5_000 })).stdout.trim()),
      );
    const states = await waitFor('one active northd', async () => {
      const s = await northd();
      return s.filter((x) => x === 'Status: active').length === 1 && s.filter((x) => x === 'Status: standby').length === 2 ? s : undefined;
    });
    expect(states.sort()).toEqual(['Status: active', 'Status: standby', 'Status: standby']);

    // The worker's chassis registers in the SB through its stunnel client: its only endpoints are
    // the centrals' SB sockets (a chassis never gets the NB).
    const workerSockets = (await readdir(path.join(rootOf(worker), hp.ovsdbDir))).sort();
    expect(workerSockets).toEqual(names.map((c) => `${c}.sb`).sort());
    const sbRemotes = rooted(rootOf('central1'), ovsdbRemotes(siteTopology(inv), 'sb'));
    const chassis = await waitFor('the worker chassis in the SB', async () => {
      const r = await runner.run(['ovn-sbctl', `--db=${sbRemotes}`, '--no-leader-only', '--timeout=5', '--bare', '--columns=name,hostname', 'list', 'Chassis'], {
        netns: netns('central1'),
        allowFailure: true,
        timeoutMs: 10_000,
      });
      return r.stdout.includes(`${tag}-${worker}`) ? r.stdout : undefined;
    });
    expect(chassis).toContain(worker);
  }, 120_000);
});
