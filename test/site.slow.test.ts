/**
 * Issue 5 end to end on real hosts: 3 centrals + 2 workers (+ 1 `cms` host, an NB client), each a podman container with its own
 * filesystem, network namespace and sshd (test/helpers/site-hosts.ts), reached only over SSH.
 *
 * - EVERY CLI call runs with an `ssh` first in its PATH that records each call's argv, stdin and
 *   stdout (test/helpers/ssh-record.ts); the last test searches every recorded byte, archives
 *   unpacked recursively, for every host key that existed at any point and the CA key;
 * - the first deploy converges and signs every host's CSR; the CA key appears on no host, every
 *   host key was made on its host (its public key is the one in its certificate, and it is found
 *   on no other host);
 * - a second deploy through the built CLI changes nothing;
 * - the seed's multinode topology (network1: vm1 on worker1, vm2 on worker2): ping vm1 -> vm2;
 * - least privilege (#20, helpers/site-least-privilege.ts): as `nobody` on a worker, a central
 *   and the cms host, every OVSDB endpoint (the unix sockets of the root-only socket directory, the
 *   distribution's sockets, the RAFT ports on loopback) is refused while root reaches each; a
 *   chassis has only SB endpoints; root on a worker reads the SB through its tunnel, and each
 *   central admits the worker's certificate on SB but refuses it on NB and RAFT (openssl s_client,
 *   ovn-nbctl --db=ssl:); the cms host's certificate gets NB and SB, not RAFT; ping still works;
 * - the NB RAFT leader's host stops: new leader; the workers reconnected, proven by NEW traffic
 *   (SB rows and installed flows persist anyway): `ovn-nbctl --wait=hv sync` through a survivor
 *   completes (every chassis acked the new nb_cfg) and a new port vm3 on worker2 comes up and
 *   answers ping; `status --inventory --json` shows the missing member and exits 1;
 * - `deploy` while that host is down reports it (exit 1, the others converge); after it is back,
 *   `deploy` converges, status is healthy again, and `--wait=hv sync` through the returned
 *   central plus a new port vm4 on worker1 prove it serves again;
 * - `central remove` + `central add` of a non-bootstrap central.
 */
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { publicKeyPemOf } from '../src/pki/index.js';
import { hostPaths, pkiPaths } from '../src/paths.js';
import { loadInventory, type Inventory } from '../src/inventory/index.js';
import { ovsdbRemotes, siteTopology } from '../src/site/topology.js';
import type { SiteStatus } from '../src/site-status/judge.js';
import type { RunResult } from '../src/runner.js';
import { createTestSite, type TestSite } from './helpers/site-hosts.js';
import { AS_NOBODY, distributionSockets, handshake, loopbackTcpListeners, probeKey, probeTcp, probeUnixSocket, socketsIn, type HostExec } from './helpers/site-least-privilege.js';
import { keyForms, pemBody as keyBody, scanForKeys, sshRecorder, unpack, type SshRecorder } from './helpers/ssh-record.js';
import { cli, requireBuiltCli, type CliResult } from './sandbox-helpers.js';
import forge from 'node-forge';
import { gunzipSync } from 'node:zlib';
import { X509Certificate } from 'node:crypto';

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('site.slow.test.ts: skipped, needs root (podman containers)');

const MIN = 60_000;

const PEM_KEY = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g;
const keyBlocks = (text: string): string[] => text.match(PEM_KEY) ?? [];

function json<T>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

interface DeployJson {
  ok: boolean;
  durationMs: number;
  hosts: { host: string; status: string; changeCount: number; signed: boolean; renewed?: boolean; error?: string; changes: { kind: string; target: string; action: string }[] }[];
}

describe.skipIf(notRoot)('real hosts: deploy, RAFT, status (3 centrals + 2 workers + 1 cms host in containers)', () => {
  let site: TestSite;
  let inv: Inventory;
  let work: string;
  let sshArgs: string[];
  const timings: Record<string, number> = {};
  let rec: SshRecorder;
  let calls = 0;
  /** Every host key seen on any host at any point (label -> PEM): the last test looks for them all. */
  const hostKeys = new Map<string, string>();

  /**
   * Every CLI call goes through here: the recording ssh first in PATH, its own record directory,
   * and at least one recorded ssh call with bytes in it afterwards (a silent shim fails).
   */
  const run = async (step: string, args: string[], timeoutMs: number): Promise<CliResult> => {
    const name = `${String(++calls).padStart(3, '0')}-${step}`;
    const r = await cli(args, { timeoutMs, env: await rec.env(name) });
    const files = await rec.files(name);
    const argvs = files.filter((f) => f.endsWith('.argv'));
    let bytes = 0;
    for (const f of files) bytes += (await fs.stat(f)).size;
    expect(argvs.length, `${name}: ssh calls recorded`).toBeGreaterThan(0);
    expect(bytes, `${name}: bytes recorded`).toBeGreaterThan(0);
    return r;
  };
  /** Adds each reachable host's current (and any pending) key to hostKeys. */
  const collectHostKeys = async (moment: string): Promise<void> => {
    let found = 0;
    for (const h of inv.hosts) {
      for (const f of ['host.key', 'host.key.next']) {
        const r = await site.exec(h.name, ['cat', `/etc/ovn-deploy/pki/${f}`]);
        if (r.code !== 0 || !r.stdout.includes('PRIVATE KEY')) continue;
        found++;
        if (![...hostKeys.values()].includes(r.stdout)) hostKeys.set(`${h.name} ${f} (${moment})`, r.stdout);
      }
    }
    expect(found, `host keys found ${moment}`).toBeGreaterThan(0);
  };

  const exec = async (name: string, argv: string[], allowFailure = false): Promise<RunResult> => {
    const r = await site.exec(name, argv);
    if (!allowFailure && r.code !== 0) throw new Error(`${name}: ${argv.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.code };
  };
  const centrals = (): string[] => inv.hosts.filter((h) => h.roles.includes('central')).map((h) => h.name);
  // Every central's NB as a central reaches it: its own socket, its stunnel client's for the others.
  const nbRemotes = (): string => ovsdbRemotes(siteTopology(inv), 'nb');
  const nbctl = (central: string, args: string[], allowFailure = false, timeoutSec = 20) =>
    exec(central, ['ovn-nbctl', `--db=${nbRemotes()}`, `--timeout=${timeoutSec}`, ...args], allowFailure);
  const deployCli = (extra: string[] = []) =>
    run(`deploy${extra.join('')}`, ['deploy', '--inventory', site.inventoryFile, '--pki', site.pkiDir, ...sshArgs, '--json', ...extra], 20 * MIN);
  const statusCli = async () => {
    const r = await run('status', ['status', '--inventory', site.inventoryFile, ...sshArgs, '--json'], 3 * MIN);
    return { code: r.code, s: json<SiteStatus>(r), r };
  };
  const ping = (from: string, ns: string, to: string) => exec(from, ['ip', 'netns', 'exec', ns, 'ping', '-c', '3', '-i', '0.2', '-W', '2', to], true);
  const waitFor = async <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const v = await check();
        if (v !== undefined) return v;
      } catch (err) {
        last = err;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  };

  beforeAll(async () => {
    requireBuiltCli();
    const t0 = Date.now();
    site = await createTestSite({ centrals: 3, workers: 2, cms: 1 });
    timings.createSite = Date.now() - t0;
    inv = (await loadInventory(site.inventoryFile)).inventory;
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'od-site-test-'));
    sshArgs = ['--known-hosts', site.knownHostsFile, '--identity', site.identityFile];
    rec = await sshRecorder(work);
  }, 30 * MIN);

  afterAll(async () => {
    console.log(`site.slow timings (ms): ${JSON.stringify(timings)}`);
    await site?.cleanup();
    if (work !== undefined) await fs.rm(work, { recursive: true, force: true });
  }, 10 * MIN);

  it('first deploy (CLI) converges every host and signs every CSR over SSH; nothing sent holds a PEM private key', async () => {
    const r = await run('first-deploy', ['deploy', '--inventory', site.inventoryFile, '--pki', site.pkiDir, ...sshArgs, '--json'], 30 * MIN);
    timings.firstDeploy = r.ms;
    await collectHostKeys('after the first deploy');
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    const result = json<DeployJson>(r);
    expect(result.hosts.map((h) => [h.host, h.status, h.error ?? ''])).toEqual(inv.hosts.map((h) => [h.name, 'converged', '']));
    expect(result.hosts.every((h) => h.signed && h.changeCount > 0)).toBe(true);
    expect(r.stderr).toMatch(/signing central1's CSR/); // progress (plain, on stderr with --json)

    // What went over the wire: every ssh call's stdin, the tars (tool, bundles) unpacked.
    const caKey = readFileSync(pkiPaths(site.pkiDir).caKey, 'utf8');
    const caLine = keyBody(caKey).slice(0, 64);
    const recorded = await rec.files((await rec.steps()).find((n) => n.endsWith('-first-deploy')));
    const logs = recorded.filter((f) => f.endsWith('.stdin'));
    const argvs = await Promise.all(recorded.filter((f) => f.endsWith('.argv')).map((f) => fs.readFile(f, 'utf8')));
    expect(argvs.filter((a) => /\bapply\b/.test(a)).length).toBeGreaterThanOrEqual(2 * inv.hosts.length);
    let scanned = 0;
    let certificates = 0;
    let bundles = 0;
    let tools = 0;
    for (const f of logs) {
      const raw = readFileSync(f);
      const content = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
      scanned += content.length;
      const text = content.toString('latin1');
      expect(text.includes(caLine), `${f} holds the CA key`).toBe(false);
      if (text.includes('node_modules/')) {
        tools++; // libraries may carry test keys of their own: only ours are looked for here and on the hosts
        continue;
      }
      if (text.includes('./manifest.json')) bundles++;
      else if (text.includes('BEGIN CERTIFICATE')) certificates++;
      expect(keyBlocks(text), `${f} (sent to a host) holds a private key`).toEqual([]);
    }
    expect(certificates).toBe(inv.hosts.length); // one signed certificate per host, on stdin of apply --certificate -
    expect(bundles).toBe(inv.hosts.length);
    expect(tools).toBe(inv.hosts.length);
    timings.scannedBytes = scanned;
  }, 40 * MIN);

  it('every host made its own key: its certificate carries that key, no other host and no bundle has it, the CA key is on no host', async () => {
    const caKeyBody = keyBody(readFileSync(pkiPaths(site.pkiDir).caKey, 'utf8'));
    const keys = new Map<string, string>();
    for (const h of inv.hosts) {
      const key = (await exec(h.name, ['cat', '/etc/ovn-deploy/pki/host.key'])).stdout;
      const cert = (await exec(h.name, ['cat', '/etc/ovn-deploy/pki/host.pem'])).stdout;
      const mode = (await exec(h.name, ['stat', '-c', '%a', '/etc/ovn-deploy/pki/host.key'])).stdout.trim();
      expect(mode).toBe('600');
      const certKey = forge.pki.publicKeyToPem(forge.pki.certificateFromPem(cert).publicKey);
      expect(publicKeyPemOf(key).replace(/\s+/g, '')).toBe(certKey.replace(/\s+/g, ''));
      keys.set(h.name, keyBody(key));
    }
    expect(new Set(keys.values()).size).toBe(inv.hosts.length);
    for (const h of inv.hosts) {
      // Search the shipped tool, the bundle, our config and state for any key material.
      const dirs = ['/opt/ovn-deploy', '/var/lib/ovn-deploy', '/etc/ovn-deploy'];
      const grep = async (needle: string) => (await exec(h.name, ['grep', '-rlF', '--', needle, ...dirs], true)).stdout.trim();
      expect(await grep(caKeyBody.slice(0, 64)), `CA key on ${h.name}`).toBe('');
      for (const [other, body] of keys) {
        const found = await grep(body.slice(0, 64));
        expect(found, `${other}'s key on ${h.name}`).toBe(other === h.name ? '/etc/ovn-deploy/pki/host.key' : '');
      }
      expect((await exec(h.name, ['grep', '-rl', 'PRIVATE KEY-----', '/var/lib/ovn-deploy/bundle'], true)).stdout.trim()).toBe('');
    }
  }, 10 * MIN);

  it('a second deploy through the CLI changes nothing', async () => {
    const r = await deployCli();
    timings.secondDeploy = r.ms;
    const j = json<DeployJson>(r);
    expect(r.code, r.stderr).toBe(0);
    expect(j.hosts.map((h) => [h.host, h.status, h.changeCount, h.signed])).toEqual(inv.hosts.map((h) => [h.name, 'converged', 0, false]));
  }, 20 * MIN);

  it('status --inventory: healthy, both clusters with 3 connected members and a leader, 2 chassis', async () => {
    const { code, s, r } = await statusCli();
    expect(s.problems, r.stdout).toEqual([]);
    expect(code).toBe(0);
    expect(s.verdict).toBe('healthy');
    for (const db of s.raft) {
      expect(db.leader?.host).toBeDefined();
      expect(db.members.map((m) => [m.host, m.state, m.connected])).toEqual(centrals().map((c) => [c, 'ok', true]));
    }
    expect(s.chassis.filter((c) => c.registered).map((c) => c.name).sort()).toEqual(inv.hosts.filter((h) => h.roles.includes('worker')).map((h) => h.systemId).sort());
    // Each chassis announced its worker's tunnel address.
    for (const w of inv.hosts.filter((h) => h.roles.includes('worker'))) expect(s.chassis.find((c) => c.name === w.systemId)?.encapIp, w.name).toBe(w.encap?.ip);
    // Per host its daemons, as systemd runs them: each with its pid, healthy.
    for (const h of s.hosts) {
      const want = [...(h.roles.includes('central') ? ['ovn-nb-ovsdb', 'ovn-sb-ovsdb', 'ovn-northd'] : []), ...(h.roles.includes('worker') ? ['ovs-ovsdb', 'ovs-vswitchd', 'ovn-controller'] : [])];
      expect(h.daemons.map((d) => d.name), h.name).toEqual(expect.arrayContaining(want));
      for (const d of h.daemons) expect([h.name, d.name, d.healthy, (d.pid ?? 0) > 0], d.detail).toEqual([h.name, d.name, true, true]);
    }
    expect(s.hosts.find((h) => h.roles.includes('worker'))?.daemons.find((d) => d.name === 'ovn-controller')?.detail).toBe('ovn-controller-connected: connected');
    // Running is not answering: each daemon without a deeper check answered on its control socket.
    const detail = (role: string, daemon: string) => s.hosts.filter((h) => h.roles.includes(role)).map((h) => h.daemons.find((d) => d.name === daemon)?.detail ?? '');
    for (const d of detail('worker', 'ovs-vswitchd')) expect(d).toMatch(/^unixctl ovs-vswitchd version: ovs-vswitchd \(Open vSwitch\) \d/);
    for (const d of detail('worker', 'ovs-ovsdb')) expect(d).toMatch(/unixctl ovs-ovsdb version: ovsdb-server \(Open vSwitch\) \d/);
    // One northd holds the lock; the others wait as standby.
    expect(detail('central', 'ovn-northd').map((d) => /Status: (active|standby)$/.exec(d)?.[1]).sort()).toEqual(['active', ...centrals().slice(1).map(() => 'standby')]);
  }, 5 * MIN);

  type Vm = { name: string; worker: number; mac: string; ip: string };
  const vms: Vm[] = [
    { name: 'vm1', worker: 1, mac: '40:44:00:00:00:01', ip: '192.168.50.21' },
    { name: 'vm2', worker: 2, mac: '40:44:00:00:00:02', ip: '192.168.50.22' },
  ];
  const workerName = (i: number): string => inv.hosts.filter((h) => h.roles.includes('worker'))[i - 1]?.name ?? `worker${i}`;

  /** The VM's port on its worker: an OVS internal port (a tap on the userspace datapath) moved into the VM's namespace. */
  const plugVm = async (vm: Vm): Promise<void> => {
    const w = workerName(vm.worker);
    await exec(w, ['ovs-vsctl', '--timeout=20', 'add-port', 'br-int', vm.name, '--', 'set', 'Interface', vm.name, 'type=internal', `external_ids:iface-id=${vm.name}`]);
    await exec(w, ['ip', 'netns', 'add', vm.name]);
    await waitFor(`${vm.name} tap on ${w}`, 30_000, async () => ((await exec(w, ['ip', 'link', 'show', vm.name], true)).exitCode === 0 ? true : undefined));
    await exec(w, ['ip', 'link', 'set', vm.name, 'netns', vm.name]);
    for (const cmd of [
      ['ip', 'link', 'set', vm.name, 'address', vm.mac],
      ['ip', 'addr', 'add', `${vm.ip}/24`, 'dev', vm.name],
      ['ip', 'link', 'set', vm.name, 'up'],
      ['ip', 'link', 'set', 'lo', 'up'],
    ]) {
      await exec(w, ['ip', 'netns', 'exec', vm.name, ...cmd]);
    }
    await exec(w, ['ip', 'netns', 'exec', vm.name, 'ethtool', '-K', vm.name, 'tx', 'off'], true);
  };
  const pingUntil = (what: string, from: Vm, to: Vm) =>
    waitFor(what, 60_000, async () => {
      const r = await ping(workerName(from.worker), from.name, to.ip);
      return r.exitCode === 0 ? r : undefined;
    });
  /**
   * New traffic that only a reconnected control plane carries: every chassis acks a new nb_cfg
   * (`--wait=hv`; chassis rows and installed flows would survive a dead connection), then a NEW
   * port is claimed by its worker's ovn-controller (up=true) and answers ping from the other worker.
   */
  const proveControlPlane = async (via: (args: string[], timeoutSec: number) => Promise<RunResult>, vm: Vm, from: Vm): Promise<void> => {
    const t0 = Date.now();
    await via(['--wait=hv', 'sync'], 60);
    timings[`hvSync-${vm.name}`] = Date.now() - t0;
    await via(['lsp-add', 'network1', vm.name, '--', 'lsp-set-addresses', vm.name, `${vm.mac} ${vm.ip}`], 20);
    await plugVm(vm);
    await via(['wait-until', 'Logical_Switch_Port', vm.name, 'up=true'], 60);
    const up = (await via(['--bare', '--columns=up', 'list', 'Logical_Switch_Port', vm.name], 20)).stdout.trim();
    expect(up, `${vm.name} up`).toBe('true');
    await ping(workerName(from.worker), from.name, vm.ip); // warm-up (neighbour resolution)
    const p = await pingUntil(`ping ${from.name} -> ${vm.name}`, from, vm);
    expect(p.stdout).toMatch(/3 received/);
  };

  it('seed multinode topology: network1 with vm1 on worker1 and vm2 on worker2; ping vm1 -> vm2', async () => {
    const c1 = centrals()[0] as string;
    await nbctl(c1, ['ls-add', 'network1']);
    for (const vm of vms) await nbctl(c1, ['lsp-add', 'network1', vm.name, '--', 'lsp-set-addresses', vm.name, `${vm.mac} ${vm.ip}`]);
    for (const vm of vms) await plugVm(vm);
    await nbctl(c1, ['wait-until', 'Logical_Switch_Port', 'vm1', 'up=true', '--', 'wait-until', 'Logical_Switch_Port', 'vm2', 'up=true']);
    await ping(workerName(1), 'vm1', '192.168.50.22'); // warm-up: the first packet over a new tunnel resolves its neighbour
    const p = await pingUntil('ping vm1 -> vm2', vms[0] as Vm, vms[1] as Vm);
    expect(p.stdout).toMatch(/3 received/);
  }, 10 * MIN);

  it('least privilege (#20): nobody on a worker, a central and the cms host reaches no OVSDB endpoint (root reaches each); root on a worker has the SB through its tunnel, the centrals refuse its certificate on NB and RAFT; the cms identity reaches the NB (not RAFT); ping still works', async () => {
    const topo = siteTopology(inv);
    const hp = hostPaths();
    const pki = { cert: hp.pki.cert, key: hp.pki.key, ca: hp.pki.caBundle };
    const w = workerName(1);
    const c = centrals()[0] as string;
    const cms = inv.hosts.find((h) => h.roles.includes('cms'))?.name as string;
    expect(cms, 'a cms host in the test site').toBeDefined();
    const workerSystemId = inv.hosts.find((h) => h.name === w)?.systemId as string;
    const findings: string[] = [];
    const lpExec: HostExec = (h, argv) => site.exec(h, argv);

    for (const h of [w, c, cms]) {
      const kind = h === c ? 'central' : h === w ? 'worker' : 'cms';
      // The socket directory: root only (its mode is what keeps everyone else off the sockets).
      expect((await exec(h, ['stat', '-c', '%a %U %F', hp.ovsdbDir])).stdout.trim(), `${h} ${hp.ovsdbDir}`).toBe('700 root directory');
      // A chassis holds only the SB of each central (no NB at all); a central and a cms host both.
      const sockets = await socketsIn(lpExec, h, hp.ovsdbDir);
      expect(sockets, `${h}: sockets in ${hp.ovsdbDir}`).toEqual(centrals().flatMap((x) => (kind === 'worker' ? [`${x}.sb`] : [`${x}.nb`, `${x}.sb`])).sort());
      for (const s of sockets) findings.push(...(await probeUnixSocket(lpExec, h, `${hp.ovsdbDir}/${s}`, s.endsWith('.nb') ? 'OVN_Northbound' : 'OVN_Southbound')));
      const distro = await distributionSockets(lpExec, h);
      expect(distro, `${h}: the distribution's OVSDB sockets`).toEqual(kind === 'central' ? [hp.ovn.nbSock, hp.ovn.sbSock] : kind === 'worker' ? [hp.ovs.dbSock] : []);
      for (const s of distro) findings.push(...(await probeUnixSocket(lpExec, h, s, s === hp.ovn.nbSock ? 'OVN_Northbound' : s === hp.ovn.sbSock ? 'OVN_Southbound' : 'Open_vSwitch')));
      // No plaintext TCP on loopback but RAFT: a central's own RAFT ports and its tunnels to the
      // other centrals' (nothing elsewhere); each refuses nobody (local-access.nft) and takes root.
      const tcp = await loopbackTcpListeners(lpExec, h);
      const raft = kind === 'central' ? topo.centrals.flatMap((x) => [inv.loopbackPorts.nbRaft, inv.loopbackPorts.sbRaft].map((p) => `${x.loopback}:${p}`)).sort() : [];
      expect(tcp, `${h}: TCP listeners on loopback`).toEqual(raft);
      for (const a of tcp) findings.push(...(await probeTcp(lpExec, h, a)));
      findings.push(...(await probeKey(lpExec, h, hp.pki.key)));
      // The issue's attack, as nobody, through every endpoint a host ever had (the old TCP ones too).
      const everyNb = [
        ovsdbRemotes(topo, 'nb'),
        `unix:${hp.ovn.nbSock}`,
        `tcp:127.0.0.1:${inv.ports.nb}`,
        ...topo.centrals.map((x) => `tcp:${x.loopback}:${inv.loopbackPorts.nb}`),
      ].join(',');
      const pwned = await exec(h, [...AS_NOBODY, 'ovn-nbctl', `--db=${everyNb}`, '--timeout=5', 'ls-add', `pwned-by-nobody-on-${h}`], true);
      if (pwned.exitCode === 0) findings.push(`${h}: nobody ran ovn-nbctl ls-add: ${pwned.stdout}`);
    }
    const switches = (await nbctl(c, ['--no-leader-only', 'ls-list'])).stdout;
    expect(switches).toContain('network1');
    if (switches.includes('pwned-by-nobody')) findings.push(`a switch made by nobody: ${switches}`);

    // Root on the worker: the SB through its stunnel client (the remote list ovn-controller uses).
    const chassis = await exec(w, ['ovn-sbctl', `--db=${ovsdbRemotes(topo, 'sb')}`, '--no-leader-only', '--timeout=20', '--bare', '--columns=name', 'list', 'Chassis'], true);
    if (chassis.exitCode !== 0 || !chassis.stdout.split('\n').includes(workerSystemId)) findings.push(`${w}: root cannot read the SB through its tunnel: ${chassis.stdout} ${chassis.stderr}`);
    // Root on the cms host: the NB through its stunnel client.
    const viaCms = await exec(cms, ['ovn-nbctl', `--db=${ovsdbRemotes(topo, 'nb')}`, '--no-leader-only', '--timeout=20', 'ls-list'], true);
    if (viaCms.exitCode !== 0 || !viaCms.stdout.includes('network1')) findings.push(`${cms}: root cannot read the NB through its tunnel: ${viaCms.stdout} ${viaCms.stderr}`);
    // Each host's own certificate presented straight to each central: the worker's admitted on SB
    // only, the cms host's on NB and SB; neither on RAFT (TLS handshake, then ovn-nbctl/sbctl over ssl:).
    const admits: { from: string; db: 'NB' | 'SB' | 'NB RAFT' | 'SB RAFT'; port: number; ok: boolean }[] = [
      { from: w, db: 'SB', port: inv.ports.sb, ok: true },
      { from: w, db: 'NB', port: inv.ports.nb, ok: false },
      { from: w, db: 'NB RAFT', port: inv.ports.nbRaft, ok: false },
      { from: w, db: 'SB RAFT', port: inv.ports.sbRaft, ok: false },
      { from: cms, db: 'NB', port: inv.ports.nb, ok: true },
      { from: cms, db: 'SB', port: inv.ports.sb, ok: true },
      { from: cms, db: 'NB RAFT', port: inv.ports.nbRaft, ok: false },
      { from: cms, db: 'SB RAFT', port: inv.ports.sbRaft, ok: false },
    ];
    for (const x of topo.centrals) {
      for (const a of admits) {
        const ok = (await handshake(lpExec, a.from, { host: x.address, port: a.port }, pki)).code === 0;
        if (ok !== a.ok) findings.push(`${a.from}: its certificate ${ok ? 'completed' : 'failed'} a TLS handshake with ${x.host.name}'s ${a.db} port ${a.port}${a.ok ? ' (control)' : ''}`);
      }
      const ssl = (port: number) => [`--db=ssl:${x.address}:${port}`, `--private-key=${pki.key}`, `--certificate=${pki.cert}`, `--ca-cert=${pki.ca}`];
      const sbOk = await exec(w, ['ovn-sbctl', ...ssl(inv.ports.sb), '--no-leader-only', '--timeout=20', '--bare', '--columns=name', 'list', 'Chassis'], true);
      if (sbOk.exitCode !== 0 || !sbOk.stdout.split('\n').includes(workerSystemId)) findings.push(`${w}: ovn-sbctl with its certificate on ${x.host.name}:${inv.ports.sb} failed (control): ${sbOk.stderr}`);
      const nbNo = await exec(w, ['ovn-nbctl', ...ssl(inv.ports.nb), '--no-leader-only', '--timeout=8', 'ls-list'], true);
      if (nbNo.exitCode === 0) findings.push(`${w}: ovn-nbctl with its certificate read ${x.host.name}'s NB: ${nbNo.stdout}`);
      const nbCms = await exec(cms, ['ovn-nbctl', ...ssl(inv.ports.nb), '--no-leader-only', '--timeout=20', 'ls-list'], true);
      if (nbCms.exitCode !== 0 || !nbCms.stdout.includes('network1')) findings.push(`${cms}: ovn-nbctl with its certificate on ${x.host.name}:${inv.ports.nb} failed: ${nbCms.stderr}`);
    }
    expect(findings, 'OVSDB access that #20 forbids (or a control that failed)').toEqual([]);

    const p = await ping(workerName(1), 'vm1', '192.168.50.22');
    expect(p.exitCode, p.stdout).toBe(0);
  }, 10 * MIN);

  it('deploy --renew-certificates: every host gets a new key and serial, picked up by reload (same stunnel pids, no TLS connection lost); ping still works', async () => {
    const serialOf = async (h: string) => new X509Certificate((await exec(h, ['cat', '/etc/ovn-deploy/pki/host.pem'])).stdout).serialNumber;
    // Read from the host's process table, each matched to its exact stunnel argv (the bundle's).
    const stunnelPids = async (h: string) => {
      const manifest = JSON.parse((await exec(h, ['cat', '/var/lib/ovn-deploy/bundle/manifest.json'])).stdout) as { services: { name: string; argv: string[] }[] };
      const svcs = manifest.services.filter((s) => s.name.startsWith('stunnel-'));
      expect(svcs.length, `${h}: stunnel services in the bundle`).toBeGreaterThan(0);
      const out: string[] = [];
      for (const s of svcs) {
        const pids = (await exec(h, ['pgrep', '-x', '-f', s.argv.join(' ')], true)).stdout.split('\n').filter((l) => l.trim() !== '').map(Number);
        expect(pids.length, `${h}: a process running ${s.argv.join(' ')}`).toBeGreaterThan(0);
        expect(pids.every((p) => Number.isInteger(p) && p > 1), `${h}: pids ${pids.join(',')}`).toBe(true);
        out.push(...pids.map((p) => `${s.name}:${p}`));
      }
      return out.sort();
    };
    // The workers' TLS sessions to the centrals' SB port (ovn-controller's, through the stunnel client).
    const sbSessions = async (h: string) =>
      (await exec(h, ['ss', '-Htn', 'state', 'established', `( dport = :${inv.ports.sb} )`])).stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/).slice(2, 4).join(' '))
        .filter((l) => l !== '')
        .sort();
    const workers = inv.hosts.filter((h) => h.roles.includes('worker')).map((h) => h.name);
    const before = new Map<string, { serial: string; pids: string[] }>();
    for (const h of inv.hosts) before.set(h.name, { serial: await serialOf(h.name), pids: await stunnelPids(h.name) });
    const sessions = new Map<string, string[]>();
    for (const w of workers) sessions.set(w, await sbSessions(w));
    expect([...sessions.values()].every((s) => s.length > 0)).toBe(true);

    const r = await deployCli(['--renew-certificates']);
    timings.renewDeploy = r.ms;
    await collectHostKeys('after the renewal');
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const j = json<DeployJson>(r);
    expect(j.hosts.map((h) => [h.host, h.status, h.signed, h.renewed])).toEqual(inv.hosts.map((h) => [h.name, 'converged', true, true]));
    for (const h of inv.hosts) {
      expect(await serialOf(h.name), `${h.name} serial`).not.toBe(before.get(h.name)?.serial);
      expect(await stunnelPids(h.name), `${h.name} stunnel pids`).toEqual(before.get(h.name)?.pids);
      expect((await exec(h.name, ['test', '-e', '/etc/ovn-deploy/pki/host.key.next'], true)).exitCode).not.toBe(0);
    }
    for (const w of workers) expect(await sbSessions(w), `${w} SB sessions`).toEqual(sessions.get(w));
    const p = await ping(workerName(1), 'vm1', '192.168.50.22');
    expect(p.exitCode, p.stdout).toBe(0);
    // Nothing is due afterwards: a normal deploy changes nothing.
    const again = await deployCli();
    expect(json<DeployJson>(again).hosts.every((h) => h.changeCount === 0 && !h.signed)).toBe(true);
  }, 20 * MIN);

  let stopped: string | undefined;

  it('the NB leader host stops: new leader; workers reconnected (--wait=hv sync, a new port vm3 comes up and answers); status shows the missing member (exit 1)', async () => {
    const before = await statusCli();
    const nb = before.s.raft.find((d) => d.db === 'OVN_Northbound');
    const leader = nb?.leader?.host;
    expect(leader).toBeDefined();
    stopped = leader as string;
    console.log(`site.slow: stopping the NB leader's host ${stopped}`);
    const t0 = Date.now();
    await site.stop(stopped);
    const after = await waitFor('a new NB and SB leader', 2 * MIN, async () => {
      const st = await statusCli();
      const ok = st.s.raft.every((d) => d.leader !== undefined && d.leader.host !== stopped);
      return ok ? st : undefined;
    });
    timings.newLeader = Date.now() - t0;
    expect(after.code).toBe(1);
    expect(after.s.verdict).toBe('degraded');
    for (const db of after.s.raft) {
      const missing = db.members.find((m) => m.host === stopped);
      expect(missing).toMatchObject({ state: 'missing', connected: false, reporting: false, inCluster: true });
      expect(db.members.filter((m) => m.host !== stopped).every((m) => m.state === 'ok')).toBe(true);
    }
    expect(after.s.hosts.find((h) => h.name === stopped)).toMatchObject({ reachable: false });
    expect(after.s.chassis.filter((c) => c.expected).every((c) => c.registered)).toBe(true);
    const survivor = centrals().find((c) => c !== stopped) as string;
    await nbctl(survivor, ['ls-add', 'ls-after-failover']);
    expect((await nbctl(survivor, ['--no-leader-only', 'ls-list'])).stdout).toContain('ls-after-failover');
    // Reconnected, shown by what only a live control plane does.
    await proveControlPlane((args, t) => nbctl(survivor, args, false, t), { name: 'vm3', worker: 2, mac: '40:44:00:00:00:03', ip: '192.168.50.23' }, vms[0] as Vm);
    const p = await pingUntil('ping vm1 -> vm2 after the leader stopped', vms[0] as Vm, vms[1] as Vm);
    expect(p.stdout).toMatch(/3 received/);
    // The human table names the missing member too.
    const table = await run('status-table', ['status', '--inventory', site.inventoryFile, ...sshArgs], 3 * MIN);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(new RegExp(`${stopped}.*MISSING`));
  }, 10 * MIN);

  it('deploy while that host is down: reported, the others converge (exit 1); once back, deploy converges and the returned central serves (--wait=hv sync, new port vm4)', async () => {
    const down = await deployCli();
    timings.deployWithHostDown = down.ms;
    expect(down.code, down.stderr).toBe(1);
    const j = json<DeployJson>(down);
    expect(j.hosts.find((h) => h.host === stopped)).toMatchObject({ status: 'unreachable' });
    expect(j.hosts.find((h) => h.host === stopped)?.error).toBeTruthy();
    expect(j.hosts.filter((h) => h.host !== stopped).every((h) => h.status === 'converged' && h.changeCount === 0)).toBe(true);
    await site.start(stopped as string);
    const back = await deployCli();
    timings.deployAfterRestart = back.ms;
    expect(back.code, `${back.stdout}\n${back.stderr}`).toBe(0);
    const st = await waitFor('a healthy site after the restart', 2 * MIN, async () => {
      const s = await statusCli();
      return s.code === 0 ? s : undefined;
    });
    expect(st.s.raft.every((d) => d.members.every((m) => m.state === 'ok'))).toBe(true);
    await collectHostKeys('after the host came back');
    const p = await ping(workerName(1), 'vm1', '192.168.50.22');
    expect(p.exitCode, p.stdout).toBe(0);
    // The returned central serves again: through it alone (a follower, so --no-leader-only), every
    // chassis acks a new nb_cfg and a new port on worker1 comes up and answers vm2.
    const own = `unix:${hostPaths().ovsdbSocket(stopped as string, 'nb')}`;
    const viaReturned = (args: string[], t: number) => exec(stopped as string, ['ovn-nbctl', `--db=${own}`, '--no-leader-only', `--timeout=${t}`, ...args]);
    await proveControlPlane(viaReturned, { name: 'vm4', worker: 1, mac: '40:44:00:00:00:04', ip: '192.168.50.24' }, vms[1] as Vm);
  }, 30 * MIN);

  it('central remove then central add of the last central: it leaves both clusters cleanly and joins again', async () => {
    const victim = centrals().at(-1) as string;
    const smaller = path.join(work, 'site-without.yaml');
    const raw = (await import('yaml')).parse(readFileSync(site.inventoryFile, 'utf8')) as { hosts: { name: string }[] };
    await fs.writeFile(smaller, stringify({ ...raw, hosts: raw.hosts.filter((h) => h.name !== victim) }));
    const rm = await run('central-remove', ['central', 'remove', victim, '--inventory', site.inventoryFile, '--redeploy', smaller, '--pki', site.pkiDir, ...sshArgs, '--json'], 20 * MIN);
    expect(rm.code, `${rm.stdout}\n${rm.stderr}`).toBe(0);
    const removed = json<{ removed: { dbs: { db: string; outcome: string }[]; movedAside: string[] }; deploy: DeployJson }>(rm);
    expect(removed.removed.dbs.map((d) => [d.db, d.outcome])).toEqual([
      ['OVN_Northbound', 'left'],
      ['OVN_Southbound', 'left'],
    ]);
    expect(removed.removed.movedAside).toHaveLength(2);
    expect(removed.deploy.ok).toBe(true);
    expect(removed.deploy.hosts.map((h) => h.host)).not.toContain(victim);
    const smallerInv = (await loadInventory(smaller)).inventory;
    const twoMembers = await run('status-smaller', ['status', '--inventory', smaller, ...sshArgs, '--json'], 3 * MIN);
    const s2 = json<SiteStatus>(twoMembers);
    expect(s2.raft.map((d) => d.members.length)).toEqual([2, 2]);
    expect(twoMembers.code, twoMembers.stdout).toBe(0);
    expect(smallerInv.hosts.length).toBe(inv.hosts.length - 1);
    const add = await run('central-add', ['central', 'add', victim, '--inventory', site.inventoryFile, '--pki', site.pkiDir, ...sshArgs, '--json'], 20 * MIN);
    await collectHostKeys('after central add');
    expect(add.code, `${add.stdout}\n${add.stderr}`).toBe(0);
    const st = await waitFor('3 members again', 2 * MIN, async () => {
      const s = await statusCli();
      return s.code === 0 ? s : undefined;
    });
    expect(st.s.raft.map((d) => d.members.filter((m) => m.state === 'ok').length)).toEqual([3, 3]);
  }, 40 * MIN);

  it('no byte any CLI call sent or got over SSH (argv, stdin, stdout, archives unpacked) holds a host key or the CA key', async () => {
    const steps = await rec.steps();
    expect(steps.length, 'recorded CLI calls').toBe(calls);
    for (const step of ['first-deploy', 'deploy--renew-certificates', 'central-remove', 'central-add', 'status']) {
      expect(steps.some((n) => n.endsWith(`-${step}`)), `a recorded ${step}`).toBe(true);
    }
    // Every host key any host ever held (old and renewed ones, the re-added central's) and the CA key.
    const forms = [...hostKeys].flatMap(([label, pem]) => keyForms(label, pem));
    forms.push(...keyForms('CA key', readFileSync(pkiPaths(site.pkiDir).caKey, 'utf8')));
    expect(hostKeys.size, [...hostKeys.keys()].join('\n')).toBeGreaterThanOrEqual(2 * inv.hosts.length);
    const findings: string[] = [];
    let bytes = 0;
    let blobs = 0;
    for (const step of steps) {
      const files = await rec.files(step);
      expect(files.filter((f) => f.endsWith('.argv')).length, `${step}: ssh calls`).toBeGreaterThan(0);
      const unpacked = files.flatMap((f) => unpack(path.relative(work, f), readFileSync(f)));
      bytes += unpacked.reduce((n, b) => n + b.data.length, 0);
      blobs += unpacked.length;
      findings.push(...scanForKeys(unpacked, forms).map((x) => `${x.where}: ${x.key} as ${x.form}`));
    }
    timings.keyScanBytes = bytes;
    timings.keyScanBlobs = blobs;
    timings.hostKeysSeen = hostKeys.size;
    expect(bytes).toBeGreaterThan(0);
    expect(findings, 'private key material recorded on the SSH wire').toEqual([]);
  }, 10 * MIN);
});
