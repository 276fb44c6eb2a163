/**
 * The sandbox's daemons as supervisor ServiceSpecs (pure): every daemon in the foreground, in its
 * node's namespace, with pidfile, log file and control socket under the state directory. Specs
 * are deterministic so a second `up` hands the supervisor identical specs and nothing restarts.
 *
 * Services come in start phases: a phase starts only once the previous one is ready (a socket
 * accepts), because OVS/OVN clients that find no server back off for a second or more before
 * retrying, which would dominate the start time.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ovsdbSchemas, stunnelFiles, type SandboxPaths } from '../paths.js';
import type { ServiceSpec } from '../supervisor/types.js';
import { socketActivatedStunnel } from '../tools/stunnel-activation.js';
import type { SandboxPlan, WorkerPlan } from './plan.js';
import { isAlive } from '../supervisor/proc.js';

/**
 * ensure() would otherwise wait 300 ms per phase for a fresh process to prove it stays up; `up`
 * checks each daemon's readiness itself (its socket answers), which also catches a quick death.
 */
const SETTLE_MS = 20;

/** Console output only for warnings and worse: the full log goes to --log-file. */
const VLOG = ['-vconsole:warn', '-vfile:info'];

export interface SandboxServices {
  /** Each service's pid file (written by the daemon itself), to find it without the supervisor. */
  pidFiles: Map<string, string>;
  /** Databases: the central's NB and SB ovsdb-servers, every worker's Open_vSwitch ovsdb-server. */
  databases: ServiceSpec[];
  /** Need the databases: ovn-northd, ovs-vswitchd. */
  switching: ServiceSpec[];
  /** Need the certificates: the stunnel server and clients. */
  tls: ServiceSpec[];
  /** Need vswitchd and the TLS path to the SB: ovn-controller. */
  controllers: ServiceSpec[];
  /** After each worker's ovn-controller: neutron-ovn-metadata-agent (`up --metadata-agent`). */
  metadata: ServiceSpec[];
}

export const serviceName = {
  nb: 'central-nb-ovsdb',
  sb: 'central-sb-ovsdb',
  northd: 'central-northd',
  centralStunnel: 'central-stunnel',
  workerDb: (w: string) => `${w}-ovsdb`,
  vswitchd: (w: string) => `${w}-vswitchd`,
  workerStunnel: (w: string) => `${w}-stunnel`,
  controller: (w: string) => `${w}-ovn-controller`,
};

export interface StunnelConfFiles {
  /** Rendered stunnel config of each node (`central`, `worker1`...), absolute path. */
  confPath: (node: string) => string;
  binary: string;
}

function ovsdbServer(
  name: string,
  netns: string,
  db: string,
  remotes: string[],
  files: { pid: string; ctl: string; log: string },
  serviceLog: string,
): ServiceSpec {
  return {
    name,
    netns,
    argv: [
      'ovsdb-server',
      db,
      ...remotes.map((r) => `--remote=${r}`),
      `--pidfile=${files.pid}`,
      `--unixctl=${files.ctl}`,
      `--log-file=${files.log}`,
      '--no-chdir',
      ...VLOG,
    ],
    logFile: serviceLog,
    settleMs: SETTLE_MS,
  };
}

/** Environment that keeps a worker's OVS/OVN daemons and tools inside its own run directory. */
export function workerEnv(paths: SandboxPaths, worker: string): Record<string, string> {
  const d = paths.node(worker);
  return { OVS_RUNDIR: d.run, OVS_DBDIR: d.db, OVS_LOGDIR: d.log, OVN_RUNDIR: d.run, OVN_DBDIR: d.db, OVN_LOGDIR: d.log };
}

export function sandboxServices(plan: SandboxPlan, stunnel: StunnelConfFiles, loopbackPorts: { nb: number; sb: number }): SandboxServices {
  const { paths } = plan;
  const c = paths.central;
  const centralNs = plan.central.netns;
  const databases: ServiceSpec[] = [
    ovsdbServer(serviceName.nb, centralNs, c.nbDb, [`punix:${c.nbSock}`, `ptcp:${loopbackPorts.nb}:127.0.0.1`], { pid: c.nbPid, ctl: c.nbCtl, log: c.nbLog }, paths.serviceLog(serviceName.nb)),
    ovsdbServer(serviceName.sb, centralNs, c.sbDb, [`punix:${c.sbSock}`, `ptcp:${loopbackPorts.sb}:127.0.0.1`], { pid: c.sbPid, ctl: c.sbCtl, log: c.sbLog }, paths.serviceLog(serviceName.sb)),
  ];
  const switching: ServiceSpec[] = [
    {
      name: serviceName.northd,
      netns: centralNs,
      argv: [
        'ovn-northd',
        `--ovnnb-db=unix:${c.nbSock}`,
        `--ovnsb-db=unix:${c.sbSock}`,
        `--pidfile=${c.northdPid}`,
        `--unixctl=${c.northdCtl}`,
        `--log-file=${c.northdLog}`,
        '--no-chdir',
        ...VLOG,
      ],
      logFile: paths.serviceLog(serviceName.northd),
      after: [serviceName.nb, serviceName.sb],
      settleMs: SETTLE_MS,
    },
  ];
  const tls: ServiceSpec[] = [
    {
      name: serviceName.centralStunnel,
      netns: centralNs,
      // Listeners bound outside stunnel survive its reloads (certificate rotation): no refused connections.
      argv: socketActivatedStunnel(stunnel.binary, stunnel.confPath(plan.central.name)),
      logFile: paths.serviceLog(serviceName.centralStunnel),
      after: [serviceName.nb, serviceName.sb],
      settleMs: SETTLE_MS,
    },
  ];
  const controllers: ServiceSpec[] = [];
  for (const w of plan.workers) {
    const wp = paths.worker(w.name);
    databases.push(
      ovsdbServer(serviceName.workerDb(w.name), w.netns, wp.confDb, [`punix:${wp.dbSock}`], { pid: wp.ovsdbPid, ctl: wp.ovsdbCtl, log: wp.ovsdbLog }, paths.serviceLog(serviceName.workerDb(w.name))),
    );
    switching.push(vswitchd(plan, w));
    tls.push({
      name: serviceName.workerStunnel(w.name),
      netns: w.netns,
      argv: socketActivatedStunnel(stunnel.binary, stunnel.confPath(w.name)),
      logFile: paths.serviceLog(serviceName.workerStunnel(w.name)),
      settleMs: SETTLE_MS,
    });
    controllers.push({
      name: serviceName.controller(w.name),
      netns: w.netns,
      env: workerEnv(paths, w.name),
      argv: ['ovn-controller', `unix:${wp.dbSock}`, `--pidfile=${wp.controllerPid}`, `--log-file=${wp.controllerLog}`, '--no-chdir', ...VLOG],
      logFile: paths.serviceLog(serviceName.controller(w.name)),
      after: [serviceName.vswitchd(w.name), serviceName.workerStunnel(w.name)],
      settleMs: SETTLE_MS,
    });
  }
  const pidFiles = new Map<string, string>([
    [serviceName.nb, c.nbPid],
    [serviceName.sb, c.sbPid],
    [serviceName.northd, c.northdPid],
    [serviceName.centralStunnel, stunnelFiles('server', { runDir: paths.node(plan.central.name).run, logDir: '' }).pidFile],
  ]);
  for (const w of plan.workers) {
    const wp = paths.worker(w.name);
    pidFiles.set(serviceName.workerDb(w.name), wp.ovsdbPid);
    pidFiles.set(serviceName.vswitchd(w.name), wp.vswitchdPid);
    pidFiles.set(serviceName.workerStunnel(w.name), stunnelFiles('client', { runDir: paths.node(w.name).run, logDir: '' }).pidFile);
    pidFiles.set(serviceName.controller(w.name), wp.controllerPid);
  }
  // The metadata agents are a rendered service of each worker now (render/services.ts).
  const metadata: ServiceSpec[] = [];
  return { pidFiles, databases, switching, tls, controllers, metadata };
}

function vswitchd(plan: SandboxPlan, w: WorkerPlan): ServiceSpec {
  const wp = plan.paths.worker(w.name);
  return {
    name: serviceName.vswitchd(w.name),
    netns: w.netns,
    env: workerEnv(plan.paths, w.name),
    argv: ['ovs-vswitchd', `unix:${wp.dbSock}`, `--pidfile=${wp.vswitchdPid}`, `--unixctl=${wp.vswitchdCtl}`, `--log-file=${wp.vswitchdLog}`, '--no-chdir', ...VLOG],
    logFile: plan.paths.serviceLog(serviceName.vswitchd(w.name)),
    after: [serviceName.workerDb(w.name)],
    settleMs: SETTLE_MS,
  };
}

export function allServices(s: SandboxServices): ServiceSpec[] {
  return [...s.databases, ...s.switching, ...s.tls, ...s.controllers, ...s.metadata];
}

/** Database files to create (from the distribution's schemas) before the databases start. */
export function databaseFiles(plan: SandboxPlan): { db: string; schema: string }[] {
  return [
    { db: plan.paths.central.nbDb, schema: ovsdbSchemas.nb },
    { db: plan.paths.central.sbDb, schema: ovsdbSchemas.sb },
    ...plan.workers.map((w) => ({ db: plan.paths.worker(w.name).confDb, schema: ovsdbSchemas.vswitch })),
  ];
}

/** Every directory the daemons write into. */
export function runtimeDirs(plan: SandboxPlan): string[] {
  return [plan.central.name, ...plan.workers.map((w) => w.name)].flatMap((n) => {
    const d = plan.paths.node(n);
    return [d.run, d.log, d.db, d.etc];
  });
}

/** Unix sockets that prove a database is ready. */
export function databaseSockets(plan: SandboxPlan): string[] {
  return [plan.paths.central.nbSock, plan.paths.central.sbSock, ...plan.workers.map((w) => plan.paths.worker(w.name).dbSock)];
}

/** The plan's services with the stunnel configs where `up` renders them. */
export function planServices(plan: SandboxPlan, loopbackPorts: { nb: number; sb: number }, stunnelBinary: string): SandboxServices {
  const confPath = (node: string) => path.join(plan.paths.node(node).etc, stunnelFiles(node === plan.central.name ? 'server' : 'client', { runDir: '', logDir: '' }).confName);
  return sandboxServices(plan, { binary: stunnelBinary, confPath }, loopbackPorts);
}

/** The pid in a daemon's pid file when that process is alive and ours (state dir in its argv). */
export function pidFromFile(pidFile: string, stateDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !isAlive(pid)) return undefined;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(stateDir) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Services whose daemon runs right now according to its own pid file: alive, and with the state
 * directory on its command line (a recycled pid is somebody else). This finds our daemons even
 * when their supervisor was killed, so `up` hands them to the next supervisor to adopt instead
 * of letting it start duplicates.
 */
export function runningByPidFile(services: SandboxServices, stateDir: string): Set<string> {
  const running = new Set<string>();
  for (const [name, pidFile] of services.pidFiles) if (pidFromFile(pidFile, stateDir) !== undefined) running.add(name);
  return running;
}
