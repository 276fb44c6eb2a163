import { describe, expect, it } from 'vitest';
import type { StatusReport } from '../src/sandbox/status.js';
import { judge, renderStatusTable } from '../src/sandbox/status-verdict.js';

/** A status report as collectStatus would return it from a healthy two-worker sandbox (recorded by hand). */
function recorded(): StatusReport {
  const view = (service: string, pid: number) => ({ name: service, running: true, pid, restarts: 0, healthy: true, detail: 'running' });
  const daemon = (node: string, service: string, pid: number) => ({ ...view(service, pid), name: `${node}-${service}`, node, service });
  const host = (name: string, roles: string[], check: string, detail: string, daemons: ReturnType<typeof view>[]) => ({ name, roles, reachable: true, applyStatus: 'converged', netns: `od1234-${name === 'central' ? 'central' : 'w1'}`, root: `/tmp/sbx/hosts/${name}`, status: 'converged' as const, health: [{ check, ok: true, detail }], daemons });
  const member = { host: 'central', address: 'tcp:127.1.0.1:6643', sid: 'a1b2', inCluster: true, reporting: true, role: 'leader', status: 'cluster member', term: 1, connected: true, state: 'ok' as const, detail: 'leader, cluster member' };
  const raft = (db: 'OVN_Northbound' | 'OVN_Southbound') => ({ db, leader: { sid: 'a1b2', host: 'central' }, term: 1, clusterId: 'c0ffee', members: [member], problems: [] });
  const tls = (port: number, db: string) => ({ endpoint: `ssl:10.150.1.1:${port}`, from: 'od1234-w1', reachable: true, database: db, protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES256-GCM-SHA384', error: null });
  return {
    healthy: false,
    id: '1234',
    stateDir: '/tmp/sbx',
    pkiDir: '/tmp/sbx/pki',
    phase: 'up',
    datapath: 'netdev',
    supervisor: 'own',
    endpoints: { nb: 'ssl:10.150.1.1:6641', sb: 'ssl:10.150.1.1:6642' },
    tlsMode: 'stunnel',
    tls: { nb: tls(6641, 'OVN_Northbound'), sb: tls(6642, 'OVN_Southbound') },
    hosts: [host('central', ['central'], 'raft-member OVN_Northbound', 'leader', [view('ovn-nb-ovsdb', 10)]), host('worker1', ['worker'], 'ovn-controller-connected', 'connected', [view('ovn-controller', 11)])],
    daemons: [daemon('central', 'ovn-nb-ovsdb', 10), daemon('worker1', 'ovn-controller', 11)],
    raft: [raft('OVN_Northbound'), raft('OVN_Southbound')],
    chassis: [
      { name: 'worker1', hostname: 'worker1', encapIp: '10.150.1.11', expected: true, registered: true },
      { name: 'worker2', hostname: 'worker2', encapIp: '10.150.1.12', expected: true, registered: true },
    ],
    ports: [
      { name: 'vm1', expectedChassis: 'worker1', chassis: 'worker1', up: true, iface: 'ok' },
      { name: 'vm2', expectedChassis: 'worker2', chassis: 'worker2', up: true, iface: 'ok' },
    ],
    certificates: [{ name: 'central', role: 'central', notAfter: '2028-01-01T00:00:00.000Z', daysLeft: 700, status: 'valid', due: false }],
    crl: { nextUpdate: '2026-12-24T00:00:00.000Z', daysLeft: 29 },
    problems: [],
    checkedAt: '2026-11-24T00:00:00.000Z',
  };
}

describe('status verdict (mocked inputs)', () => {
  it('is healthy when every check passes, and the JSON carries what scripts need', () => {
    const r = judge(recorded());
    expect(r.healthy).toBe(true);
    expect(r.problems).toEqual([]);
    const json = JSON.parse(JSON.stringify(r)) as Record<string, unknown>;
    for (const key of ['healthy', 'stateDir', 'pkiDir', 'endpoints', 'hosts', 'daemons', 'raft', 'chassis', 'ports', 'certificates', 'datapath', 'supervisor']) expect(json).toHaveProperty(key);
    expect(json.endpoints).toEqual({ nb: 'ssl:10.150.1.1:6641', sb: 'ssl:10.150.1.1:6642' });
  });

  it('names every failed check', () => {
    const r = recorded();
    r.phase = 'starting';
    // worker1's ovn-controller died: its host's view of it, its checks, and the sandbox's daemon list.
    const down = { running: false, pid: null, healthy: false, detail: 'not running (last exit SIGKILL)' };
    Object.assign(r.daemons[1] ?? {}, down);
    Object.assign(r.hosts[1]?.daemons[0] ?? {}, down);
    r.tls.sb = { ...r.tls.sb, reachable: false, error: 'Connection reset by peer' };
    const c = r.chassis[1];
    if (c !== undefined) c.registered = false;
    r.ports[1] = { name: 'vm2', expectedChassis: 'worker2', chassis: 'worker1', up: false, iface: 'no-carrier' };
    const cert = r.certificates[0];
    if (cert !== undefined) cert.status = 'expired';
    const w1 = r.hosts[1];
    if (w1 !== undefined) {
      Object.assign(w1, {
        status: 'unhealthy',
        health: [
          { check: 'service-running ovn-controller', ok: false, detail: 'not running (restarts 1)', service: 'ovn-controller' },
          { check: 'ovn-controller-connected', ok: false, detail: 'not connected', service: 'ovn-controller' },
          { check: 'file /etc/ovn-deploy/managed-by-ovn-deploy', ok: false, detail: 'missing' },
        ],
      });
    }
    const sb = r.raft[1];
    if (sb !== undefined) Object.assign(sb, { leader: undefined, problems: ['OVN_Southbound: no leader (central: candidate, joining cluster)'] });
    const j = judge(r);
    expect(j.healthy).toBe(false);
    const text = j.problems.join('\n');
    expect(text).toMatch(/last `up` did not finish/);
    // The dead daemon is named once, with how it went down (not again for each of its checks).
    expect(text).toMatch(/worker1: ovn-controller: not running \(last exit SIGKILL\)/);
    expect(text).not.toMatch(/service-running ovn-controller|ovn-controller-connected/);
    expect(text).toMatch(/SB not reachable through TLS/);
    expect(text).toMatch(/chassis worker2 is not registered/);
    expect(text).toMatch(/port vm2 is not up/);
    expect(text).toMatch(/port vm2 bound to worker1, expected worker2/);
    expect(text).toMatch(/vm2's interface has no carrier/);
    expect(text).toMatch(/certificate central expired/);
    expect(text).toMatch(/worker1: file \/etc\/ovn-deploy\/managed-by-ovn-deploy: missing/);
    expect(text).toMatch(/OVN_Southbound: no leader/);
    expect(renderStatusTable(j)).toMatch(/OVN_Southbound: NO LEADER, term 1, cluster c0ffee, 1\/1 members ok/);
  });

  it('renders a table with every daemon, pid and health', () => {
    const text = renderStatusTable(judge(recorded()));
    expect(text).toMatch(/^Sandbox 1234 in \/tmp\/sbx: HEALTHY/);
    // The hosts, daemons and clusters as site status shows them.
    expect(text).toMatch(/\novn-nb-ovsdb\s+central\s+10\s+0\s+ok/);
    expect(text).toMatch(/OVN_Northbound: leader central \(a1b2\), term 1, cluster c0ffee, 1\/1 members ok/);
    expect(text).toMatch(/\nworker1\s+worker\s+yes\s+converged\s+ok \(1 checks\)/);
    expect(text).toMatch(/namespaces: central od1234-central, worker1 od1234-w1/);
    expect(text).toMatch(/\nworker2\s+worker2\s+10\.150\.1\.12\s+yes/);
    expect(text).toMatch(/SB\s+ssl:10\.150\.1\.1:6642\s+od1234-w1\s+yes \(TLSv1\.2/);
    expect(text).toMatch(/vm2\s+worker2\s+worker2\s+yes\s+ok/);
  });
});
