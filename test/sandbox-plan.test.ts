import { mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { canonicalDir, sandboxId, sandboxNames, underlaySubnet, MAX_IFNAME } from '../src/sandbox/naming.js';
import { planSandbox, MAX_WORKERS } from '../src/sandbox/plan.js';
import { renderHostBundle } from '../src/render/index.js';
import { sandboxSite } from '../src/sandbox/site.js';
import { topologyArgs, unplannedVms } from '../src/sandbox/topology.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'od-plan-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('sandbox naming', () => {
  it('derives a 4-hex id from the canonical state dir, the same before and after it exists and through a symlink', async () => {
    const dir = path.join(tmp, 'not-yet', 'sandbox');
    const id = sandboxId(dir);
    expect(id).toMatch(/^[0-9a-f]{4}$/);
    expect(sandboxId(`${dir}/`)).toBe(id);
    await symlink(tmp, path.join(tmp, 'link'));
    expect(canonicalDir(path.join(tmp, 'link', 'not-yet', 'sandbox'))).toBe(canonicalDir(dir));
    expect(sandboxId(path.join(tmp, 'link', 'not-yet', 'sandbox'))).toBe(id);
    expect(sandboxId(path.join(tmp, 'other'))).not.toBe(id);
  });

  it('prefixes every global name with od<id>- and keeps interface names within IFNAMSIZ', () => {
    const names = sandboxNames('ab12');
    const all = [names.underlayNetns, names.underlayBridge, names.nodeNetns('central'), names.vmNetns('vm1'), names.nodeVeth('central'), names.underlayVeth('central'), names.underlayVeth(`w${MAX_WORKERS}`)];
    for (const n of all) expect(names.owns(n), n).toBe(true);
    for (const n of [names.nodeVeth('central'), names.underlayVeth('central'), names.underlayBridge]) expect(n.length).toBeLessThanOrEqual(MAX_IFNAME);
    expect(names.owns('odab13-ul')).toBe(false);
    expect(names.owns('odab12')).toBe(false);
    expect(names.owns('eth0')).toBe(false);
  });

  it('picks a private /24 from the id', () => {
    expect(underlaySubnet('0000')).toEqual({ base: '10.128.0', prefixLen: 24 });
    expect(underlaySubnet('ffff')).toEqual({ base: '10.255.255', prefixLen: 24 });
  });
});

describe('planSandbox', () => {
  it('plans the seed topology on two workers: vm1 on worker1 (network1), vm2 on worker2 (network2)', () => {
    const plan = planSandbox({ stateDir: path.join(tmp, 's2'), workers: 2, datapath: 'netdev' });
    expect(plan.workers.map((w) => w.name)).toEqual(['worker1', 'worker2']);
    expect(plan.vms.map((v) => [v.name, v.worker, v.network, v.mac, v.ip])).toEqual([
      ['vm1', 'worker1', 'network1', '40:44:00:00:00:01', '192.168.0.11'],
      ['vm2', 'worker2', 'network2', '40:44:00:00:00:02', '192.168.1.11'],
    ]);
    expect(plan.checks).toEqual([{ from: 'vm1', to: 'vm2' }]);
    expect(plan.central.address).toMatch(/^10\.\d+\.\d+\.1$/);
    expect(plan.workers.map((w) => w.address.split('.').pop())).toEqual(['11', '12']);
    expect(new Set(plan.workers.map((w) => w.phyMac)).size).toBe(2);
    for (const ns of plan.namespaces) expect(ns.startsWith(`${plan.names.prefix}-`)).toBe(true);
    expect(plan.namespaces[0]).toBe(plan.underlay.netns);
  });

  it('puts both VMs on worker1 with one worker, and vm3 (192.168.1.12, :05) on worker3 with three', () => {
    const one = planSandbox({ stateDir: path.join(tmp, 's1'), workers: 1, datapath: 'netdev' });
    expect(one.vms.map((v) => v.worker)).toEqual(['worker1', 'worker1']);
    const three = planSandbox({ stateDir: path.join(tmp, 's3'), workers: 3, datapath: 'netdev' });
    expect(three.vms.map((v) => [v.name, v.worker, v.network, v.mac, v.ip])).toContainEqual(['vm3', 'worker3', 'network2', '40:44:00:00:00:05', '192.168.1.12']);
    expect(three.checks).toEqual([
      { from: 'vm1', to: 'vm2' },
      { from: 'vm1', to: 'vm3' },
    ]);
  });

  it('rejects a bad worker count and a state dir too long for unix sockets, naming the option', () => {
    for (const workers of [0, MAX_WORKERS + 1, 1.5]) {
      const err = (() => {
        try {
          planSandbox({ stateDir: tmp, workers, datapath: 'netdev' });
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).problems[0]?.path).toBe('--workers');
    }
    expect(() => planSandbox({ stateDir: path.join(tmp, 'x'.repeat(90)), workers: 2, datapath: 'netdev' })).toThrow(/too long for unix socket paths/);
  });
});

describe("the sandbox's hosts, rendered by the real renderer", () => {
  const pki = { caBundlePem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n', crlPem: '-----BEGIN X509 CRL-----\nx\n-----END X509 CRL-----\n' };
  const bundles = (datapath: 'netdev' | 'system') => {
    const p = planSandbox({ stateDir: path.join(tmp, `svc-${datapath}`), workers: 2, datapath });
    const site = sandboxSite(p);
    return { p, site, m: (name: string) => renderHostBundle(site.inventory, name, pki, { root: p.paths.hostRoot(name) }).manifest };
  };

  it('runs every daemon in the foreground with every path below its host root; plaintext OVSDB only on unix sockets below it', () => {
    const { p, site, m } = bundles('netdev');
    expect(site.hosts.map((h) => [h.name, h.netns, h.root])).toEqual([
      ['central', p.central.netns, path.join(p.stateDir, 'hosts', 'central')],
      ['operator', p.operator.netns, path.join(p.stateDir, 'hosts', 'operator')],
      ...p.workers.map((w) => [w.name, w.netns, path.join(p.stateDir, 'hosts', w.name)]),
    ]);
    for (const h of site.hosts) {
      const man = m(h.name);
      expect(man.root).toBe(h.root);
      for (const s of man.services) {
        expect(s.argv.join(' ')).not.toMatch(/--detach|--monitor/);
        for (const a of s.argv.filter((x) => x.includes('/var/') || x.includes('/etc/'))) expect(a, `${h.name} ${s.name}`).toContain(h.root);
      }
    }
    expect(m('central').services.map((s) => s.name)).toEqual(['ovn-nb-ovsdb', 'ovn-sb-ovsdb', 'stunnel-server', 'ovn-northd']);
    expect(m('worker1').services.map((s) => s.name)).toEqual(['stunnel-client', 'ovs-ovsdb', 'ovs-vswitchd', 'ovn-controller']);
    // The operator's host is a Northbound client only: a tunnel, nothing else.
    expect(m('operator').services.map((s) => s.name)).toEqual(['stunnel-client']);
    expect(m('operator').certificate.role).toBe('cms');
    const nb = m('central').services.find((s) => s.name === 'ovn-nb-ovsdb');
    const c = site.central.paths;
    expect(nb?.argv.filter((a) => a.startsWith('--remote='))).toEqual([`--remote=punix:${c.ovn.nbSock}`, `--remote=punix:${c.ovsdbSocket('central', 'nb')}`]);
  });

  it("points ovn-controller only at the local stunnel client, and moves a worker's underlay veth into br-phy with the userspace datapath", () => {
    const { p, m } = bundles('netdev');
    const w = p.workers[0];
    if (w === undefined) throw new Error('no worker');
    const ovs = m(w.name).ovs;
    // The worker's own socket for the central's SB, in its root-only socket directory.
    expect(ovs?.externalIds['ovn-remote']).toBe(`unix:${path.join(p.paths.hostRoot(w.name), 'var/run/ovn-deploy/ovsdb/central.sb')}`);
    expect(ovs?.externalIds['ovn-encap-ip']).toBe(w.address);
    expect(ovs?.externalIds['ovn-bridge-datapath-type']).toBe('netdev');
    expect(ovs?.underlay).toEqual({ bridge: 'br-phy', interface: w.veth.inside, ip: w.address });
    const kernel = bundles('system').m(w.name).ovs;
    expect(kernel?.underlay).toBeUndefined();
    expect(kernel?.externalIds['ovn-bridge-datapath-type']).toBe('system');
  });
});

describe('topology and worker OVS settings', () => {
  it('builds one idempotent ovn-nbctl transaction (--may-exist on every add)', () => {
    const p = planSandbox({ stateDir: path.join(tmp, 'topo'), workers: 3, datapath: 'netdev' });
    const args = topologyArgs(p);
    const adds = args.filter((a) => /-add$/.test(a));
    expect(adds.length).toBeGreaterThan(0);
    args.forEach((a, i) => {
      if (/-add$/.test(a)) expect(args[i - 1]).toBe('--may-exist');
    });
    expect(args.join(' ')).toContain('lsp-set-options net2-router1 router-port=router1-net2');
    expect(args).toContain('40:44:00:00:00:05 192.168.1.12');
    // A smaller sandbox drops the VM ports a larger one had, in the same transaction.
    const two = topologyArgs(planSandbox({ stateDir: path.join(tmp, 'topo'), workers: 2, datapath: 'netdev' })).join(' ');
    expect(two).toContain('--if-exists lsp-del vm3');
    expect(two).toContain('--if-exists lsp-del vm16');
    expect(two).not.toContain('lsp-del vm2');
    expect(unplannedVms(planSandbox({ stateDir: path.join(tmp, 'topo'), workers: MAX_WORKERS, datapath: 'netdev' }))).toEqual([]);
  });

});
