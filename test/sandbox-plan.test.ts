import { mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { canonicalDir, isOwnName, sandboxId, sandboxNames, underlaySubnet, MAX_IFNAME } from '../src/sandbox/naming.js';
import { planSandbox, MAX_WORKERS } from '../src/sandbox/plan.js';
import { allServices, sandboxServices } from '../src/sandbox/services.js';
import { phaseList } from '../src/sandbox/phases.js';
import { topologyArgs, unplannedVms } from '../src/sandbox/topology.js';
import { workerOvsArgs } from '../src/sandbox/worker.js';
import type { ServiceSpec } from '../src/supervisor/types.js';

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
    for (const n of all) expect(isOwnName('ab12', n), n).toBe(true);
    for (const n of [names.nodeVeth('central'), names.underlayVeth('central'), names.underlayBridge]) expect(n.length).toBeLessThanOrEqual(MAX_IFNAME);
    expect(isOwnName('ab12', 'odab13-ul')).toBe(false);
    expect(isOwnName('ab12', 'eth0')).toBe(false);
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

describe('services and start phases', () => {
  const plan = () => planSandbox({ stateDir: path.join(tmp, 'svc'), workers: 2, datapath: 'netdev' });
  const stunnel = { binary: 'stunnel4', confPath: (n: string) => `/etc/${n}.conf` };

  it('runs every daemon in the foreground, in its node namespace, with files under the state dir', () => {
    const p = plan();
    const all = allServices(sandboxServices(p, stunnel, { nb: 16641, sb: 16642 }));
    expect(all.map((s) => s.name)).toEqual(
      expect.arrayContaining(['central-nb-ovsdb', 'central-sb-ovsdb', 'central-northd', 'central-stunnel', 'worker1-ovsdb', 'worker1-vswitchd', 'worker1-stunnel', 'worker1-ovn-controller', 'worker2-ovn-controller']),
    );
    for (const s of all) {
      expect(s.argv.join(' ')).not.toMatch(/--detach|--monitor/);
      expect(s.netns?.startsWith(p.names.prefix)).toBe(true);
      expect(s.logFile.startsWith(p.stateDir)).toBe(true);
    }
    const nb = all.find((s) => s.name === 'central-nb-ovsdb');
    // Plaintext OVSDB only on the central's loopback; TLS is stunnel's job.
    expect(nb?.argv).toContain('--remote=ptcp:16641:127.0.0.1');
    expect(nb?.argv.filter((a) => a.startsWith('--remote=ptcp:')).every((a) => a.endsWith(':127.0.0.1'))).toBe(true);
  });

  it('phaseList keeps running later-phase services whose dependencies are listed, and drops the rest', () => {
    const s = (name: string, after?: string[]): ServiceSpec => ({ name, argv: ['x'], logFile: '/l', ...(after ? { after } : {}) });
    const all = [s('db'), s('vswitchd', ['db']), s('stunnel'), s('controller', ['vswitchd', 'stunnel'])];
    const phase1 = [all[0] as ServiceSpec];
    expect(phaseList(phase1, all, new Set()).map((x) => x.name)).toEqual(['db']);
    expect(phaseList(phase1, all, new Set(['vswitchd', 'stunnel', 'controller'])).map((x) => x.name)).toEqual(['db', 'vswitchd', 'stunnel', 'controller']);
    // vswitchd died: the controller that starts after it cannot be listed before vswitchd is.
    expect(phaseList(phase1, all, new Set(['stunnel', 'controller'])).map((x) => x.name)).toEqual(['db', 'stunnel']);
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

  it('points ovn-controller only at the local stunnel client and sets the userspace datapath', () => {
    const p = planSandbox({ stateDir: path.join(tmp, 'ovs'), workers: 2, datapath: 'netdev' });
    const w = p.workers[0];
    if (w === undefined) throw new Error('no worker');
    const args = workerOvsArgs(p, w, 6642);
    expect(args).toContain('external_ids:ovn-remote=tcp:127.0.0.1:6642');
    expect(args).toContain(`external_ids:ovn-encap-ip=${w.address}`);
    expect(args).toContain('external_ids:ovn-bridge-datapath-type=netdev');
    expect(args).toContain(`other-config:hwaddr="${w.phyMac}"`);
    const kernel = workerOvsArgs(planSandbox({ stateDir: path.join(tmp, 'ovs'), workers: 2, datapath: 'system' }), w, 6642);
    expect(kernel).not.toContain('br-phy');
    expect(kernel).toContain('external_ids:ovn-bridge-datapath-type=system');
  });
});
