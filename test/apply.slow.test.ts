/**
 * `ovn-deploy apply` for real: the built CLI against real ovsdb-server (RAFT), ovn-northd,
 * stunnel, ovs-vswitchd (userspace datapath) and ovn-controller, inside a throw-away host made of
 * a network namespace + private mount namespace (overlays over /etc, /var, /opt; tmpfs /run), so
 * nothing of this machine is touched. The bundle is rendered by `render` for a one-box site (a
 * central that is also a worker). Packages are skipped: this machine has them installed already
 * (scripts/install-deps.sh), and apt inside the overlay would only re-download them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApplyReport } from '../src/apply/report.js';
import { applyFiles } from '../src/fsx.js';
import { parseInventory } from '../src/inventory/index.js';
import { cliPath, pkiPaths } from '../src/paths.js';
import { initPki, signCsr } from '../src/pki/index.js';
import { renderHostBundle } from '../src/render/index.js';
import { bundleSigner } from '../src/deploy/site-pki.js';
import { signBundle } from './helpers/apply-fixture.js';
import { createHostNamespace, type HostNamespace } from './helpers/host-namespace.js';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

const SITE = `site: applyt
hosts:
  - name: box1
    addresses: [192.0.2.10]
    roles: [central, worker]
    datapath: netdev
    encap: { type: geneve, ip: 192.0.2.10, interface: ul0 }
`;

let host: HostNamespace;
let tmp: string;
let bundleDir: string;
let pkiDir: string;

async function apply(extra: string[] = [], input?: string): Promise<{ code: number; report: ApplyReport; stderr: string }> {
  const r = await host.run([process.execPath, cliPath, 'apply', '--trust-ca', pkiPaths(pkiDir).caCert, '--bundle', bundleDir, '--json', '--skip-packages', ...extra], {
    allowFailure: true,
    timeoutMs: 180_000,
    ...(input === undefined ? {} : { input }),
  });
  let report: ApplyReport;
  try {
    report = JSON.parse(r.stdout) as ApplyReport;
  } catch {
    throw new Error(`apply printed no JSON report (exit ${r.exitCode}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return { code: r.exitCode, report, stderr: r.stderr };
}

/** pid per service from the own supervisor's status (inside the host). */
async function pids(): Promise<Record<string, number>> {
  const r = await host.run(['cat', '/var/lib/ovn-deploy/supervisor/status.json']);
  const status = JSON.parse(r.stdout) as { services: { name: string; pid?: number; state: string }[] };
  return Object.fromEntries(status.services.map((s) => [s.name, s.pid ?? 0]));
}

const changed = (r: ApplyReport): string[] => r.changes.map((c) => `${c.kind}:${c.action}:${c.target}`);

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'apply-slow-'));
  pkiDir = path.join(tmp, 'pki');
  bundleDir = path.join(tmp, 'bundle');
  await initPki(pkiDir, { keyBits: 2048, commonName: 'apply-slow' });
  const inv = parseInventory(SITE, 'site.yaml').inventory;
  const bundle = renderHostBundle(inv, 'box1', {
    caBundlePem: readFileSync(pkiPaths(pkiDir).caBundle, 'utf8'),
    crlPem: readFileSync(pkiPaths(pkiDir).crl, 'utf8'),
  }, { signer: await bundleSigner(pkiDir) });
  await applyFiles(bundleDir, bundle.files);
  host = await createHostNamespace('ovnd-apply');
  // The host's tunnel NIC: one end of a veth pair, with the address apply moves into br-phy.
  await host.run(['ip', 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0p']);
  await host.run(['ip', 'addr', 'add', '192.0.2.10/24', 'dev', 'ul0']);
  await host.run(['ip', 'link', 'set', 'ul0', 'up']);
  await host.run(['ip', 'link', 'set', 'ul0p', 'up']);
  // A default route through the NIC: it must follow the address into br-phy.
  await host.run(['ip', 'route', 'add', 'default', 'via', '192.0.2.1', 'dev', 'ul0']);
}, 60_000);

afterAll(async () => {
  await host?.destroy();
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

describe('apply on a one-box host (real daemons in a private namespace; packages skipped: already installed here)', () => {
  let firstPids: Record<string, number> = {};

  it('first apply: key + CSR, needs-certificate (exit 3), starts nothing', async () => {
    const r = await apply();
    expect(r.code).toBe(3);
    expect(r.report.status).toBe('needs-certificate');
    expect(r.report.csr).toMatch(/BEGIN CERTIFICATE REQUEST/);
    expect(r.report.signCommand).toBe('ovn-deploy pki sign-csr --dir <PKI> --csr box1.csr --role central --name box1 --san box1,192.0.2.10 --out box1.pem');
    expect(r.report.changes.some((c) => c.kind === 'service')).toBe(false);
    // Without --firewall the host firewall is placed, not loaded; the central's local-access rules
    // (RAFT loopback ports: root only) are loaded by every apply.
    expect(changed(r.report).filter((c) => c.startsWith('firewall:'))).toEqual(['firewall:load:/etc/ovn-deploy/local-access.nft']);
    const mode = await host.run(['stat', '-c', '%a', '/etc/ovn-deploy/pki/host.key']);
    expect(mode.stdout.trim()).toBe('600');
    const noSupervisor = await host.run(['test', '-e', '/var/lib/ovn-deploy/supervisor/status.json'], { allowFailure: true });
    expect(noSupervisor.exitCode).not.toBe(0);
    writeFileSync(path.join(tmp, 'box1.csr'), r.report.csr ?? '');
  });

  it('apply --certificate -: converged (RAFT leader, TLS through stunnel, chassis registered, underlay moved)', async () => {
    const csr = readFileSync(path.join(tmp, 'box1.csr'), 'utf8');
    const cert = await signCsr(pkiDir, csr, { role: 'central', name: 'box1', sans: ['box1', '192.0.2.10'] });
    const r = await apply(['--certificate', '-'], cert.certPem);
    expect(r.report.health.filter((h) => !h.ok)).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.report.status).toBe('converged');
    const kinds = changed(r.report);
    expect(kinds).toContain('certificate:install:/etc/ovn-deploy/pki/host.pem');
    expect(kinds).toContain('raft:create-cluster:OVN_Northbound /var/lib/ovn/ovnnb_db.db');
    expect(kinds).toContain('service:start:ovn-northd');
    expect(kinds).toContain('underlay:move-address:192.0.2.10/24 ul0 -> br-phy');
    // RAFT: a cluster member that knows its leader (itself).
    const cs = await host.run(['ovs-appctl', '-t', '/var/run/ovn/ovnsb_db.ctl', 'cluster/status', 'OVN_Southbound']);
    expect(cs.stdout).toMatch(/Role: leader/);
    // The NB over TLS through stunnel, with the host's own certificate.
    const tls = await host.run([
      'ovsdb-client', '--timeout=10', '--private-key=/etc/ovn-deploy/pki/host.key', '--certificate=/etc/ovn-deploy/pki/host.pem',
      '--ca-cert=/etc/ovn-deploy/pki/ca-bundle.pem', 'list-dbs', 'ssl:192.0.2.10:6641',
    ]);
    expect(tls.stdout.split('\n')).toContain('OVN_Northbound');
    // The chassis is registered in the SB.
    const chassis = await host.run(['ovn-sbctl', '--db=unix:/var/run/ovn/ovnsb_db.sock', '--columns=name', '--bare', 'list', 'Chassis']);
    expect(chassis.stdout.trim()).toBe('box1');
    // The encap address moved from ul0 to br-phy's internal port.
    const addrs = await host.run(['ip', '-o', '-4', 'addr', 'show']);
    expect(addrs.stdout).toMatch(/br-phy\s+inet 192\.0\.2\.10\/24/);
    expect(addrs.stdout).not.toMatch(/ul0\s+inet/);
    const route = await host.run(['ip', '-4', 'route', 'show', 'default']);
    expect(route.stdout.trim()).toBe('default via 192.0.2.1 dev br-phy');
    firstPids = await pids();
    expect(Object.keys(firstPids).sort()).toEqual(['ovn-controller', 'ovn-nb-ovsdb', 'ovn-northd', 'ovn-sb-ovsdb', 'ovs-ovsdb', 'ovs-vswitchd', 'stunnel-server']);
  });

  it('second apply with nothing new: changes [] and the same pids', async () => {
    const r = await apply();
    expect(r.code).toBe(0);
    expect(r.report.changes).toEqual([]);
    expect(await pids()).toEqual(firstPids);
  });

  it('a changed stunnel file reloads only stunnel (same pid), nothing else restarts', async () => {
    const manifestFile = path.join(bundleDir, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { files: { dest: string; source: string; sha256: string }[] };
    const entry = manifest.files.find((f) => f.dest === '/etc/ovn-deploy/stunnel/stunnel-server.conf');
    if (entry === undefined) throw new Error('no stunnel-server.conf in the bundle');
    const file = path.join(bundleDir, entry.source);
    const content = readFileSync(file, 'utf8').replace('debug = 5', 'debug = 6');
    writeFileSync(file, content);
    entry.sha256 = createHash('sha256').update(content).digest('hex');
    writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
    signBundle(bundleDir, await bundleSigner(pkiDir));
    const r = await apply();
    expect(r.code).toBe(0);
    expect(changed(r.report)).toEqual(['file:update:/etc/ovn-deploy/stunnel/stunnel-server.conf', 'service:reload:stunnel-server']);
    expect(await pids()).toEqual(firstPids);
    const log = await host.run(['cat', '/var/log/ovn-deploy/stunnel-server.log']);
    expect(log.stdout.match(/Configuration successful/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
  });

  it('kill -9 ovn-northd: the supervisor brings it back and apply reports it healthy', async () => {
    await host.run(['kill', '-9', String(firstPids['ovn-northd'])]);
    const r = await apply();
    expect(r.code).toBe(0);
    expect(r.report.status).toBe('converged');
    const now = await pids();
    expect(now['ovn-northd']).toBeGreaterThan(0);
    expect(now['ovn-northd']).not.toBe(firstPids['ovn-northd']);
    expect({ ...now, 'ovn-northd': 0 }).toEqual({ ...firstPids, 'ovn-northd': 0 });
  });

  it('a changed stage-0 service restarts only it: running stage-1 services keep their pids', async () => {
    const before = await pids();
    const manifestFile = path.join(bundleDir, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { services: { name: string; argv: string[] }[] };
    const sb = manifest.services.find((s) => s.name === 'ovn-sb-ovsdb');
    if (sb === undefined) throw new Error('no ovn-sb-ovsdb service');
    sb.argv = sb.argv.map((a) => (a === '-vfile:info' ? '-vfile:dbg' : a));
    writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
    signBundle(bundleDir, await bundleSigner(pkiDir));
    const r = await apply();
    expect(r.code).toBe(0);
    expect(changed(r.report)).toEqual(['service:restart:ovn-sb-ovsdb']);
    const now = await pids();
    expect(now['ovn-sb-ovsdb']).not.toBe(before['ovn-sb-ovsdb']);
    expect({ ...now, 'ovn-sb-ovsdb': 0 }).toEqual({ ...before, 'ovn-sb-ovsdb': 0 });
  });

  it('after ovs-vswitchd restarts and br-phy lost its address, apply puts it back from underlay.json', async () => {
    const before = await pids();
    await host.run(['kill', '-9', String(before['ovs-vswitchd'])]);
    for (let i = 0; i < 100; i++) {
      const now = await pids().catch(() => before);
      const link = await host.run(['ip', 'link', 'show', 'dev', 'br-phy'], { allowFailure: true });
      if (now['ovs-vswitchd'] !== before['ovs-vswitchd'] && (now['ovs-vswitchd'] ?? 0) > 0 && link.exitCode === 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    // Whether the tap survived the restart or not, the address is gone from it (as after a
    // reboot or a recreated tap); the NIC no longer has it either: only underlay.json knows.
    await host.run(['ip', 'addr', 'flush', 'dev', 'br-phy']);
    const r = await apply();
    expect(r.code).toBe(0);
    expect(changed(r.report)).toEqual(['underlay:move-address:192.0.2.10/24 ul0 -> br-phy']);
    const addrs = await host.run(['ip', '-o', '-4', 'addr', 'show', 'dev', 'br-phy']);
    expect(addrs.stdout).toMatch(/192\.0\.2\.10\/24/);
    expect((await host.run(['ip', '-4', 'route', 'show', 'default'])).stdout.trim()).toBe('default via 192.0.2.1 dev br-phy');
    const again = await apply();
    expect(again.report.changes).toEqual([]);
  });

  it('apply --check only runs the health checks', async () => {
    const r = await apply(['--check']);
    expect(r.code).toBe(0);
    expect(r.report.changes).toEqual([]);
    expect(r.report.health.length).toBeGreaterThan(5);
  });

  it('apply --firewall loads the rules and the host stays healthy (its own probes of the RAFT ports pass)', async () => {
    const r = await apply(['--firewall']);
    expect(r.report.health.filter((h) => !h.ok)).toEqual([]);
    expect(r.code).toBe(0);
    expect(changed(r.report)).toEqual(['firewall:load:/etc/ovn-deploy/firewall.nft']);
    // The probes above include the TLS RAFT port on the host's own address, which the file drops for
    // everybody else (a lone central has no peer).
    expect(r.report.health.some((h) => /6643/.test(`${h.check} ${h.detail}`))).toBe(true);
    const table = await host.run(['nft', 'list', 'table', 'inet', 'ovn_deploy']);
    expect(table.stdout).toContain('tcp dport 6643 drop');
    expect((await apply(['--firewall'])).report.changes).toEqual([]);
  });
});
