/**
 * `apply` on two central hosts (two private namespaces joined by a veth pair): the first creates
 * the RAFT clusters, the second joins them (`ovsdb-tool join-cluster`) through the stunnel client
 * and server pair, so membership travels only over TLS. Bundles rendered by `render`; packages
 * skipped (installed on this machine already).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApplyReport } from '../src/apply/report.js';
import { applyFiles } from '../src/fsx.js';
import { parseInventory } from '../src/inventory/index.js';
import { cliPath, hostPaths, pkiPaths } from '../src/paths.js';
import { initPki, signCsr } from '../src/pki/index.js';
import { renderHostBundle } from '../src/render/index.js';
import { bundleSigner } from '../src/deploy/site-pki.js';
import { ZxRunner } from '../src/runner.js';
import { createHostNamespace, type HostNamespace } from './helpers/host-namespace.js';

const SITE = `site: raftt
hosts:
  - name: c1
    addresses: [192.0.2.11]
    roles: [central]
  - name: c2
    addresses: [192.0.2.12]
    roles: [central]
`;
const ADDR: Record<string, string> = { c1: '192.0.2.11', c2: '192.0.2.12' };

let tmp: string;
let pkiDir: string;
const hosts = new Map<string, HostNamespace>();

async function apply(name: string, extra: string[] = [], input?: string): Promise<{ code: number; report: ApplyReport }> {
  const host = hosts.get(name);
  if (host === undefined) throw new Error(`no host ${name}`);
  const r = await host.run([process.execPath, cliPath, 'apply', '--trust-ca', pkiPaths(pkiDir).caCert, '--bundle', path.join(tmp, 'bundles', name), '--json', '--skip-packages', ...extra], {
    allowFailure: true,
    timeoutMs: 180_000,
    ...(input === undefined ? {} : { input }),
  });
  try {
    return { code: r.exitCode, report: JSON.parse(r.stdout) as ApplyReport };
  } catch {
    throw new Error(`apply on ${name} printed no JSON report (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** apply -> CSR -> sign with the site PKI -> apply --certificate -. */
async function converge(name: string): Promise<{ code: number; report: ApplyReport }> {
  const first = await apply(name);
  expect(first.code).toBe(3);
  const cert = await signCsr(pkiDir, first.report.csr ?? '', { role: 'central', name, sans: [name, ADDR[name] ?? ''] });
  return apply(name, ['--certificate', '-'], cert.certPem);
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'apply-raft-'));
  pkiDir = path.join(tmp, 'pki');
  await initPki(pkiDir, { keyBits: 2048, commonName: 'apply-raft' });
  const inv = parseInventory(SITE, 'site.yaml').inventory;
  const pki = { caBundlePem: readFileSync(pkiPaths(pkiDir).caBundle, 'utf8'), crlPem: readFileSync(pkiPaths(pkiDir).crl, 'utf8') };
  const signer = await bundleSigner(pkiDir);
  for (const name of ['c1', 'c2']) {
    await applyFiles(path.join(tmp, 'bundles', name), renderHostBundle(inv, name, pki, { signer }).files);
    hosts.set(name, await createHostNamespace(`ovnd-raft-${name}`));
  }
  const [h1, h2] = [hosts.get('c1'), hosts.get('c2')];
  if (h1 === undefined || h2 === undefined) throw new Error('hosts missing');
  // One "wire" between the two hosts.
  await new ZxRunner().run(['ip', 'link', 'add', 'ul0', 'netns', h1.netns, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', h2.netns]);
  for (const [name, h] of [['c1', h1], ['c2', h2]] as const) {
    await h.run(['ip', 'addr', 'add', `${ADDR[name]}/24`, 'dev', 'ul0']);
    await h.run(['ip', 'link', 'set', 'ul0', 'up']);
  }
}, 60_000);

afterAll(async () => {
  for (const h of hosts.values()) await h.destroy();
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

describe('apply on two centrals: create-cluster on the first, join-cluster over TLS on the second', () => {
  it('the bootstrap central creates the clusters and is healthy alone', async () => {
    const r = await converge('c1');
    expect(r.report.health.filter((h) => !h.ok)).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.report.changes.map((c) => `${c.kind}:${c.action}`)).toContain('raft:create-cluster');
  });

  it('the second central joins both clusters; both see two members and one leader', async () => {
    const r = await converge('c2');
    expect(r.report.health.filter((h) => !h.ok)).toEqual([]);
    expect(r.code).toBe(0);
    const kinds = r.report.changes.map((c) => `${c.kind}:${c.action}`);
    expect(kinds).toContain('raft:join-cluster');
    expect(kinds).not.toContain('raft:create-cluster');
    expect(r.report.changes.some((c) => c.kind === 'raft' && c.action === 'run')).toBe(false);
    for (const name of ['c1', 'c2']) {
      const cs = await hosts.get(name)?.run(['ovs-appctl', '-t', '/var/run/ovn/ovnnb_db.ctl', 'cluster/status', 'OVN_Northbound']);
      expect(cs?.stdout).toMatch(/Status: cluster member/);
      // Both servers listed (this one and its peer).
      expect(cs?.stdout.match(/^ {4}[0-9a-f]{4} \(/gm)?.length).toBe(2);
    }
    // A write on c2 is visible on c1: the cluster replicates through the TLS tunnels.
    const add = await hosts.get('c2')?.run(['ovn-nbctl', '--no-leader-only', '--db=unix:/var/run/ovn/ovnnb_db.sock', 'ls-add', 'joined-switch'], { allowFailure: true });
    expect(add?.stderr).toBe('');
    const ls = await hosts.get('c1')?.run(['ovn-nbctl', '--db=unix:/var/run/ovn/ovnnb_db.sock', '--bare', '--columns=name', 'list', 'Logical_Switch']);
    expect(ls?.stdout.trim()).toBe('joined-switch');
  });

  it('a second apply on either host changes nothing', async () => {
    for (const name of ['c1', 'c2']) {
      const r = await apply(name);
      expect(r.code).toBe(0);
      expect(r.report.changes).toEqual([]);
    }
  });

  it("the bootstrap central's NB file is gone while c2 runs the cluster: apply joins it instead of creating a second cluster", async () => {
    const [c1, c2] = [hosts.get('c1'), hosts.get('c2')];
    if (c1 === undefined || c2 === undefined) throw new Error('hosts missing');
    const nbCtl = hostPaths().ovn.nbCtl;
    const status = async (h: HostNamespace) => (await h.run(['ovs-appctl', '-t', nbCtl, 'cluster/status', 'OVN_Northbound'], { allowFailure: true })).stdout;
    const servers = (text: string) => text.match(/^ {4}[0-9a-f]{4} \(/gm)?.length ?? 0;
    const clusterId = (text: string) => /^Cluster ID: \S+ \(([0-9a-f-]+)\)/m.exec(text)?.[1];
    const cid = clusterId(await status(c2));
    expect(cid).toMatch(/^[0-9a-f-]{36}$/);
    // c1 leaves first (as `central remove` does): with one of two members gone for good, c2 alone
    // would have no majority to admit anybody. Then c1's server stops (with ovn-northd, which
    // depends on it) and its file is lost.
    await c1.run(['ovs-appctl', '-t', nbCtl, 'cluster/leave', 'OVN_Northbound']);
    const deadline = Date.now() + 30_000;
    while (servers(await status(c2)) !== 1) {
      if (Date.now() > deadline) throw new Error(`c1 did not leave:\n${await status(c2)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    const stop = `import(${JSON.stringify(path.join(path.dirname(cliPath), 'supervisor', 'own.js'))}).then((m) => new m.OwnSupervisor(${JSON.stringify(hostPaths().state)}).stop(['ovn-northd', 'ovn-nb-ovsdb']))`;
    await c1.run([process.execPath, '--input-type=module', '-e', stop]);
    await c1.run(['rm', '-f', hostPaths().ovn.nbDb]);

    const r = await apply('c1');
    expect(r.report.health.filter((h) => !h.ok)).toEqual([]);
    expect(r.code).toBe(0);
    const raft = r.report.changes.filter((c) => c.kind === 'raft');
    expect(raft.map((c) => c.action)).toEqual(['joined existing cluster']);
    expect(raft[0]?.target).toContain(`cluster ${cid ?? '?'}`);
    // One cluster, two members again, and c1 holds what the cluster held (a new cluster would be empty).
    const s1 = await status(c1);
    expect(s1).toMatch(/Status: cluster member/);
    expect(clusterId(s1)).toBe(cid);
    expect(servers(s1)).toBe(2);
    const ls = await c1.run(['ovn-nbctl', '--no-leader-only', `--db=unix:${hostPaths().ovn.nbSock}`, '--bare', '--columns=name', 'list', 'Logical_Switch']);
    expect(ls.stdout.trim()).toBe('joined-switch');
  });

  it('a bundle that moves a member to another cluster address (tls.mode switched to native) is refused before anything changes', async () => {
    const c2 = hosts.get('c2');
    if (c2 === undefined) throw new Error('hosts missing');
    const native = parseInventory(`${SITE}tls: { mode: native }\n`, 'site.yaml').inventory;
    const pki = { caBundlePem: readFileSync(pkiPaths(pkiDir).caBundle, 'utf8'), crlPem: readFileSync(pkiPaths(pkiDir).crl, 'utf8') };
    const dir = path.join(tmp, 'bundles-native', 'c2');
    await applyFiles(dir, renderHostBundle(native, 'c2', pki, { signer: await bundleSigner(pkiDir) }).files);
    const snapshot = async () => (await c2.run(['sh', '-c', 'cd / && sha256sum /etc/ovn-deploy/*/* /var/lib/ovn/*.db 2>/dev/null | sort; cat /var/run/ovn/*.pid'], { allowFailure: true })).stdout;
    const before = await snapshot();
    const r = await c2.run([process.execPath, cliPath, 'apply', '--trust-ca', pkiPaths(pkiDir).caCert, '--bundle', dir, '--skip-packages'], { allowFailure: true, timeoutMs: 60_000 });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/OVN_Northbound: \/var\/lib\/ovn\/ovnnb_db\.db is a cluster member at tcp:127\.[0-9.]+:16643, but the bundle makes it ssl:192\.0\.2\.12:6643 \(tls\.mode changed/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await snapshot()).toBe(before);
    expect((await apply('c2')).code).toBe(0);
  });
});
