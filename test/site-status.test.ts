/**
 * Site status verdicts on cluster/status output captured from a real 3-member cluster, the
 * status table, and the collection over a scripted host ("mocked ssh").
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RemoteHost } from '../src/deploy/remote.js';
import { validateInventory, type Inventory } from '../src/inventory/index.js';
import type { RunResult } from '../src/runner.js';
import { parseClusterStatus } from '../src/health/cluster-status.js';
import { collectSiteStatus } from '../src/site-status/collect.js';
import { judgeDaemons } from '../src/site-status/daemons.js';
import { centralLoopback, expectedMembers } from '../src/site-status/expected.js';
import { agentProblems, hostProblems, judgeChassis, judgeRaft, judgeSite } from '../src/site-status/judge.js';
import { renderSiteStatus } from '../src/site-status/render.js';
import { judgeMetadataAgents } from '../src/site-status/metadata.js';

const fixture = (name: string): string => readFileSync(path.join(import.meta.dirname, 'fixtures', 'cluster-status', name), 'utf8');
// The captured cluster ran on 127.0.0.1:47641..47643 (c1 bootstrapped it).
const members = [1, 2, 3].map((i) => ({ host: `c${i}`, address: `tcp:127.0.0.1:4764${i}` }));
const report = (host: string, file: string) => ({ host, status: parseClusterStatus(fixture(file)) });

describe('judgeRaft', () => {
  it('a healthy cluster: one leader, every member connected', () => {
    const v = judgeRaft('OVN_Northbound', members, [report('c1', 'nb-3-a.txt'), report('c2', 'nb-3-b.txt'), report('c3', 'nb-3-c.txt')], new Map());
    expect(v.problems).toEqual([]);
    expect(v.leader).toEqual({ sid: '8c74', host: 'c1' });
    expect(v.term).toBe(1);
    expect(v.members.map((m) => [m.host, m.role, m.connected, m.state])).toEqual([
      ['c1', 'leader', true, 'ok'],
      ['c2', 'follower', true, 'ok'],
      ['c3', 'follower', true, 'ok'],
    ]);
  });

  it('the leader host is down: new leader, the old one shown missing and disconnected', () => {
    const v = judgeRaft('OVN_Northbound', members, [report('c2', 'nb-leader-down-b.txt'), report('c3', 'nb-leader-down-c.txt')], new Map([['c1', 'ssh: connect to host 10.0.0.1 port 22: No route to host']]));
    expect(v.leader).toEqual({ sid: '321c', host: 'c2' });
    expect(v.term).toBe(2);
    const c1 = v.members.find((m) => m.host === 'c1');
    expect(c1).toMatchObject({ state: 'missing', connected: false, inCluster: true, reporting: false, sid: '8c74' });
    expect(c1?.detail).toMatch(/host unreachable: .*No route to host/);
    expect(v.problems).toEqual([expect.stringMatching(/^OVN_Northbound: c1 \(tcp:127.0.0.1:47641\) missing: host unreachable/)]);
  });

  it('no leader, a member that is not in the cluster, and a stranger', () => {
    const v = judgeRaft('OVN_Southbound', [...members, { host: 'c4', address: 'tcp:127.0.0.9:1' }], [report('c2', 'nb-candidate-b.txt')], new Map());
    expect(v.leader).toBeUndefined();
    expect(v.problems[0]).toMatch(/no leader \(c2: candidate, disconnected from the cluster/);
    expect(v.members.find((m) => m.host === 'c4')?.state).toBe('not-a-member');
    const strangers = judgeRaft('OVN_Northbound', members.slice(0, 2), [report('c1', 'nb-3-a.txt'), report('c2', 'nb-3-b.txt')], new Map());
    expect(strangers.members.find((m) => m.address === 'tcp:127.0.0.1:47643')).toMatchObject({ host: undefined, state: 'unknown-member' });
  });
});

describe('hostProblems', () => {
  const w1 = (services: Parameters<typeof judgeDaemons>[0], health: { check: string; ok: boolean; detail: string; service?: string }[]) => ({
    name: 'w1',
    roles: ['worker'],
    reachable: true,
    applyStatus: 'unhealthy',
    health,
    daemons: judgeDaemons(services, health),
  });
  const run = (name: string) => ({ name, running: true, pid: 7, restarts: 0 });

  it('names a dead daemon once, with how it went down, not again for its checks', () => {
    const health = [
      { check: 'service-running ovn-controller', ok: false, detail: 'not running (restarts 2)', service: 'ovn-controller' },
      { check: 'ovn-controller-connected', ok: false, detail: 'no control socket', service: 'ovn-controller' },
      { check: 'service-running ovs-vswitchd', ok: true, detail: 'running', service: 'ovs-vswitchd' },
    ];
    const dead = { name: 'ovn-controller', running: false, restarts: 2, lastExit: { code: null, signal: 'SIGKILL', at: '2026-12-08T01:00:00Z' } };
    expect(hostProblems([w1([dead, run('ovs-vswitchd')], health)])).toEqual(['w1: ovn-controller: not running (last exit SIGKILL at 2026-12-08T01:00:00Z)']);
  });

  it("a running daemon's failing check, a host check and a check its healthy daemon does not explain are each one line", () => {
    const health = [
      { check: 'unixctl ovs-vswitchd version', ok: false, detail: 'no answer', service: 'ovs-vswitchd' },
      { check: 'file /etc/ovn-deploy/managed-by-ovn-deploy', ok: false, detail: 'missing' },
      // Read a moment before the service manager said it runs: not hidden by the daemon's view.
      { check: 'service-running ovn-controller', ok: false, detail: 'not running (restarts 0)', service: 'ovn-controller' },
    ];
    expect(hostProblems([w1([run('ovs-vswitchd'), run('ovn-controller')], health)])).toEqual([
      'w1: ovs-vswitchd: unixctl ovs-vswitchd version: no answer',
      'w1: file /etc/ovn-deploy/managed-by-ovn-deploy: missing',
      'w1: service-running ovn-controller: not running (restarts 0)',
    ]);
  });

  it('an unhealthy metadata agent is its own line only where its host shows nothing wrong', () => {
    const agent = (host: string) => ({ chassis: host, host, runsAs: 'process' as const, running: true, pid: 9, restarts: 0, registered: undefined, healthy: false, detail: 'no registration check in the bundle (re-deploy)' });
    const clean = w1([run('ovn-metadata-agent')], [{ check: 'service-running ovn-metadata-agent', ok: true, detail: 'running', service: 'ovn-metadata-agent' }]);
    const failing = { ...w1([run('ovn-metadata-agent')], [{ check: 'metadata-registered w2', ok: false, detail: 'no Chassis_Private row', service: 'ovn-metadata-agent' }]), name: 'w2' };
    expect(agentProblems([agent('w1'), agent('w2')], [clean, failing])).toEqual(['metadata agent of w1: no registration check in the bundle (re-deploy)']);
  });

  it('an unreachable host or one whose check did not run is one line', () => {
    expect(hostProblems([{ ...w1([], []), reachable: false, error: 'Connection timed out' }, { ...w1([], []), name: 'w2', error: 'apply --check exited 2' }])).toEqual([
      'w1: unreachable: Connection timed out',
      'w2: apply --check exited 2',
    ]);
  });
});

describe('site verdict', () => {
  const hosts = [
    { name: 'c1', roles: ['central'], reachable: true, applyStatus: 'converged', health: [{ check: 'raft', ok: true, detail: '' }], daemons: [] },
    { name: 'w1', roles: ['worker'], reachable: true, applyStatus: 'converged', health: [], daemons: [] },
  ];
  it('healthy, degraded, unreachable', () => {
    const raft = [judgeRaft('OVN_Northbound', members, [report('c1', 'nb-3-a.txt'), report('c2', 'nb-3-b.txt'), report('c3', 'nb-3-c.txt')], new Map())];
    const healthy = judgeSite('lab', hosts, raft, judgeChassis(['w1'], [{ name: 'w1', hostname: 'w1' }]));
    expect(healthy.verdict).toBe('healthy');
    const missing = judgeSite('lab', hosts, raft, judgeChassis(['w1', 'w2'], [{ name: 'w1' }, { name: 'zz' }]));
    expect(missing.verdict).toBe('degraded');
    expect(missing.problems).toEqual(['chassis w2 is not registered in the Southbound']);
    expect(missing.chassis.find((c) => c.name === 'zz')).toMatchObject({ expected: false, registered: true });
    const none = judgeSite('lab', hosts.map((h) => ({ ...h, reachable: false, error: 'timeout' })), [], judgeChassis(['w1'], undefined));
    expect(none.verdict).toBe('unreachable');
    const text = renderSiteStatus(missing);
    expect(text).toMatch(/^Site lab: DEGRADED/);
    expect(text).toMatch(/OVN_Northbound: leader c1 \(8c74\), term 1/);
    expect(text).toMatch(/w2\s+-\s+-\s+NO/);
  });
});

describe('a host\'s daemons (judgeDaemons)', () => {
  const health = [
    { check: 'service-running ovn-nb-ovsdb', ok: true, detail: 'pid 10', service: 'ovn-nb-ovsdb' },
    { check: 'raft-member OVN_Northbound', ok: false, detail: 'status joining cluster', service: 'ovn-nb-ovsdb' },
    { check: 'tcp-listen 10.0.0.1:6641', ok: false, detail: 'ECONNREFUSED' },
    { check: 'ovn-controller-connected', ok: true, detail: 'connected', service: 'ovn-controller' },
  ];
  it('healthy when it runs under its supervisor and its own checks pass; a check naming no service stays the host\'s', () => {
    const d = judgeDaemons(
      [
        { name: 'ovn-nb-ovsdb', running: true, pid: 10, restarts: 0 },
        { name: 'ovn-controller', running: true, pid: 11, restarts: 1 },
        { name: 'stunnel-server', running: true, pid: 12, restarts: 0 },
      ],
      health,
    );
    expect(d.map((x) => [x.name, x.healthy, x.detail])).toEqual([
      ['ovn-nb-ovsdb', false, 'raft-member OVN_Northbound: status joining cluster'],
      ['ovn-controller', true, 'ovn-controller-connected: connected'],
      ['stunnel-server', true, 'running'],
    ]);
  });

  it('a daemon whose supervisor died runs, with its pid, but is not healthy; a dead one says how it ended', () => {
    const d = judgeDaemons(
      [
        { name: 'ovn-northd', running: false, unsupervisedPid: 20, restarts: 0 },
        { name: 'ovn-controller', running: false, restarts: 3, lastExit: { code: null, signal: 'SIGKILL', at: '2026-12-07T00:00:00.000Z' } },
      ],
      health,
    );
    expect(d[0]).toEqual({ name: 'ovn-northd', running: true, pid: 20, restarts: 0, healthy: false, detail: expect.stringMatching(/^runs \(pid 20\) without its supervisor/) as string });
    expect(d[1]).toEqual({ name: 'ovn-controller', running: false, pid: null, restarts: 3, healthy: false, detail: 'not running (last exit SIGKILL at 2026-12-07T00:00:00.000Z)' });
  });
});

describe('metadata agents in the site status', () => {
  const inv = (image?: string): Inventory =>
    validateInventory({
      site: 'lab',
      hosts: [
        { name: 'c1', addresses: ['10.9.0.11'], roles: ['central'] },
        { name: 'w1', addresses: ['10.9.0.21'], roles: ['worker', 'metadata-agent'], encap: { ip: '10.9.0.21' } },
        { name: 'w2', addresses: ['10.9.0.22'], roles: ['worker'], encap: { ip: '10.9.0.22' } },
      ],
      metadataAgent: { novaMetadataHost: '10.9.0.5', ...(image === undefined ? {} : { image }) },
    }).inventory;
  const agent = 'ovn-metadata-agent';
  const agentChecks = (registered: boolean, container?: boolean) => [
    { check: 'service-running ovn-controller', ok: true, detail: 'pid 7', service: 'ovn-controller' },
    { check: 'service-running ovn-metadata-agent', ok: true, detail: 'pid 9', service: agent },
    { check: 'metadata-registered w1', ok: registered, detail: registered ? 'registered as 5e1f' : 'Chassis_Private w1 has no neutron:ovn-metadata-id', service: agent },
    { check: 'unix-listen /var/lib/ovn-deploy/neutron/metadata_proxy', ok: true, detail: 'accepts connections', service: agent },
    ...(container === true ? [{ check: 'container-healthy ovn-metadata-agent', ok: registered, detail: registered ? 'healthy' : 'unhealthy: chassis w1 not registered', service: agent }] : []),
  ];
  const w1 = (health: { check: string; ok: boolean; detail: string }[], more = {}) => ({ name: 'w1', roles: ['worker', 'metadata-agent'], reachable: true, applyStatus: 'converged', health, daemons: [], ...more });

  it('per chassis with the role: registered and healthy from its host checks, only its own checks counted; the table shows it', () => {
    const ok = judgeMetadataAgents(inv('localhost/agent:1'), [w1(agentChecks(true, true))]);
    expect(ok).toEqual([{ chassis: 'w1', host: 'w1', runsAs: 'container', running: undefined, pid: null, restarts: 0, registered: true, healthy: true, detail: 'registered as 5e1f' }]);
    const lost = judgeMetadataAgents(inv(), [w1(agentChecks(false))]);
    expect(lost[0]).toMatchObject({ runsAs: 'process', registered: false, healthy: false });
    expect(lost[0]?.detail).toMatch(/metadata-registered w1: Chassis_Private w1 has no neutron:ovn-metadata-id/);
    // Another check failing on the host (ovn-controller) is the host's problem, not the agent's.
    const other = agentChecks(true, true).map((c) => (c.check === 'service-running ovn-controller' ? { ...c, ok: false } : c));
    expect(judgeMetadataAgents(inv('localhost/agent:1'), [w1(other)])[0]?.healthy).toBe(true);
    expect(judgeMetadataAgents(inv(), [w1([], { reachable: false, error: 'ssh: timeout' })])[0]).toMatchObject({ registered: undefined, healthy: false, detail: 'ssh: timeout' });
    const text = renderSiteStatus(judgeSite('lab', [w1(agentChecks(false, true))], [], judgeChassis(['w1'], [{ name: 'w1' }]), judgeMetadataAgents(inv('localhost/agent:1'), [w1(agentChecks(false, true))])));
    expect(text).toMatch(/METADATA AGENT\s+HOST\s+RUNS AS\s+REGISTERED\s+HEALTH\n\s*w1\s+w1\s+container\s+NO\s+FAIL: not registered in the SB: metadata-registered w1/);
  });
});

describe('collectSiteStatus (mocked ssh)', () => {
  it('asks every host, reads the clusters of reachable centrals and the chassis through one', async () => {
    const inv: Inventory = validateInventory({
      site: 'lab',
      hosts: [
        { name: 'c1', addresses: ['10.9.0.11'], roles: ['central'] },
        { name: 'c2', addresses: ['10.9.0.12'], roles: ['central'] },
        { name: 'w1', addresses: ['10.9.0.21'], roles: ['worker'], encap: { ip: '10.9.0.21' } },
      ],
    }).inventory;
    expect(expectedMembers(inv, 'OVN_Southbound')[0]?.address).toBe(`tcp:${centralLoopback('lab', 'c1')}:${inv.loopbackPorts.sbRaft}`);
    expect(centralLoopback('lab', 'c1')).toMatch(/^127\.([1-9]\d*)\.\d+\.([1-9]\d*)$/);
    // c1's cluster/status is the captured leader's, rewritten to the site's expected addresses.
    const nb = expectedMembers(inv, 'OVN_Northbound');
    const rewrite = (t: string): string =>
      t.replaceAll('tcp:127.0.0.1:47641', nb[0]?.address ?? '').replaceAll('tcp:127.0.0.1:47642', nb[1]?.address ?? '').replaceAll(/^.*9c4d at.*\n?/gm, '');
    const asked: string[] = [];
    const connect = (h: { name: string }): RemoteHost => ({
      name: h.name,
      unreachableReason: async () => (h.name === 'c2' ? 'Connection timed out' : undefined),
      ensureTool: async () => false,
      pushDirectory: async () => undefined,
      close: async () => undefined,
      run: async (argv): Promise<RunResult> => {
        asked.push(`${h.name}: ${argv.slice(0, 3).join(' ')}`);
        if (argv[2] === 'apply') {
          const services = h.name === 'w1' ? [{ name: 'ovn-controller', running: true, pid: 41, restarts: 2 }] : [];
          const health = [{ check: 'ovn-controller-connected', ok: true, detail: 'connected', service: 'ovn-controller' }];
          return { stdout: JSON.stringify({ host: h.name, status: 'converged', changes: [], health, services }), stderr: '', exitCode: 0 };
        }
        if (argv[0] === 'ovn-appctl') {
          const text = rewrite(fixture('nb-leader-down-b.txt').replace('321c (321c at tcp:127.0.0.1:47642) (self)', 'XXXX').replace('8c74 (8c74 at tcp:127.0.0.1:47641)', '321c (321c at tcp:127.0.0.1:47642)').replace('XXXX', '8c74 (8c74 at tcp:127.0.0.1:47641) (self)'));
          return { stdout: text.replace(/Address: .*/, `Address: ${nb[0]?.address ?? ''}`).replace(/Server ID: .*/, 'Server ID: 8c74 (8c74b3e6-29c6-4572-81ff-24cd071c7994)').replace('Leader: self', 'Leader: self'), stderr: '', exitCode: 0 };
        }
        if (argv[0] === 'ovn-sbctl' && argv.includes('Encap')) return { stdout: JSON.stringify({ headings: ['chassis_name', 'ip'], data: [['w1', '10.9.0.21']] }), stderr: '', exitCode: 0 };
        if (argv[0] === 'ovn-sbctl') return { stdout: JSON.stringify({ headings: ['name', 'hostname'], data: [['w1', 'w1.lab']] }), stderr: '', exitCode: 0 };
        return { stdout: '', stderr: 'unexpected', exitCode: 1 };
      },
    });
    const s = await collectSiteStatus(inv, connect);
    expect(asked.filter((a) => a.startsWith('c2'))).toEqual([]);
    expect(asked).toContain('c1: ovn-sbctl --db=unix:/var/run/ovn/ovnsb_db.sock --no-leader-only');
    expect(s.verdict).toBe('degraded');
    expect(s.hosts.map((h) => [h.name, h.reachable])).toEqual([['c1', true], ['c2', false], ['w1', true]]);
    expect(s.chassis).toEqual([{ name: 'w1', hostname: 'w1.lab', encapIp: '10.9.0.21', expected: true, registered: true }]);
    // Each host's daemons come with its check: pid, restarts, and the checks about them.
    expect(s.hosts.find((h) => h.name === 'w1')?.daemons).toEqual([{ name: 'ovn-controller', running: true, pid: 41, restarts: 2, healthy: true, detail: 'ovn-controller-connected: connected' }]);
    expect(renderSiteStatus(s)).toMatch(/DAEMON\s+HOST\s+PID\s+RESTARTS\s+HEALTH\n\s*ovn-controller\s+w1\s+41\s+2\s+ok: ovn-controller-connected: connected/);
    const nbView = s.raft.find((r) => r.db === 'OVN_Northbound');
    expect(nbView?.leader?.host).toBe('c1');
    expect(nbView?.members.find((m) => m.host === 'c2')).toMatchObject({ state: 'missing', connected: false });
    expect(s.problems).toContain('c2: unreachable: Connection timed out');
  });
});
