/**
 * Native TLS end to end through the built CLI (`up --tls native`, 1 central + 2 workers): the
 * daemons' own TLS (no stunnel anywhere), ping vm1 -> vm2, then the TLS policy of every listener
 * the central's ovsdb-servers open (NB, the chassis' SB, the admin SB, both RAFT ports), the
 * Southbound's RBAC with worker1's own certificate, the firewall that is native mode's only gate
 * on the NB and the admin SB port, and the gap native mode has by design (no CRL check).
 *
 * Every refusal is paired with the same probe that passes, so the policy refuses, not a broken
 * setup. Probes come from the namespace of the host that uses the listener (its firewall admits it).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PORTS, DEFAULT_SB_ADMIN_PORT } from '../src/inventory/defaults.js';
import { planMetadata } from '../src/metadata/sandbox-plan.js';
import { hostPaths, hostRenderedPaths, sandboxPaths } from '../src/paths.js';
import { issueCertificate, normalizeSerial, revokeCertificate } from '../src/pki/index.js';
import { ZxRunner } from '../src/runner.js';
import { sandboxId, sandboxNames } from '../src/sandbox/naming.js';
import { ALLOWED_CIPHER_RE } from '../src/stunnel/index.js';
import { probeTls, type TlsProbeOptions } from '../src/tools/tls.js';
import { makeForeignCa, makeLeaf, type Pair } from './helpers/tls-fixtures.js';
import { startNbMonitor, startProbeWriter, type ProbeReport } from './helpers/ovsdb-traffic.js';
import { startFakeNova } from './helpers/fake-nova.js';
import { vmCurl } from './helpers/metadata-e2e.js';
import { cli, cliOk, inNetns, nbNames, requireBuiltCli, status, waitFor } from './sandbox-helpers.js';

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('native-tls.slow.test.ts: skipped, needs root (network namespaces, daemons)');

const runner = new ZxRunner();
type Listener = 'nb' | 'sb' | 'sbAdmin' | 'nbRaft' | 'sbRaft';
const PORT: Record<Listener, number> = { nb: DEFAULT_PORTS.nb, sb: DEFAULT_PORTS.sb, sbAdmin: DEFAULT_SB_ADMIN_PORT, nbRaft: DEFAULT_PORTS.nbRaft, sbRaft: DEFAULT_PORTS.sbRaft };
const LISTENERS = Object.keys(PORT) as Listener[];

describe.skipIf(notRoot)('up --tls native: ovsdb-server\'s own TLS, Southbound RBAC, firewall (1 central + 2 workers)', () => {
  let parent: string;
  let dir: string;
  let centralIp: string;
  let ns: { central: string; operator: string; worker1: string; worker2: string };
  const hostPki = (host: string) => hostPaths(path.join(dir, 'hosts', host)).pki;
  /** Who uses each listener (and so may pass its firewall): RAFT the central itself, NB and admin SB the operator (cms), SB a chassis. */
  const user: Record<Listener, 'central' | 'operator' | 'worker1'> = { nb: 'operator', sb: 'worker1', sbAdmin: 'operator', nbRaft: 'central', sbRaft: 'central' };
  let foreign: Pair;
  let revoked: Pair;

  const good = (l: Listener, over: Partial<TlsProbeOptions> = {}): TlsProbeOptions => {
    const as = user[l];
    const pki = hostPki(as);
    const id = `probe-${randomBytes(4).toString('hex')}`;
    return {
      host: centralIp,
      port: PORT[l],
      netns: ns[as],
      caFile: pki.caBundle,
      verifyName: 'central',
      cert: pki.cert,
      key: pki.key,
      tlsVersion: '1.2',
      // RAFT answers no OVSDB echo on a fresh connection: the handshake is the probe there.
      ...(l === 'nbRaft' || l === 'sbRaft' ? { holdMs: 300 } : { send: JSON.stringify({ method: 'echo', params: [], id }), expect: new RegExp(`"id":"${id}","result":\\[\\]`) }),
      ...over,
    };
  };

  /** ovn-sbctl on the chassis' SB port as worker1, with worker1's own key and certificate. */
  const asWorker1 = (args: string[]) => {
    const pki = hostPki('worker1');
    return inNetns(ns.worker1, ['ovn-sbctl', `--db=ssl:${centralIp}:${PORT.sb}`, `--private-key=${pki.key}`, `--certificate=${pki.cert}`, `--ca-cert=${pki.caBundle}`, '--timeout=5', ...args]);
  };
  /** The same on the central's local socket (no TLS, no role): what the database really holds. */
  const direct = (args: string[]) => inNetns(ns.central, ['ovn-sbctl', `--db=unix:${path.join(dir, 'hosts', 'central', 'var', 'run', 'ovn', 'ovnsb_db.sock')}`, '--timeout=5', ...args]);

  const chassisNames = () => direct(['--bare', '--columns=name', 'list', 'Chassis']).out.split('\n').filter((l) => l.trim() !== '').sort();

  beforeAll(async () => {
    requireBuiltCli();
    parent = await fs.mkdtemp(path.join(os.tmpdir(), 'od-native-'));
    dir = path.join(parent, 'sandbox');
    const names = sandboxNames(sandboxId(dir));
    ns = { central: names.nodeNetns('central'), operator: names.nodeNetns('ops'), worker1: names.nodeNetns('w1'), worker2: names.nodeNetns('w2') };
  });

  afterAll(async () => {
    await cli(['down', '--dir', dir]);
    await fs.rm(parent, { recursive: true, force: true });
  });

  it('up --tls native pings vm1 -> vm2; status is healthy in native mode, and no stunnel runs', async () => {
    const r = await cliOk(['up', '--tls', 'native', '--dir', dir]);
    expect(r.stdout).toContain('ovn-trace vm1 -> vm2: network1 -> router1 -> network2 -> vm2');
    expect(r.stdout).toMatch(/Ping vm1 -> vm2 3\/3/);
    const s = await status(dir);
    centralIp = s.json.endpoints.sb.split(':')[1] ?? '';
    expect(s.code, JSON.stringify(s.json.problems)).toBe(0);
    expect(s.json.healthy).toBe(true);
    expect((s.json as unknown as { tlsMode: string }).tlsMode).toBe('native');
    expect(s.json.tls.sb.protocol).toBe('TLSv1.2');
    expect(s.json.daemons.map((d) => d.name).filter((n) => n.includes('stunnel'))).toEqual([]);
    const stunnels = (await runner.run(['pgrep', '-af', 'stunnel'], { allowFailure: true })).stdout.split('\n').filter((l) => l.includes(dir));
    expect(stunnels).toEqual([]);
    // ovn-controller's SB connection is the RBAC listener's (the Connection row with the role).
    expect(direct(['--bare', '--columns=role,target', 'list', 'Connection']).out.trim().split('\n').filter((l) => l !== '')).toEqual(['ovn-controller', `pssl:${PORT.sb}`]);
    expect(chassisNames()).toEqual(['worker1', 'worker2']);

    // Certificates for the cases below: of another CA (named like worker1), and one of the site's CA that is then revoked.
    foreign = await makeLeaf(path.join(parent, 'foreign'), 'worker1', await makeForeignCa(path.join(parent, 'foreign'), 'foreign-ca'), [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=clientAuth',
      'subjectAltName=DNS:worker1',
    ]);
    const name = `revoked-${randomBytes(2).toString('hex')}`;
    const c = await issueCertificate(s.json.pkiDir, { name, role: 'worker', keyBits: 2048 });
    revoked = { cert: c.certPath, key: c.keyPath! };
    await revokeCertificate(s.json.pkiDir, name);
  });

  it.each(LISTENERS)('%s accepts TLS 1.2 with an ECDHE + AES-GCM cipher and the site CA\'s certificate of its user', async (l) => {
    const r = await probeTls(runner, good(l));
    expect(r.ok, r.raw).toBe(true);
    expect(r.protocol).toBe('TLSv1.2');
    expect(r.cipher).toMatch(ALLOWED_CIPHER_RE);
  });

  it.each(LISTENERS.flatMap((l) => (['1', '1.1', '1.3'] as const).map((v) => [l, v] as const)))('%s refuses TLS %s (the same probe at TLS 1.2 passes)', async (l, version) => {
    const r = await probeTls(runner, good(l, { tlsVersion: version }));
    expect(r.ok, r.raw).toBe(false);
    expect(r.error).toMatch(/protocol version/);
    expect((await probeTls(runner, good(l))).ok).toBe(true);
  });

  it.each(
    LISTENERS.flatMap((l) =>
      [
        ['a CBC cipher', 'ECDHE-RSA-AES128-SHA256'],
        ['a cipher without ECDHE', 'AES256-GCM-SHA384'],
        ['finite-field DHE', 'DHE-RSA-AES128-GCM-SHA256'],
      ].map(([label, cipher]) => [l, label!, cipher!] as const),
    ),
  )('%s refuses %s (an allowed cipher passes and is the one negotiated)', async (l, _label, cipher) => {
    const r = await probeTls(runner, good(l, { cipher }));
    expect(r.ok, r.raw).toBe(false);
    expect(r.error).toMatch(/handshake failure/);
    const allowed = await probeTls(runner, good(l, { cipher: 'ECDHE-RSA-AES128-GCM-SHA256' }));
    expect(allowed.ok, allowed.raw).toBe(true);
    expect(allowed.cipher).toBe('ECDHE-RSA-AES128-GCM-SHA256');
  });

  it.each(LISTENERS)('%s refuses a client without a certificate and a certificate of another CA', async (l) => {
    const { cert: _c, key: _k, ...noCert } = good(l);
    const none = await probeTls(runner, noCert);
    expect(none.ok, none.raw).toBe(false);
    expect(none.error).toMatch(/handshake failure|certificate required/);
    const other = await probeTls(runner, good(l, { cert: foreign.cert, key: foreign.key }));
    expect(other.ok, other.raw).toBe(false);
    expect(other.error).toMatch(/unknown ca/);
    expect((await probeTls(runner, good(l))).ok).toBe(true);
  });

  it('does NOT refuse a revoked certificate of the site CA: OVSDB\'s TLS checks no CRL (the documented gap of native mode)', async () => {
    const r = await probeTls(runner, good('sb', { cert: revoked.cert, key: revoked.key }));
    expect(r.ok, r.raw).toBe(true);
  });

  it('RBAC: with worker1\'s own certificate, deleting or changing worker2\'s Chassis, Encap and port rows is refused; worker1\'s own updates succeed', async () => {
    const del = asWorker1(['chassis-del', 'worker2']);
    expect(del.code, del.out).not.toBe(0);
    // chassis-del also deletes worker2's Chassis_Private and Encap rows: whichever the server judges first is named.
    expect(del.out, del.out).toMatch(/RBAC rules for client \\?"worker1\\?" role \\?"ovn-controller\\?" prohibit row deletion from table \\?"(Chassis|Chassis_Private|Encap)\\?"/);
    const worker1Uuid = direct(['--bare', '--columns=_uuid', 'find', 'Chassis', 'name=worker1']).out.trim();
    expect(worker1Uuid).toMatch(/^[0-9a-f-]{36}$/);
    const vm2Chassis = () => direct(['--bare', '--columns=chassis', 'find', 'Port_Binding', 'logical_port=vm2']).out.trim();
    const before = vm2Chassis();
    expect(before).toMatch(/^[0-9a-f-]{36}$/);
    expect(before).not.toBe(worker1Uuid);
    // A column of vm2's binding that no chassis may write (chassis, encap, up, options... are
    // writable by any: northd's rbac_port_binding_update), and deleting the binding.
    const retag = asWorker1(['set', 'Port_Binding', 'vm2', 'tunnel_key=4000']);
    expect(retag.code, retag.out).not.toBe(0);
    expect(retag.out).toMatch(/permission error/);
    const destroy = asWorker1(['destroy', 'Port_Binding', direct(['--bare', '--columns=_uuid', 'find', 'Port_Binding', 'logical_port=vm2']).out.trim()]);
    expect(destroy.code, destroy.out).not.toBe(0);
    expect(destroy.out).toMatch(/permission error/);
    const encap = asWorker1(['set', 'Encap', direct(['--bare', '--columns=_uuid', 'find', 'Encap', 'chassis_name=worker2']).out.trim(), 'ip=10.0.0.66']);
    expect(encap.code, encap.out).not.toBe(0);
    expect(encap.out).toMatch(/permission error/);
    // Nothing changed: worker2 is still there, vm2 still bound to it.
    expect(chassisNames()).toEqual(['worker1', 'worker2']);
    expect(vm2Chassis()).toBe(before);

    const tag = randomBytes(3).toString('hex');
    const own = asWorker1(['set', 'Chassis', 'worker1', `external_ids:rbac-probe=${tag}`]);
    expect(own.code, own.out).toBe(0);
    expect(direct(['get', 'Chassis', 'worker1', 'external_ids:rbac-probe']).out.trim().replace(/^"|"$/g, '')).toBe(tag);
    // The same write on worker2's row is refused: the role, not a broken connection.
    const theirs = asWorker1(['set', 'Chassis', 'worker2', `external_ids:rbac-probe=${tag}`]);
    expect(theirs.code, theirs.out).not.toBe(0);
    expect(theirs.out).toMatch(/permission error/);
    expect(direct(['get', 'Chassis', 'worker2', 'external_ids:rbac-probe']).code).not.toBe(0);
    direct(['remove', 'Chassis', 'worker1', 'external_ids', 'rbac-probe']);
  });

  it('the limit of OVN\'s RBAC, shown: any chassis may set Port_Binding.chassis of any port (a claim, what live migration needs), so rebinding worker2\'s port is NOT refused', async () => {
    // northd's rbac_port_binding_auth is {""} in OVN 23.03 and 24.03: no authorization column.
    const worker1Uuid = direct(['--bare', '--columns=_uuid', 'find', 'Chassis', 'name=worker1']).out.trim();
    const vm2Chassis = () => direct(['--bare', '--columns=chassis', 'find', 'Port_Binding', 'logical_port=vm2']).out.trim();
    const before = vm2Chassis();
    const rebind = asWorker1(['set', 'Port_Binding', 'vm2', `chassis=${worker1Uuid}`]);
    try {
      // Committed (exit 0); worker2's ovn-controller claims its port back within milliseconds, so
      // the row is not read here.
      expect(rebind.code, rebind.out).toBe(0);
    } finally {
      direct(['set', 'Port_Binding', 'vm2', `chassis=${before}`]);
    }
    // worker1's ovn-controller may release the port it does not host meanwhile; worker2's claims it back.
    await waitFor(() => vm2Chassis() === before, 15_000, 'vm2 bound to worker2 again');
    const vm1 = sandboxNames(sandboxId(dir)).vmNetns('vm1');
    expect(inNetns(vm1, ['ping', '-c', '3', '-i', '0.2', '-W', '1', '192.168.1.11']).code).toBe(0);
  });

  it('the firewall is the NB\'s and the admin SB\'s gate: a worker reaches only the chassis\' SB, the operator (cms) all three; the tunnel still works', async () => {
    const dbs = (as: 'worker1' | 'operator', port: number) => {
      const pki = hostPki(as);
      return inNetns(ns[as], ['timeout', '6', 'ovsdb-client', '--timeout=3', `--private-key=${pki.key}`, `--certificate=${pki.cert}`, `--ca-cert=${pki.caBundle}`, 'list-dbs', `ssl:${centralIp}:${port}`]);
    };
    const got = {
      worker1: { nb: dbs('worker1', PORT.nb).out.includes('OVN_Northbound'), sb: dbs('worker1', PORT.sb).out.includes('OVN_Southbound'), sbAdmin: dbs('worker1', PORT.sbAdmin).out.includes('OVN_Southbound') },
      operator: { nb: dbs('operator', PORT.nb).out.includes('OVN_Northbound'), sb: dbs('operator', PORT.sb).out.includes('OVN_Southbound'), sbAdmin: dbs('operator', PORT.sbAdmin).out.includes('OVN_Southbound') },
    };
    expect(got).toEqual({ worker1: { nb: false, sb: true, sbAdmin: false }, operator: { nb: true, sb: true, sbAdmin: true } });
    const vm1 = sandboxNames(sandboxId(dir)).vmNetns('vm1');
    expect(inNetns(vm1, ['ping', '-c', '2', '-i', '0.1', '-W', '1', '192.168.1.11']).code).toBe(0);
  });

  /** Runs `action` while the operator writes a switch every 100 ms over native TLS (fresh connections) and a monitor session stays open. */
  async function underTraffic(label: string, action: () => Promise<unknown>): Promise<void> {
    const pki = hostPki('operator');
    // The files as they are at each write: a rotation replaces them under the writer.
    const tls = [`--private-key=${pki.key}`, `--certificate=${pki.cert}`, `--ca-cert=${pki.caBundle}`];
    const remote = `ssl:${centralIp}:${PORT.nb}`;
    const monitor = startNbMonitor(ns.operator, remote, tls);
    await monitor.waitFor('network1');
    const writer = startProbeWriter(ns.operator, remote, `${label}-${randomBytes(2).toString('hex')}`, 100, tls);
    await new Promise((r) => setTimeout(r, 400));
    let probes: ProbeReport;
    try {
      await action();
      await new Promise((r) => setTimeout(r, 600));
    } finally {
      probes = await writer.stop();
    }
    expect(probes.failures, JSON.stringify(probes.failures.slice(0, 3))).toEqual([]);
    expect(probes.attempts).toBeGreaterThan(5);
    const switches = new Set(nbNames(dir, 'Logical_Switch'));
    for (const name of probes.names) expect(switches.has(name), name).toBe(true);
    await monitor.waitFor(probes.names[probes.names.length - 1]!);
    expect(monitor.alive(), `the monitor session died:\n${monitor.output().slice(-500)}`).toBe(true);
    await monitor.stop();
  }

  const served = async () => {
    const { send: _s, expect: _e, ...handshake } = good('nb');
    // As `certs rotate` prints it: about 1 in 8 random serials starts with a 0 that the probe keeps.
    return normalizeSerial((await probeTls(runner, { ...handshake, holdMs: 0 })).peerSerial ?? '');
  };

  it('certs rotate --force under traffic: no probe write lost, the monitor session survives, the central serves its new serial without a restart', async () => {
    const pidsBefore = (await status(dir)).json.daemons.map((d) => [d.name, d.pid]);
    let r: { stdout: string } = { stdout: '' };
    await underTraffic('rotate', async () => {
      r = await cliOk(['certs', 'rotate', '--dir', dir, '--force', '--json']);
    });
    const outcomes = (JSON.parse(r.stdout) as { outcomes: { certName: string; action: string; newSerial: string }[] }).outcomes;
    expect(outcomes.map((o) => [o.certName, o.action])).toEqual([
      ['central', 'renewed'],
      ['operator', 'renewed'],
      ['worker1', 'renewed'],
      ['worker2', 'renewed'],
    ]);
    // ovsdb-server re-read the changed files itself: it serves the new certificate, same pid.
    expect(await served()).toBe(outcomes[0]!.newSerial);
    const after = await status(dir);
    expect(after.json.healthy, JSON.stringify(after.json.problems)).toBe(true);
    expect(after.json.daemons.map((d) => [d.name, d.pid])).toEqual(pidsBefore);
  });

  it('ca-rollover under traffic keeps every write; afterwards a certificate of the old CA is refused on every listener', async () => {
    const oldCa = { cert: path.join(parent, 'old-ca-worker1.pem'), key: path.join(parent, 'old-ca-worker1.key') };
    await fs.copyFile(hostPki('worker1').cert, oldCa.cert);
    await fs.copyFile(hostPki('worker1').key, oldCa.key);
    await underTraffic('rollover', () => cliOk(['certs', 'ca-rollover', '--dir', dir]));
    for (const l of LISTENERS) {
      // worker1's certificate of the old CA, from each listener's own user (past its firewall).
      const r = await probeTls(runner, good(l, { cert: oldCa.cert, key: oldCa.key }));
      expect(r.ok, `${l}: ${r.raw}`).toBe(false);
      expect(r.error).toMatch(/unknown ca|certificate unknown|decrypt error|bad certificate/);
    }
    expect((await status(dir)).json.healthy).toBe(true);
    const vm1 = sandboxNames(sandboxId(dir)).vmNetns('vm1');
    expect(inNetns(vm1, ['ping', '-c', '2', '-i', '0.1', '-W', '1', '192.168.1.11']).code).toBe(0);
  });

  it('certs revoke is refused in native mode (exit 2, why, nothing changed): the CRL would not lock the host out', async () => {
    const index = await fs.readFile(path.join(dir, 'pki', 'index.json'), 'utf8').catch(() => '');
    const r = await cli(['certs', 'revoke', 'worker2', '--dir', dir]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/native OVSDB TLS, which checks no CRL.*ca-rollover/s);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await fs.readFile(path.join(dir, 'pki', 'index.json'), 'utf8').catch(() => '')).toBe(index);
  });

  it('a second up changes nothing; up --tls stunnel on this sandbox is refused until down', async () => {
    const again = await cliOk(['up', '--dir', dir]);
    expect(again.stdout).toMatch(/Ping vm1 -> vm2 3\/3/);
    const switched = await cli(['up', '--tls', 'stunnel', '--dir', dir]);
    expect(switched.code, switched.stderr).toBe(2);
    expect(switched.stderr).toMatch(/runs native TLS.*down --dir/s);
    expect(switched.stderr).not.toMatch(/\n\s+at /);
    expect((await status(dir)).json.healthy).toBe(true);
  });

  it("up --metadata-agent on the native sandbox: each agent connects with its host's certificate, RBAC lets it register its own chassis, and the demo VM gets 200 from nova", async () => {
    const id = sandboxId(dir);
    const names = sandboxNames(id);
    const m = planMetadata({ id, stateDir: dir, paths: sandboxPaths(dir), names, workers: [1, 2].map((i) => ({ name: `worker${i}`, netns: names.nodeNetns(`w${i}`) })) });
    const r = await cliOk(['up', '--metadata-agent', '--dir', dir]);
    expect(r.stdout).toMatch(/metadata agents on 2 workers/);
    const nova = await startFakeNova(ns.worker1, m.nova.host, m.nova.port, m.secretFile);
    try {
      await waitFor(() => vmCurl(m) === '200', 90_000, 'the demo VM served its metadata');
    } finally {
      await nova.stop();
    }
    // Registered in the SB by the agents themselves, each on its own chassis' row.
    for (const w of ['worker1', 'worker2']) expect(direct(['get', 'Chassis_Private', w, 'external_ids:"neutron:ovn-metadata-id"']).code, w).toBe(0);
    const ini = await fs.readFile(path.join(hostRenderedPaths(path.join(dir, 'hosts', 'worker1')).metadata.confDir, 'neutron_ovn_metadata_agent.ini'), 'utf8');
    expect(ini).toContain(`ovn_sb_connection = ssl:${centralIp}:${PORT.sb}`);
    expect(ini).toContain(`ovn_sb_certificate = ${hostPki('worker1').cert}`);
    const s = await status(dir);
    expect(s.json.healthy, JSON.stringify(s.json.problems)).toBe(true);
  });
});
