/**
 * The local transport for real: two hosts of this machine, each a network namespace of the test's
 * own (a veth between them) plus a root directory under the test's tmp dir, a central and a
 * worker, their bundles rendered for those roots with a real PKI, applied in parallel by the real
 * runApply in this process (no CLI, no SSH). Real ovsdb-server (RAFT), ovn-northd, stunnel,
 * ovs-vswitchd (userspace datapath) and ovn-controller. Packages are skipped: this machine has
 * them (scripts/install-deps.sh).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runApply, type ApplyOutcome } from '../src/apply/index.js';
import type { BundleManifest } from '../src/bundle/manifest.js';
import { bundleSigner } from '../src/deploy/site-pki.js';
import { applyFiles } from '../src/fsx.js';
import { parseInventory } from '../src/inventory/index.js';
import { hostPaths, pkiPaths } from '../src/paths.js';
import { initPki, signCsr } from '../src/pki/index.js';
import { renderSiteBundles } from '../src/render/index.js';
import { ZxRunner } from '../src/runner.js';
import { readCmdline } from '../src/supervisor/proc.js';
import { pidsInNetns } from '../src/tools/netns.js';
import { localHost, type LocalHost } from '../src/transport/local.js';

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('transport-local.slow.test.ts: skipped, needs root (network namespaces, daemons)');

const id = randomBytes(3).toString('hex');
const net = `198.18.${randomBytes(1)[0] ?? 7}`;
const SITE = `site: lt${id}
hosts:
  - name: central1
    addresses: [${net}.1]
    roles: [central]
  - name: worker1
    addresses: [${net}.2]
    roles: [worker]
    datapath: netdev
    encap: { type: geneve, ip: ${net}.2 }
`;
const NAMES = ['central1', 'worker1'] as const;
type Name = (typeof NAMES)[number];

/** What this machine's own OVN/OVS/ovn-deploy directories hold: nothing of the test may land there. */
const MACHINE_DIRS = ['/etc/ovn-deploy', '/var/lib/ovn-deploy', '/var/log/ovn-deploy', '/var/run/ovn-deploy', '/var/run/ovn', '/var/lib/ovn', '/var/log/ovn', '/var/run/openvswitch', '/etc/openvswitch', '/var/log/openvswitch'];

/** path -> kind, size and mtime of every entry below the dirs (links not followed). */
function machineSnapshot(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string): void => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    out[p] = st.isDirectory() ? 'dir' : `${st.isFile() ? 'file' : 'other'}:${st.size}:${st.mtimeMs}`;
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(path.join(p, e));
  };
  for (const d of MACHINE_DIRS) walk(d);
  return out;
}

const real = new ZxRunner();
let tmp: string;
let pkiDir: string;
let before: Record<string, string>;
const ns: Record<Name, string> = { central1: `ovnd-lt${id}-c`, worker1: `ovnd-lt${id}-w` };
const hosts = {} as Record<Name, LocalHost>;
const manifests = {} as Record<Name, BundleManifest>;
const bundles = {} as Record<Name, string>;

const netnsInode = (name: string): number => statSync(path.join('/run/netns', name)).ino;
const nsOf = (pid: number): string | undefined => {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
};

/** Live processes whose command line names this host's root (its supervisor and daemons), from /proc. */
function processesOf(host: LocalHost): { pid: number; program: string }[] {
  const out: { pid: number; program: string }[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const argv = readCmdline(Number(e));
    if (argv === undefined || argv.length === 0 || !argv.some((a) => a.includes(`${host.root}/`))) continue;
    out.push({ pid: Number(e), program: path.basename(argv[0] ?? '') });
  }
  return out;
}

async function applyAll(extra: (name: Name) => Partial<Parameters<typeof runApply>[0]> = () => ({})): Promise<Record<Name, ApplyOutcome>> {
  const outs = await Promise.all(
    NAMES.map((name) =>
      runApply({
        bundleDir: bundles[name],
        trustCa: { pem: readFileSync(pkiPaths(pkiDir).caCert, 'utf8'), from: 'ca.crt' },
        skipPackages: true,
        healthTimeoutMs: 90_000,
        ...hosts[name].applyOptions(),
        ...extra(name),
      }),
    ),
  );
  return { central1: outs[0] as ApplyOutcome, worker1: outs[1] as ApplyOutcome };
}

describe.skipIf(notRoot)('local transport: a central and a worker, each a namespace + root, applied in parallel in-process', () => {
  beforeAll(async () => {
    before = machineSnapshot();
    tmp = mkdtempSync(path.join(os.tmpdir(), `transport-local-${id}-`));
    pkiDir = path.join(tmp, 'pki');
    await initPki(pkiDir, { keyBits: 2048, commonName: `lt${id}` });
    for (const name of NAMES) await real.run(['ip', 'netns', 'add', ns[name]]);
    const [vc, vw] = [`lt${id}c`, `lt${id}w`];
    await real.run(['ip', 'link', 'add', vc, 'netns', ns.central1, 'type', 'veth', 'peer', 'name', vw, 'netns', ns.worker1]);
    for (const [name, dev, addr] of [['central1', vc, `${net}.1/24`], ['worker1', vw, `${net}.2/24`]] as const) {
      await real.run(['ip', 'addr', 'add', addr, 'dev', dev], { netns: ns[name] });
      await real.run(['ip', 'link', 'set', dev, 'up'], { netns: ns[name] });
      await real.run(['ip', 'link', 'set', 'lo', 'up'], { netns: ns[name] });
    }
    const inv = parseInventory(SITE, 'site.yaml').inventory;
    const pki = { caBundlePem: readFileSync(pkiPaths(pkiDir).caBundle, 'utf8'), crlPem: readFileSync(pkiPaths(pkiDir).crl, 'utf8') };
    const signer = await bundleSigner(pkiDir);
    for (const name of NAMES) {
      const root = path.join(tmp, 'hosts', name, 'root');
      hosts[name] = localHost({ netns: ns[name], root });
      const b = renderSiteBundles(inv, pki, { signer, root }).get(name);
      if (b === undefined) throw new Error(`no bundle for ${name}`);
      manifests[name] = b.manifest;
      bundles[name] = path.join(tmp, 'bundles', name);
      await applyFiles(bundles[name], b.files);
    }
  }, 120_000);

  afterAll(async () => {
    // Whatever a failed test left: only our hosts' supervisors, then only processes in our namespaces.
    for (const name of NAMES) await hosts[name]?.stop().catch(() => undefined);
    for (let round = 0; round < 20; round++) {
      const pids = pidsInNetns(Object.values(ns));
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const name of NAMES) await real.run(['ip', 'netns', 'del', ns[name]], { allowFailure: true });
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  }, 120_000);

  it('first apply, both hosts at once: each makes its key and CSR below its root and waits for its certificate (exit 3)', async () => {
    const out = await applyAll();
    for (const name of NAMES) {
      expect(out[name].exitCode, JSON.stringify(out[name].report)).toBe(3);
      expect(out[name].report.csr).toMatch(/BEGIN CERTIFICATE REQUEST/);
      expect(statSync(hostPaths(hosts[name].root).pki.key).mode & 0o777).toBe(0o600);
      expect(processesOf(hosts[name])).toEqual([]);
    }
  });

  it('signed certificates, applied at once: both converge (RAFT leader, stunnel, chassis connected)', async () => {
    const certs = {} as Record<Name, string>;
    for (const name of NAMES) {
      const req = manifests[name].certificate;
      const csr = readFileSync(hostPaths(hosts[name].root).pki.csr, 'utf8');
      certs[name] = (await signCsr(pkiDir, csr, { role: req.role === 'central' ? 'central' : 'worker', name: req.name, sans: req.sans })).certPem;
    }
    const out = await applyAll((name) => ({ certificate: { pem: certs[name], from: `${name}.pem` } }));
    for (const name of NAMES) {
      expect(out[name].report.health.filter((h) => !h.ok), name).toEqual([]);
      expect(out[name].exitCode, out[name].error).toBe(0);
      expect(out[name].report.status).toBe('converged');
    }
    expect(out.worker1.report.health.map((h) => h.check)).toContain('ovn-controller-connected');
  });

  it('every daemon and each supervisor runs in its host\'s namespace (/proc/PID/ns/net), none elsewhere', () => {
    const want: Record<Name, string[]> = {
      central1: ['node', 'ovn-northd', 'ovsdb-server', 'stunnel4'],
      worker1: ['node', 'ovn-controller', 'ovs-vswitchd', 'ovsdb-server', 'stunnel4'],
    };
    for (const name of NAMES) {
      const procs = processesOf(hosts[name]);
      expect([...new Set(procs.map((p) => p.program))].sort(), name).toEqual(want[name]);
      const inode = `net:[${netnsInode(ns[name])}]`;
      for (const p of procs) expect(`${name} ${p.program} ${p.pid} ${nsOf(p.pid)}`).toBe(`${name} ${p.program} ${p.pid} ${inode}`);
    }
  });

  it("the worker's ovn-controller registers in the central's SB through stunnel (Chassis row, TLS connection to the central's SB port)", async () => {
    const sbSock = hostPaths(hosts.central1.root).ovn.sbSock;
    const chassis = await hosts.central1.runner.run(['ovn-sbctl', `--db=unix:${sbSock}`, '--bare', '--columns=name,hostname', 'list', 'Chassis']);
    expect(chassis.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '')).toEqual(['worker1', 'worker1']);
    // The worker's namespace holds no SB: its only way there is the stunnel client's TLS connection.
    const conns = await hosts.worker1.runner.run(['ss', '-Htn', 'state', 'established', `( dst ${net}.1 and dport = :6642 )`]);
    expect(conns.stdout.trim()).not.toBe('');
    const remote = await hosts.worker1.runner.run(['ovs-vsctl', `--db=unix:${hostPaths(hosts.worker1.root).ovs.dbSock}`, 'get', 'Open_vSwitch', '.', 'external_ids:ovn-remote']);
    // ... reached through a unix socket of the worker's own root-only socket directory.
    expect(remote.stdout.trim()).toBe(`"unix:${hostPaths(hosts.worker1.root).ovsdbSocket('central1', 'sb')}"`);
  });

  it('every file apply placed is below its host\'s root; nothing new or changed in this machine\'s own directories', () => {
    for (const name of NAMES) {
      for (const f of manifests[name].files) expect(existsSync(path.join(hosts[name].root, f.dest)), f.dest).toBe(true);
      expect(existsSync(hostPaths(hosts[name].root).applied)).toBe(true);
    }
    expect(machineSnapshot()).toEqual(before);
  });

  it('a second apply of both reports no change and restarts nothing', async () => {
    const pidsBefore = NAMES.map((n) => processesOf(hosts[n]).map((p) => p.pid).sort());
    const out = await applyAll();
    for (const name of NAMES) {
      expect(out[name].exitCode, out[name].error).toBe(0);
      expect(out[name].report.changes, name).toEqual([]);
    }
    expect(NAMES.map((n) => processesOf(hosts[n]).map((p) => p.pid).sort())).toEqual(pidsBefore);
  });

  it('the hosts clean up: stopping each supervisor leaves no process in either namespace', async () => {
    await Promise.all(NAMES.map((n) => hosts[n].stop()));
    for (const name of NAMES) {
      expect(processesOf(hosts[name])).toEqual([]);
      expect(pidsInNetns([ns[name]])).toEqual([]);
    }
  });
});
