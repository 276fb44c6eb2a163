/**
 * Shared by the metadata agent's end-to-end tests (process and container): status JSON, ovn-sbctl,
 * the VM's request, RSS, the daemons as found in /proc, the nb_cfg round that proves an agent is
 * connected now, the wrong-secret, secret-leak and SB-through-stunnel checks.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { MetadataAgentPlan, MetadataSandboxPlan } from '../../src/metadata/sandbox-plan.js';
import { bundleSource, hostPaths, hostRenderedPaths, sandboxPaths } from '../../src/paths.js';
import { readCmdline, type ProcIdentity } from '../../src/supervisor/proc.js';
import { cli, inNetns, waitFor, type StatusJson } from '../sandbox-helpers.js';
import type { FakeNova } from './fake-nova.js';
import type { DaemonMatch } from './own-pids.js';

export interface MetadataAgentJson {
  chassis: string;
  runsAs: string;
  running: boolean;
  pid: number | null;
  registered: boolean;
  agentId: string | null;
  healthy: boolean;
  detail: string;
}
export type Status = StatusJson & { metadataAgents?: MetadataAgentJson[] };

export async function statusJson(dir: string, env?: Record<string, string>): Promise<{ code: number; json: Status }> {
  const r = await cli(['status', '--dir', dir, '--json'], env === undefined ? {} : { env });
  return { code: r.code, json: JSON.parse(r.stdout) as Status };
}

export function sbctl(dir: string, args: string[]): { code: number; out: string } {
  const r = spawnSync('ovn-sbctl', [`--db=unix:${sandboxPaths(dir).central.sbSock}`, '--timeout=5', ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`.trim() };
}

export function nbctl(dir: string, args: string[], timeoutSec = 5): { code: number; out: string } {
  const r = spawnSync('ovn-nbctl', [`--db=unix:${sandboxPaths(dir).central.nbSock}`, `--timeout=${timeoutSec}`, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`.trim() };
}

/** The daemons the tests signal or watch restart, as /proc shows them (see own-pids.ts). */
export const daemons = {
  sb: (dir: string, centralNetns: string): DaemonMatch => ({ what: 'the SB ovsdb-server', argv: ['ovsdb-server', sandboxPaths(dir).central.sbDb], netns: centralNetns }),
  controller: (dir: string, worker: string, netns: string): DaemonMatch => ({ what: `${worker}'s ovn-controller`, argv: ['ovn-controller', `--pidfile=${sandboxPaths(dir).worker(worker).controllerPid}`], netns }),
  /**
   * The agent's main process (its metadata workers are its children with the same argv): run by
   * python, or retitled by itself in a container, never the container's entrypoint script.
   */
  agent: (a: MetadataAgentPlan): DaemonMatch => ({
    what: `${a.worker}'s metadata agent`,
    argv: ['neutron-ovn-metadata-agent', path.join(a.confDir, 'neutron_ovn_metadata_agent.ini'), a.logFile],
    program: /^(\S*\/)?(python3[\d.]*|neutron-ovn-metadata-agent)(\s|$)/,
    netns: a.netns,
  }),
};

/** `neutron:ovn-metadata-sb-cfg` of a chassis: the last nb_cfg its agent saw and wrote back. */
export function metadataSbCfg(dir: string, chassis: string): number | undefined {
  const r = sbctl(dir, ['--if-exists', 'get', 'Chassis_Private', chassis, 'external_ids:"neutron:ovn-metadata-sb-cfg"']);
  const n = Number(r.out.replace(/"/g, ''));
  return r.code === 0 && r.out !== '' && Number.isInteger(n) ? n : undefined;
}

/**
 * Proof that each chassis's agent is connected to the SB now, not just registered earlier: bump
 * nb_cfg through the NB (`--wait=sb sync`) and wait until every agent wrote the new value into
 * its Chassis_Private row (it waits up to 10 s on purpose). Returns the value.
 */
export async function expectAgentsFollowNbCfg(dir: string, chassis: string[], timeoutMs = 60_000): Promise<number> {
  expect(chassis.length).toBeGreaterThan(0);
  const before = new Map(chassis.map((c) => [c, metadataSbCfg(dir, c)]));
  const sync = nbctl(dir, ['--wait=sb', 'sync'], 30);
  expect(sync.code, sync.out).toBe(0);
  const nbCfg = Number(nbctl(dir, ['get', 'NB_Global', '.', 'nb_cfg']).out);
  expect(nbCfg).toBeGreaterThan(0);
  for (const c of chassis) expect(before.get(c) ?? -1, c).toBeLessThan(nbCfg);
  for (const c of chassis) {
    await waitFor(() => metadataSbCfg(dir, c) === nbCfg, timeoutMs, `${c}'s agent to write neutron:ovn-metadata-sb-cfg=${nbCfg} (now ${String(metadataSbCfg(dir, c))})`);
  }
  return nbCfg;
}

/** Every regular file under `dir` whose content contains `needle`. */
export function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && readFileSync(p).includes(needle)) found.push(p);
    }
  };
  walk(dir);
  return found.sort();
}

/** The secret only in its own 0600 files under the sandbox, and on no process's command line. */
export function expectSecretOnlyInItsFiles(dir: string, m: MetadataSandboxPlan, secret: string): void {
  expect(secret).toMatch(/^[0-9a-f]{64}$/);
  // The fragment's own copy in each worker's bundle (what `deploy` pushes) is one of those 0600 files.
  const inBundle = (a: MetadataAgentPlan) => path.join(hostPaths(a.root).bundle, bundleSource(path.join(hostRenderedPaths().metadata.confDir, 'metadata-secret.ini')));
  const allowed = [m.secretFile, ...m.agents.flatMap((a) => [path.join(a.confDir, 'metadata-secret.ini'), inBundle(a)])].sort();
  expect(filesContaining(dir, secret)).toEqual(allowed);
  for (const f of allowed) expect(statSync(f).mode & 0o777, f).toBe(0o600);
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    expect(cmd.includes(secret), `pid ${p}`).toBe(false);
  }
}

/**
 * Nova given another secret than the agents': it rejects their signature (403 logged by the fake
 * nova), the VM gets 403 and the agent's log names the cause; with the right secret again, 200.
 */
export async function expectWrongSecretRejected(m: MetadataSandboxPlan, scratchDir: string, restartNova: (secretFile: string) => Promise<FakeNova>): Promise<void> {
  const wrong = path.join(scratchDir, 'wrong-secret');
  await fs.writeFile(wrong, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  const agentLog = m.agents.find((a) => a.worker === m.vm.worker)?.logFile ?? '';
  const logBefore = readFileSync(agentLog, 'utf8').length;
  const nova = await restartNova(wrong);
  expect(vmCurl(m)).toBe('403');
  await waitFor(() => nova.requests().length > 0, 5000, "fake nova's request log");
  expect(nova.requests().at(-1)).toMatchObject({ status: 403, instanceId: m.vm.deviceId });
  await waitFor(() => readFileSync(agentLog, 'utf8').slice(logBefore).includes('shared secrets do not match'), 10_000, 'the cause in the agent log');
  await restartNova(m.secretFile);
  expect(vmCurl(m)).toBe('200');
}

/**
 * The agent reaches the SB only through its worker's stunnel client: its configured remote is the
 * client's accept address, it has at least one established TCP connection, and every one goes to
 * that address, whose listener belongs to the stunnel client of that worker.
 */
export function expectSbOnlyThroughStunnel(a: MetadataAgentPlan, agent: ProcIdentity): void {
  const ini = readFileSync(path.join(a.confDir, 'neutron_ovn_metadata_agent.ini'), 'utf8');
  // A unix socket of the worker's root-only socket directory, the stunnel client's plaintext side.
  const remote = /^ovn_sb_connection = unix:(\/\S+)$/m.exec(ini)?.[1];
  expect(remote, ini).toBeDefined();
  const sock = remote as string;
  expect(path.dirname(sock)).toBe(hostPaths(a.root).ovsdbDir);
  const clientConfPath = hostRenderedPaths(a.root).stunnelConf('client');
  const clientConf = readFileSync(clientConfPath, 'utf8');
  expect(clientConf).toContain(`accept = ${sock}`);
  // `ss -Hxp`: Netid State Recv-Q Send-Q Local Inode Peer PeerInode Process.
  const unix = inNetns(a.netns, ['ss', '-Hxap']).out.split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c.length >= 8);
  const pidsOf = (c: string[]): number[] => [...c.slice(8).join(' ').matchAll(/pid=(\d+),/g)].map((x) => Number(x[1]));
  // The listener is held by stunnel itself (its socket-activation parent closed its copy).
  const listeners = unix.filter((c) => c[1] === 'LISTEN' && c[4] === sock);
  expect(listeners.length, `listener on ${sock}`).toBeGreaterThan(0);
  for (const l of listeners) {
    const pids = pidsOf(l);
    expect(pids.length, l.join(' ')).toBeGreaterThan(0);
    for (const pid of pids) {
      const argv = readCmdline(pid) ?? [];
      expect(path.basename(argv[0] ?? ''), l.join(' ')).toMatch(/^stunnel/);
      // The config, or the socket-activation wrapper's copy of it next to the pid file.
      expect(argv.some((x) => x === clientConfPath || x === path.join(hostPaths(a.root).runDir, 'stunnel-client.conf.activated')), l.join(' ')).toBe(true);
    }
  }
  // The agent reaches OVSDB over no TCP connection at all; one of its unix connections is the
  // SB: its peer is a socket stunnel accepted on that path.
  const tcp = inNetns(a.netns, ['ss', '-Htnp', 'state', 'established']).out.split('\n').filter((l) => l.includes(`pid=${agent.pid},`));
  expect(tcp, `TCP connections of the agent (pid ${agent.pid})`).toEqual([]);
  const mine = unix.filter((c) => c[1] === 'ESTAB' && pidsOf(c).includes(agent.pid));
  const accepted = unix.filter((c) => c[1] === 'ESTAB' && c[4] === sock && pidsOf(c).some((pid) => path.basename(readCmdline(pid)?.[0] ?? '').startsWith('stunnel')));
  const sbConns = mine.filter((c) => accepted.some((s) => s[5] === c[7]));
  expect(sbConns.length, `the agent's connections to ${sock} (pid ${agent.pid})`).toBeGreaterThan(0);
}

/** HTTP status of the VM's metadata request ('000' when nothing answered). */
export function vmCurl(m: MetadataSandboxPlan): string {
  return inNetns(m.vm.netns, ['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', m.url], 15_000).out.trim();
}

/** RSS (kB) of a process and all its descendants. */
export function treeRssKb(root: number): number {
  const parent = new Map<number, number>();
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      parent.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  const tree = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) if (tree.has(ppid) && !tree.has(pid)) grew = tree.add(pid) !== undefined;
  }
  let kb = 0;
  for (const pid of tree) {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    kb += Number(m?.[1] ?? 0);
  }
  return kb;
}

