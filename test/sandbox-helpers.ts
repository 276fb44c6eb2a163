/**
 * Helpers for the sandbox end-to-end tests: the built CLI, status as JSON, what of a sandbox is
 * left on the machine, and "foreign" daemons (an ovsdb-server and a stunnel the test starts
 * itself, that `up`/`down` must never touch).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cliPath } from '../src/paths.js';
import { freePorts, waitForListener } from './helpers/tls-daemons.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export function requireBuiltCli(): void {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run \`npm run build\` before the slow tests`);
}

/** Runs `node dist/cli.js ARGS` to completion. */
export function cli(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, CI: 'true', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal === null ? -1 : 128), stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Fails with the CLI's own output when it did not exit 0. */
export async function cliOk(args: string[], opts: { timeoutMs?: number } = {}): Promise<CliResult> {
  const r = await cli(args, opts);
  if (r.code !== 0) throw new Error(`ovn-deploy ${args.join(' ')} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

export interface StatusJson {
  exists: boolean;
  healthy: boolean;
  id: string;
  stateDir: string;
  pkiDir: string;
  datapath: string;
  supervisor: string;
  endpoints: { nb: string; sb: string };
  tls: Record<'nb' | 'sb', { reachable: boolean; protocol: string | null; endpoint: string }>;
  hosts: { name: string; netns: string; root: string; status: string; health: { check: string; ok: boolean; detail: string }[] }[];
  daemons: { name: string; node: string; pid: number | null; running: boolean; healthy: boolean; restarts: number; detail: string }[];
  chassis: { name: string; registered: boolean; encapIp: string | null }[];
  ports: { name: string; chassis: string | null; expectedChassis: string; up: boolean; iface: string }[];
  certificates: { name: string; daysLeft: number; status: string }[];
  problems: string[];
}

export async function status(dir: string): Promise<{ code: number; json: StatusJson }> {
  const r = await cli(['status', '--dir', dir, '--json']);
  return { code: r.code, json: JSON.parse(r.stdout) as StatusJson };
}

export function pidOf(s: StatusJson, daemon: string): number {
  const pid = s.daemons.find((d) => d.name === daemon)?.pid;
  if (pid === undefined || pid === null) throw new Error(`${daemon} has no pid in status: ${JSON.stringify(s.daemons)}`);
  return pid;
}

function run(argv: string[]): string {
  const r = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8' });
  return r.stdout ?? '';
}

/** Runs a command inside a namespace and returns its exit code and output. */
export function inNetns(ns: string, argv: string[], timeoutMs = 10_000): { code: number; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export function nbNames(dir: string, table: string): string[] {
  return run(['ovn-nbctl', `--db=unix:${path.join(dir, 'hosts', 'central', 'var', 'run', 'ovn', 'ovnnb_db.sock')}`, '--timeout=5', '--format=csv', '--no-headings', '--columns=name', 'list', table])
    .split('\n')
    .map((l) => l.trim().replace(/^"|"$/g, ''))
    .filter((l) => l !== '')
    .sort();
}

export function sbNames(dir: string, table: string, column = 'name'): string[] {
  return run(['ovn-sbctl', `--db=unix:${path.join(dir, 'hosts', 'central', 'var', 'run', 'ovn', 'ovnsb_db.sock')}`, '--timeout=5', '--format=csv', '--no-headings', `--columns=${column}`, 'list', table])
    .split('\n')
    .map((l) => l.trim().replace(/^"|"$/g, ''))
    .filter((l) => l !== '')
    .sort();
}

export interface Leftovers {
  namespaces: string[];
  links: string[];
  processes: string[];
  unixListeners: string[];
}

/** Everything of the sandbox (id + state dir) still on the machine. */
export function leftovers(id: string, stateDir: string): Leftovers {
  const tag = `od${id}`;
  const namespaces = run(['ip', 'netns', 'list']).split('\n').filter((l) => l.includes(tag));
  const links = run(['ip', '-o', 'link', 'show']).split('\n').filter((l) => l.includes(tag));
  const processes: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    if (cmd.includes(stateDir) || cmd.includes(`${tag}-`)) processes.push(`${pid}: ${cmd}`);
  }
  const unixListeners = run(['ss', '-Hxl']).split('\n').filter((l) => l.includes(stateDir));
  return { namespaces, links, processes, unixListeners };
}

export function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`alive(${pid}): not a process id a test may look at`);
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface ForeignDaemons {
  ovsdbPid: number;
  stunnelPid: number;
  ovsdbPort: number;
  stunnelPort: number;
  cmdlines: Map<number, string>;
  /** Both still the same processes, and both still answer. */
  intact(): { ovsdb: boolean; stunnel: boolean; ovsdbAnswers: boolean };
  stop(): Promise<void>;
}

/**
 * An ovsdb-server and a stunnel of "somebody else" on free loopback ports, with their own temp
 * files, started before `up`: the sandbox must leave them alone (no pkill, no port clash).
 */
export async function startForeignDaemons(dir: string): Promise<ForeignDaemons> {
  await fs.mkdir(dir, { recursive: true });
  const [ovsdbPort, stunnelPort] = await freePorts(2);
  if (ovsdbPort === undefined || stunnelPort === undefined) throw new Error('no free ports');
  const db = path.join(dir, 'foreign.db');
  spawnSync('ovsdb-tool', ['create', db, '/usr/share/openvswitch/vswitch.ovsschema']);
  const ovsdb = spawn('ovsdb-server', [db, `--remote=ptcp:${ovsdbPort}:127.0.0.1`, `--unixctl=${path.join(dir, 'foreign.ctl')}`, '--no-chdir', '-vconsole:off'], { stdio: 'ignore', detached: true });
  const key = path.join(dir, 'foreign.key');
  const cert = path.join(dir, 'foreign.crt');
  spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=foreign']);
  const conf = path.join(dir, 'foreign-stunnel.conf');
  await fs.writeFile(conf, `foreground = yes\npid =\nsyslog = no\n[foreign]\naccept = 127.0.0.1:${stunnelPort}\nconnect = 127.0.0.1:${ovsdbPort}\ncert = ${cert}\nkey = ${key}\n`);
  const stunnel = spawn(existsSync('/usr/bin/stunnel4') ? 'stunnel4' : 'stunnel', [conf], { stdio: 'ignore', detached: true });
  const children: ChildProcess[] = [ovsdb, stunnel];
  await Promise.all([waitForListener('127.0.0.1', ovsdbPort), waitForListener('127.0.0.1', stunnelPort)]);
  const ovsdbPid = ovsdb.pid ?? 0;
  const stunnelPid = stunnel.pid ?? 0;
  const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  const cmdlines = new Map([
    [ovsdbPid, cmdline(ovsdbPid)],
    [stunnelPid, cmdline(stunnelPid)],
  ]);
  const same = (pid: number) => alive(pid) && (() => {
    try {
      return cmdline(pid) === cmdlines.get(pid);
    } catch {
      return false;
    }
  })();
  return {
    ovsdbPid,
    stunnelPid,
    ovsdbPort,
    stunnelPort,
    cmdlines,
    intact: () => ({
      ovsdb: same(ovsdbPid),
      stunnel: same(stunnelPid),
      ovsdbAnswers: spawnSync('ovsdb-client', ['--timeout=3', 'list-dbs', `tcp:127.0.0.1:${ovsdbPort}`], { encoding: 'utf8' }).stdout.includes('Open_vSwitch'),
    }),
    stop: async () => {
      for (const c of children) {
        if (c.exitCode === null && c.signalCode === null) {
          c.kill('SIGTERM');
          await new Promise((r) => c.once('exit', r));
        }
      }
    },
  };
}
