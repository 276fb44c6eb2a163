import { describe, expect, it } from 'vitest';
import type { StatusReport } from '../src/sandbox/status.js';
import { judge, renderStatusTable } from '../src/sandbox/status-verdict.js';

/** A status report as collectStatus would return it from a healthy two-worker sandbox (recorded by hand). */
function recorded(): StatusReport {
  const daemon = (name: string, node: string, program: string, pid: number) => ({ name, node, program, running: true, pid, restarts: 0, healthy: true, detail: 'ok' });
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
    hosts: [
      { name: 'central', netns: 'od1234-central', root: '/tmp/sbx/hosts/central', status: 'converged', health: [{ check: 'raft-member OVN_Northbound', ok: true, detail: 'leader' }] },
      { name: 'worker1', netns: 'od1234-w1', root: '/tmp/sbx/hosts/worker1', status: 'converged', health: [{ check: 'ovn-controller-connected', ok: true, detail: 'connected' }] },
    ],
    daemons: [daemon('central-ovn-nb-ovsdb', 'central', 'ovsdb-server', 10), daemon('worker1-ovn-controller', 'worker1', 'ovn-controller', 11)],
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
    for (const key of ['healthy', 'stateDir', 'pkiDir', 'endpoints', 'hosts', 'daemons', 'chassis', 'ports', 'certificates', 'datapath', 'supervisor']) expect(json).toHaveProperty(key);
    expect(json.endpoints).toEqual({ nb: 'ssl:10.150.1.1:6641', sb: 'ssl:10.150.1.1:6642' });
  });

  it('names every failed check', () => {
    const r = recorded();
    r.phase = 'starting';
    const d = r.daemons[1];
    if (d !== undefined) Object.assign(d, { running: false, pid: null, healthy: false, detail: 'not running (last exit SIGKILL)' });
    r.tls.sb = { ...r.tls.sb, reachable: false, error: 'Connection reset by peer' };
    const c = r.chassis[1];
    if (c !== undefined) c.registered = false;
    r.ports[1] = { name: 'vm2', expectedChassis: 'worker2', chassis: 'worker1', up: false, iface: 'no-carrier' };
    const cert = r.certificates[0];
    if (cert !== undefined) cert.status = 'expired';
    const w1 = r.hosts[1];
    if (w1 !== undefined) Object.assign(w1, { status: 'unhealthy', health: [{ check: 'ovn-controller-connected', ok: false, detail: 'not connected' }] });
    const j = judge(r);
    expect(j.healthy).toBe(false);
    const text = j.problems.join('\n');
    expect(text).toMatch(/last `up` did not finish/);
    expect(text).toMatch(/worker1-ovn-controller: not running/);
    expect(text).toMatch(/SB not reachable through TLS/);
    expect(text).toMatch(/chassis worker2 not registered/);
    expect(text).toMatch(/port vm2 is not up/);
    expect(text).toMatch(/port vm2 bound to worker1, expected worker2/);
    expect(text).toMatch(/vm2's interface has no carrier/);
    expect(text).toMatch(/certificate central expired/);
    expect(text).toMatch(/host worker1: ovn-controller-connected: not connected/);
  });

  it('renders a table with every daemon, pid and health', () => {
    const text = renderStatusTable(judge(recorded()));
    expect(text).toMatch(/^Sandbox 1234 in \/tmp\/sbx: HEALTHY/);
    expect(text).toMatch(/central-ovn-nb-ovsdb\s+central\s+10\s+0\s+ok/);
    expect(text).toMatch(/worker1\s+od1234-w1\s+converged\s+1\/1 checks ok/);
    expect(text).toMatch(/SB\s+ssl:10\.150\.1\.1:6642\s+od1234-w1\s+yes \(TLSv1\.2/);
    expect(text).toMatch(/vm2\s+worker2\s+worker2\s+yes\s+ok/);
  });
});
