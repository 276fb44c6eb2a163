/**
 * End to end through the built CLI: `up` (1 central + 2 workers) -> ping and ovn-trace path ->
 * `status --json` healthy -> only TLS reachable from a worker -> least privilege (no local user
 * but root reaches OVSDB; a worker's certificate gets no NB) -> idempotent second `up` ->
 * repairs after daemons are killed with -9 -> `down` leaves nothing, and a foreign ovsdb-server
 * and stunnel started before `up` are untouched throughout.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxId, sandboxNames } from '../src/sandbox/naming.js';
import { daemonPid, isRestarted, killVerified, type DaemonMatch } from './helpers/own-pids.js';
import { alive, cli, cliOk, inNetns, leftovers, nbNames, pidOf, requireBuiltCli, sbNames, startForeignDaemons, status, waitFor, type ForeignDaemons } from './sandbox-helpers.js';

/** `address:port` of every TCP listener in a namespace. */
function tcpListeners(ns: string): { address: string; port: number }[] {
  return inNetns(ns, ['ss', '-Hltn']).out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[3] ?? '')
    .filter((a) => a !== '')
    .map((a) => ({ address: a.slice(0, a.lastIndexOf(':')).replace(/^\[|\]$/g, ''), port: Number(a.slice(a.lastIndexOf(':') + 1)) }));
}

/** The IPv4 addresses of a namespace that another namespace can route to (not loopback). */
function routableAddresses(ns: string): string[] {
  const out = spawnSync('ip', ['-n', ns, '-j', '-4', 'addr', 'show'], { encoding: 'utf8' }).stdout;
  const links = JSON.parse(out) as { addr_info: { local: string; scope: string }[] }[];
  return links.flatMap((l) => l.addr_info).filter((a) => a.scope === 'global').map((a) => a.local);
}

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('up.slow.test.ts: skipped, needs root (network namespaces, daemons)');

describe.skipIf(notRoot)('ovn-deploy up / status / down: 1 central + 2 workers', () => {
  let parent: string;
  let dir: string;
  let id: string;
  let foreign: ForeignDaemons;
  const timings: Record<string, number> = {};
  /** The sandbox's daemons as /proc shows them (their command lines name the state directory). */
  const daemon = (what: string, program: RegExp, ...argv: string[]): DaemonMatch => ({ what, program, argv: [dir, ...argv] });
  const controller1 = () => daemon('worker1 ovn-controller', /ovn-controller$/, `${dir}/hosts/worker1/`);
  const sbServer = () => daemon('central SB ovsdb-server', /ovsdb-server$/, 'ovnsb_db.db');
  const vswitchd2 = () => daemon('worker2 ovs-vswitchd', /ovs-vswitchd$/, `${dir}/hosts/worker2/`);
  // Every host has its own supervisor; the central's is the one killed below.
  const supervisor = () => daemon('central supervisor', /node$/, 'supervise', `${dir}/hosts/central/`);

  beforeAll(async () => {
    requireBuiltCli();
    parent = await mkdtemp(path.join(os.tmpdir(), 'od-up-'));
    dir = path.join(parent, 'sandbox');
    id = sandboxId(dir);
    foreign = await startForeignDaemons(path.join(parent, 'foreign'));
  });

  afterAll(async () => {
    await cli(['down', '--dir', dir]);
    await foreign?.stop();
    await rm(parent, { recursive: true, force: true });
    console.log(`up.slow timings (ms): ${JSON.stringify(timings)}`);
  });

  it('up: pings vm1 -> vm2 across router1 and the tunnel and prints the ovn-trace path', async () => {
    const r = await cliOk(['up', '--dir', dir]);
    timings.firstUp = r.ms;
    expect(r.stdout).toContain('ovn-trace vm1 -> vm2: network1 -> router1 -> network2 -> vm2');
    expect(r.stdout).toMatch(/Ping vm1 -> vm2 3\/3/);
    // The ping really crossed the tunnel: vm2 is on worker2, vm1 on worker1.
    const vm1 = sandboxNames(id).vmNetns('vm1');
    const ping = inNetns(vm1, ['ping', '-c', '2', '-i', '0.1', '-W', '1', '192.168.1.11']);
    expect(ping.code, ping.out).toBe(0);
    expect(ping.out).toMatch(/ttl=63/); // one router hop, as in the seed post
    // A full 1500-byte packet, not fragmentable, crosses the Geneve tunnel: the MTU-1600
    // underlay leaves room for the encapsulation (a 1500 underlay would drop it).
    const big = inNetns(vm1, ['ping', '-c', '2', '-i', '0.1', '-W', '1', '-M', 'do', '-s', '1472', '192.168.1.11']);
    expect(big.code, big.out).toBe(0);
  });

  it('status --json: healthy, with stateDir, pkiDir, TLS endpoints, daemons, chassis, ports, certificates', async () => {
    const started = Date.now();
    const { code, json } = await status(dir);
    timings.status = Date.now() - started;
    expect(json.problems).toEqual([]);
    expect(code).toBe(0);
    expect(json.healthy).toBe(true);
    expect(json.stateDir).toBe(dir);
    expect(json.pkiDir).toBe(path.join(dir, 'pki'));
    expect(json.endpoints.nb).toMatch(/^ssl:10\.\d+\.\d+\.1:6641$/);
    expect(json.endpoints.sb).toMatch(/^ssl:10\.\d+\.\d+\.1:6642$/);
    expect(json.tls.sb.protocol).toBe('TLSv1.2');
    // Each host is a site host: its own apply health checks (services, RAFT, listeners, chassis) pass.
    expect(json.hosts.map((h) => [h.name, h.status])).toEqual([
      ['central', 'converged'],
      ['operator', 'converged'],
      ['worker1', 'converged'],
      ['worker2', 'converged'],
    ]);
    for (const h of json.hosts) expect(h.health.filter((c) => !c.ok), h.name).toEqual([]);
    expect(json.hosts.find((h) => h.name === 'central')?.health.map((c) => c.check)).toContain('raft-member OVN_Southbound');
    expect(json.hosts.find((h) => h.name === 'worker1')?.health.map((c) => c.check)).toContain('ovn-controller-connected');
    // central 4, the operator's tunnel, 4 per worker.
    expect(json.daemons).toHaveLength(13);
    for (const d of json.daemons) {
      expect(d.healthy, `${d.name}: ${d.detail}`).toBe(true);
      expect(d.pid, `${d.name} has no pid`).toBeGreaterThan(1);
      expect(alive(d.pid as number)).toBe(true);
      // None died on the way up (an ovn-controller could, racing the SB init: see withGlobalRowSeed).
      expect(d.restarts, `${d.name} restarted during up`).toBe(0);
    }
    expect(json.chassis.map((c) => [c.name, c.registered])).toEqual([
      ['worker1', true],
      ['worker2', true],
    ]);
    expect(json.ports.map((p) => [p.name, p.chassis, p.up])).toEqual([
      ['vm1', 'worker1', true],
      ['vm2', 'worker2', true],
    ]);
    expect(json.certificates.map((c) => c.name).sort()).toEqual(expect.arrayContaining(['central', 'operator', 'worker1', 'worker2']));
    expect(json.datapath).toBe('netdev');
    expect(json.supervisor).toBe('own');
  });

  it('from a worker namespace only the TLS ports answer: no plaintext OVSDB is reachable', async () => {
    const { json } = await status(dir);
    const names = sandboxNames(id);
    const central = json.endpoints.sb.split(':')[1] ?? '';
    const w1 = names.nodeNetns('w1');
    const nodes = ['central', 'ops', 'w1', 'w2'].map((short) => names.nodeNetns(short));
    // The central's TCP listeners: the TLS ports (NB, SB, both RAFT) on its address, and RAFT on
    // its own loopback address (127.a.b.c, the real hosts' layout); NB and SB plaintext are unix
    // sockets only.
    const centralListeners = tcpListeners(nodes[0] as string);
    expect([...new Set(centralListeners.map((l) => l.port))].sort((a, b) => a - b)).toEqual([6641, 6642, 6643, 6644, 16643, 16644]);
    for (const l of centralListeners.filter((x) => x.port > 10_000)) expect(l.address).toMatch(/^127\.\d+\.\d+\.\d+$/);
    for (const l of centralListeners.filter((x) => x.port < 10_000)) expect(l.address).toBe(central);
    // Every port any sandbox node listens on, tried in plaintext on every address of every other
    // node, from every worker: whatever address a listener is bound to, none may answer OVSDB.
    const probes: string[] = [];
    for (const from of nodes.slice(1)) {
      for (const target of nodes.filter((n) => n !== from)) {
        const ports = [...new Set(tcpListeners(target).map((l) => l.port))];
        const addresses = routableAddresses(target);
        // Only the central listens on TCP at all: every tunnel of the others is a unix socket.
        if (target !== nodes[0]) {
          expect(ports, `${target} listens on TCP`).toEqual([]);
          continue;
        }
        expect(ports.length, `${target} listens on nothing`).toBeGreaterThan(0);
        expect(addresses.length, `${target} has no address`).toBeGreaterThan(0);
        for (const address of addresses) {
          for (const port of ports) {
            const plain = inNetns(from, ['ovsdb-client', '--timeout=3', 'list-dbs', `tcp:${address}:${port}`]);
            expect(plain.code, `plaintext OVSDB answered ${from} on ${target}'s ${address}:${port}: ${plain.out}`).not.toBe(0);
            probes.push(`${from}->${address}:${port}`);
          }
        }
      }
    }
    // The central's 6 ports, from the operator and 2 workers.
    expect(probes.length).toBeGreaterThanOrEqual(18);
    // worker1's own key (made on the host, never in the PKI) and certificate.
    const pki = path.join(dir, 'hosts', 'worker1', 'etc', 'ovn-deploy', 'pki');
    const tls = inNetns(w1, ['ovsdb-client', '--timeout=5', `--private-key=${pki}/host.key`, `--certificate=${pki}/host.pem`, `--ca-cert=${pki}/ca-bundle.pem`, 'list-dbs', `ssl:${central}:6642`]);
    expect(tls.code, tls.out).toBe(0);
    expect(tls.out).toContain('OVN_Southbound');
    // ovn-controller's only SB remote is the local stunnel client: a unix socket of worker1's
    // root-only socket directory, on which worker1's stunnel client (and nothing else) listens.
    const remote = inNetns(w1, ['ovs-vsctl', `--db=unix:${dir}/hosts/worker1/var/run/openvswitch/db.sock`, 'get', 'Open_vSwitch', '.', 'external_ids:ovn-remote']);
    expect(remote.out.trim()).toBe(`"unix:${dir}/hosts/worker1/var/run/ovn-deploy/ovsdb/central.sb"`);
    const owner = inNetns(w1, ['ss', '-Hlxp', 'src', `${dir}/hosts/worker1/var/run/ovn-deploy/ovsdb/central.sb`]).out;
    expect(owner).toMatch(/stunnel4/);
  });

  it('least privilege: no local user but root reaches any OVSDB endpoint; a worker gets the SB and never the NB; the operator (cms) gets the NB', async () => {
    const { json } = await status(dir);
    const names = sandboxNames(id);
    const central = json.endpoints.sb.split(':')[1] ?? '';
    const [c, w1] = [names.nodeNetns('central'), names.nodeNetns('w1')];
    const nobody = (ns: string, argv: string[]) => inNetns(ns, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...argv]);
    const fs = await import('node:fs');
    // Every OVSDB endpoint of every host: the site's sockets, the distribution's, the conf.db one.
    const sockets: string[] = [];
    for (const host of ['central', 'operator', 'worker1', 'worker2']) {
      const socketDir = path.join(dir, 'hosts', host, 'var', 'run', 'ovn-deploy', 'ovsdb');
      expect(fs.statSync(socketDir).mode & 0o777, socketDir).toBe(0o700);
      sockets.push(...fs.readdirSync(socketDir).map((f) => path.join(socketDir, f)));
    }
    const root = (host: string) => path.join(dir, 'hosts', host, 'var', 'run');
    sockets.push(`${root('central')}/ovn/ovnnb_db.sock`, `${root('central')}/ovn/ovnsb_db.sock`, `${root('worker1')}/openvswitch/db.sock`);
    // central .nb/.sb; operator .nb/.sb and a .sb per worker, each also under the private name
    // its stunnel accepts on (.central.sb.stunnel, see the socket-activation script); 2
    // distribution sockets; a conf.db.
    expect(sockets).toHaveLength(13);
    for (const sock of sockets) {
      expect(fs.statSync(sock).isSocket(), sock).toBe(true);
      // As root the same call answers: the refusal below is the user's, not a dead socket.
      expect(inNetns(w1, ['ovsdb-client', '--timeout=3', 'list-dbs', `unix:${sock}`]).code, sock).toBe(0);
      for (const ns of [c, w1]) {
        const r = nobody(ns, ['ovsdb-client', '--timeout=3', 'list-dbs', `unix:${sock}`]);
        expect(r.code, `nobody in ${ns} reached ${sock}: ${r.out}`).not.toBe(0);
        expect(r.out).toMatch(/Permission denied/);
      }
    }
    // RAFT must stay TCP on loopback: root may connect, nobody is reset by local-access.nft.
    const raft = tcpListeners(c).filter((l) => l.port > 10_000);
    expect(raft.map((l) => l.port).sort()).toEqual([16643, 16644]);
    for (const l of raft) {
      const connect = `exec 3<>/dev/tcp/${l.address}/${l.port}`;
      expect(inNetns(c, ['bash', '-c', connect]).code, `root to ${l.address}:${l.port}`).toBe(0);
      const r = nobody(c, ['bash', '-c', connect]);
      expect(r.code, `nobody reached RAFT ${l.address}:${l.port}`).not.toBe(0);
      expect(r.out).toMatch(/Connection refused/);
    }
    // As root on worker1: the SB through its tunnel; the NB refused by the central even with
    // worker1's own certificate, directly on the TLS ports too (NB and RAFT).
    const sb = inNetns(w1, ['ovn-sbctl', `--db=unix:${dir}/hosts/worker1/var/run/ovn-deploy/ovsdb/central.sb`, '--timeout=5', '--bare', '--columns=name', 'list', 'Chassis']);
    expect(sb.code, sb.out).toBe(0);
    expect(sb.out).toContain('worker1');
    expect(fs.existsSync(`${dir}/hosts/worker1/var/run/ovn-deploy/ovsdb/central.nb`)).toBe(false);
    const k = path.join(dir, 'hosts', 'worker1', 'etc', 'ovn-deploy', 'pki');
    const tlsArgs = [`--private-key=${k}/host.key`, `--certificate=${k}/host.pem`, `--ca-cert=${k}/ca-bundle.pem`];
    const nbAsWorker = inNetns(w1, ['ovsdb-client', '--timeout=5', ...tlsArgs, 'list-dbs', `ssl:${central}:6641`]);
    expect(nbAsWorker.code, `worker1's certificate reached the NB: ${nbAsWorker.out}`).not.toBe(0);
    const sbAsWorker = inNetns(w1, ['ovsdb-client', '--timeout=5', ...tlsArgs, 'list-dbs', `ssl:${central}:6642`]);
    expect(sbAsWorker.out).toContain('OVN_Southbound');
    for (const port of [6641, 6643, 6644]) {
      const s = inNetns(w1, ['bash', '-c', `echo | timeout 5 openssl s_client -connect ${central}:${port} -tls1_2 -cert ${k}/host.pem -key ${k}/host.key -CAfile ${k}/ca-bundle.pem -verify_return_error -ign_eof`]);
      // The handshake completes on the client's side, then the server refuses the name: an alert, no OVSDB.
      expect(s.out, `s_client to ${port}`).toMatch(/alert|errno|error/i);
      expect(s.out).not.toMatch(/"result"/);
    }
    // The operator's identity (role cms) reaches the NB, from the root namespace through its socket.
    const op = spawnSync('ovn-nbctl', [`--db=unix:${dir}/hosts/operator/var/run/ovn-deploy/ovsdb/central.nb`, '--timeout=5', 'ls-list'], { encoding: 'utf8' });
    expect(op.status, op.stderr).toBe(0);
    expect(op.stdout).toContain('network1');
  });

  it('a second up converges: no errors, same daemons (no restart), no duplicated objects', async () => {
    const before = (await status(dir)).json;
    const r = await cliOk(['up', '--dir', dir]);
    timings.secondUp = r.ms;
    expect(r.stdout).toContain('network1 -> router1 -> network2 -> vm2');
    expect(r.stdout).toMatch(/Certificates: 0 issued, 4 reused/);
    // Every host has its signed bundle and its last apply report under the state dir; this
    // apply changed nothing on any of them.
    expect(r.stdout).toMatch(/Hosts converged: no change on any host/);
    const fs = await import('node:fs');
    for (const host of ['central', 'operator', 'worker1', 'worker2']) {
      const bundle = path.join(dir, 'hosts', host, 'var', 'lib', 'ovn-deploy', 'bundle');
      const manifest = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8')) as { host: string; root: string; files: { sha256: string }[] };
      expect([manifest.host, manifest.root]).toEqual([host, path.join(dir, 'hosts', host)]);
      expect(manifest.files.every((f) => /^[0-9a-f]{64}$/.test(f.sha256))).toBe(true);
      expect(fs.existsSync(path.join(bundle, 'manifest.sig'))).toBe(true);
      const report = JSON.parse(fs.readFileSync(path.join(dir, 'reports', `${host}.json`), 'utf8')) as { status: string; changes: unknown[] };
      expect([host, report.status, report.changes]).toEqual([host, 'converged', []]);
    }
    const after = (await status(dir)).json;
    expect(after.healthy).toBe(true);
    expect(after.daemons.map((d) => [d.name, d.pid])).toEqual(before.daemons.map((d) => [d.name, d.pid]));
    expect(nbNames(dir, 'Logical_Switch')).toEqual(['network1', 'network2']);
    expect(nbNames(dir, 'Logical_Router')).toEqual(['router1']);
    expect(nbNames(dir, 'Logical_Switch_Port')).toEqual(['net1-router1', 'net2-router1', 'vm1', 'vm2']);
    expect(nbNames(dir, 'Logical_Router_Port')).toEqual(['router1-net1', 'router1-net2']);
    expect(sbNames(dir, 'Chassis')).toEqual(['worker1', 'worker2']);
  });

  it('repairs after kill -9 of worker1 ovn-controller and the central SB ovsdb-server', async () => {
    const before = (await status(dir)).json;
    // status names the same processes the system runs (read from /proc, not from our files).
    const controller = daemonPid(controller1());
    const sb = daemonPid(sbServer());
    expect(pidOf(before, 'worker1-ovn-controller')).toBe(controller.pid);
    expect(pidOf(before, 'central-ovn-sb-ovsdb')).toBe(sb.pid);
    killVerified(controller, controller1());
    killVerified(sb, sbServer());
    await waitFor(() => !alive(controller.pid) && !alive(sb.pid), 5000, 'the killed daemons to die');
    const r = await cliOk(['up', '--dir', dir]);
    timings.repairUp = r.ms;
    expect(r.stdout).toMatch(/Ping vm1 -> vm2 3\/3/);
    const after = (await status(dir)).json;
    expect(after.problems).toEqual([]);
    // New processes run in their place (from /proc), and status reports those.
    const newController = daemonPid(controller1());
    const newSb = daemonPid(sbServer());
    expect(isRestarted(controller, newController)).toBe(true);
    expect(isRestarted(sb, newSb)).toBe(true);
    expect(pidOf(after, 'worker1-ovn-controller')).toBe(newController.pid);
    expect(pidOf(after, 'central-ovn-sb-ovsdb')).toBe(newSb.pid);
    expect(sbNames(dir, 'Chassis')).toEqual(['worker1', 'worker2']);
  });

  it('repairs the dead VM tap left by a killed ovs-vswitchd (status says so until then)', async () => {
    const before = (await status(dir)).json;
    const vswitchd = daemonPid(vswitchd2());
    expect(pidOf(before, 'worker2-ovs-vswitchd')).toBe(vswitchd.pid);
    killVerified(vswitchd, vswitchd2());
    // The supervisor restarts it; the new vswitchd recreates vm2's tap in worker2's namespace
    // and the old one, in vm2's namespace, is dead.
    await waitFor(async () => {
      const s = (await status(dir)).json;
      return s.ports.find((p) => p.name === 'vm2')?.iface === 'no-carrier' && s.daemons.find((d) => d.name === 'worker2-ovs-vswitchd')?.healthy === true;
    }, 15_000, 'status to report the dead tap of vm2');
    const broken = await status(dir);
    expect(broken.code).toBe(1);
    expect(broken.json.problems.join('\n')).toMatch(/vm2's interface has no carrier/);
    const r = await cliOk(['up', '--dir', dir]);
    expect(r.stdout).toMatch(/tap moved: vm2/);
    expect(r.stdout).toMatch(/Ping vm1 -> vm2 3\/3/);
    expect((await status(dir)).json.healthy).toBe(true);
    expect(isRestarted(vswitchd, daemonPid(vswitchd2()))).toBe(true);
  });

  it('repairs after the supervisor itself is killed with -9 (its daemons are adopted, not duplicated)', async () => {
    const before = (await status(dir)).json;
    const supervisorPid = Number((await import('node:fs')).readFileSync(path.join(dir, 'hosts', 'central', 'var', 'lib', 'ovn-deploy', 'supervisor', 'supervisor.pid'), 'utf8').trim());
    const sup = daemonPid(supervisor());
    expect(sup.pid).toBe(supervisorPid);
    killVerified(sup, supervisor());
    await waitFor(() => !alive(supervisorPid), 5000, 'the supervisor to die');
    // The daemons still run, but nobody would restart them: status says so.
    const orphaned = await status(dir);
    expect(orphaned.code).toBe(1);
    expect(orphaned.json.problems.join('\n')).toMatch(/central: ovn-nb-ovsdb: runs \(pid \d+\) without its supervisor/);
    const r = await cliOk(['up', '--dir', dir]);
    expect(r.stdout).toMatch(/Ping vm1 -> vm2 3\/3/);
    const after = (await status(dir)).json;
    expect(after.healthy).toBe(true);
    expect(after.daemons.map((d) => d.pid)).toEqual(before.daemons.map((d) => d.pid));
    // A new supervisor adopted them: one, not the dead one, found in /proc.
    expect(isRestarted(sup, daemonPid(supervisor()))).toBe(true);
  });

  it('down stops and removes everything of ours and nothing else; the foreign daemons are untouched', async () => {
    expect(foreign.intact()).toEqual({ ovsdb: true, stunnel: true, ovsdbAnswers: true });
    const r = await cliOk(['down', '--dir', dir]);
    timings.down = r.ms;
    expect(r.stdout).toMatch(/down in/);
    expect(leftovers(id, dir)).toEqual({ namespaces: [], links: [], processes: [], unixListeners: [] });
    const fs = await import('node:fs');
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.existsSync(parent)).toBe(true);
    expect(foreign.intact()).toEqual({ ovsdb: true, stunnel: true, ovsdbAnswers: true });
    const again = await cliOk(['down', '--dir', dir]);
    expect(again.stdout).toMatch(/no sandbox/);
    const none = await cli(['status', '--dir', dir]);
    expect(none.code).toBe(3);
  });
});
