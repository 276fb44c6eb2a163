/**
 * `ovn-deploy status`: every daemon with its pid and a real health probe, the NB and SB reached
 * the way a worker reaches them (TLS through the underlay), chassis registration, port bindings
 * and certificate expiry. This file collects (talks to the daemons); the verdict and the table
 * are pure functions of the collected data, in status-verdict.ts.
 */
import { controllerConnected } from '../health/probes.js';
import { sandboxMetadataAgents } from '../metadata/sandbox-status.js';
import type { MetadataAgentStatus } from '../metadata/status.js';
import { readFileSync } from 'node:fs';
import { runApply, type HealthResult } from '../apply/index.js';
import { stunnelFiles } from '../paths.js';
import { pkiStatus } from '../pki/index.js';
import { SERVICE } from '../render/services.js';
import type { Runner } from '../runner.js';
import { OwnSupervisor } from '../supervisor/own.js';
import { isAlive } from '../supervisor/proc.js';
import type { ServiceStatus } from '../supervisor/types.js';
import { Ip } from '../tools/netns.js';
import { Nbctl, Sbctl } from '../tools/ovn.js';
import { appctl, ovsdbListDbs } from '../tools/ovs.js';
import { str } from '../tools/ovsdb-json.js';
import { probeTls } from '../tools/tls.js';
import type { SandboxPlan } from './plan.js';
import { socketAccepts } from './ready.js';
import type { SandboxHost, SandboxSite } from './site.js';
import { ovsdbRemotes } from '../site/topology.js';
import { judge } from './status-verdict.js';
import type { SandboxState } from './state.js';

export { STATUS_EXIT } from './naming.js';

export interface DaemonStatus {
  name: string;
  node: string;
  program: string;
  running: boolean;
  pid: number | null;
  restarts: number;
  healthy: boolean;
  detail: string;
}

export interface TlsEndpointStatus {
  endpoint: string;
  /** The namespace the check ran from (a worker's). */
  from: string;
  reachable: boolean;
  database: string | null;
  protocol: string | null;
  cipher: string | null;
  error: string | null;
}

export interface ChassisStatus {
  name: string;
  hostname: string;
  encapIp: string | null;
  expected: boolean;
  registered: boolean;
}

export interface PortStatus {
  name: string;
  expectedChassis: string;
  chassis: string | null;
  up: boolean;
  /**
   * The VM's interface in its namespace: `ok`, `no-carrier` (a dead tap left behind by a
   * restarted ovs-vswitchd: OVN still says up, but nothing reaches the VM) or `missing`.
   */
  iface: 'ok' | 'no-carrier' | 'missing';
}

/** A sandbox host as a site host: its own apply health checks (apply --check), as on a real site. */
export interface HostStatus {
  name: string;
  netns: string;
  root: string;
  status: 'converged' | 'unhealthy' | 'unreachable';
  health: HealthResult[];
  error?: string;
}

export interface CertificateStatus {
  name: string;
  role: string;
  notAfter: string;
  daysLeft: number;
  status: string;
  due: boolean;
}

export interface StatusReport {
  healthy: boolean;
  id: string;
  stateDir: string;
  pkiDir: string;
  phase: SandboxState['phase'];
  datapath: SandboxPlan['datapath'];
  supervisor: 'own' | 'systemd';
  endpoints: { nb: string; sb: string };
  /** stunnel, or native (ovsdb-server's own TLS, SB RBAC on the chassis' port). */
  tlsMode: 'stunnel' | 'native';
  tls: { nb: TlsEndpointStatus; sb: TlsEndpointStatus };
  hosts: HostStatus[];
  daemons: DaemonStatus[];
  chassis: ChassisStatus[];
  ports: PortStatus[];
  certificates: CertificateStatus[];
  /** Per chassis, its metadata agent (only when the sandbox runs them: `up --metadata-agent`). */
  metadataAgents?: MetadataAgentStatus[];
  crl: { nextUpdate: string; daysLeft: number } | null;
  /** Why the sandbox is not healthy (empty when it is). */
  problems: string[];
  checkedAt: string;
}

interface ExpectedDaemon {
  name: string;
  node: string;
  /** The service's name on its host (its supervisor's). */
  service: string;
  program: string;
  /** Written by the daemon itself: finds it when its supervisor is gone. */
  pidFile: string;
  probe: (pid: number | undefined) => Promise<{ ok: boolean; detail: string }>;
}

/** A sandbox daemon's name: its host and its service there (`worker1-ovn-controller`). */
export const daemonName = (host: string, service: string): string => `${host}-${service}`;

function expectedDaemons(site: SandboxSite, runner: Runner): ExpectedDaemon[] {
  const dbProbe = (sock: string, db: string) => async () => {
    const r = await ovsdbListDbs(runner, `unix:${sock}`, { timeoutSec: 3 });
    return r.databases.includes(db) ? { ok: true, detail: `${db} answers` } : { ok: false, detail: r.error || `${db} not served` };
  };
  const appctlProbe = (ctl: string, args: string[], good: (out: string) => boolean) => async () => {
    const r = await appctl(runner, ctl, args, { timeoutSec: 3, allowFailure: true });
    const out = r.stdout.trim();
    return r.exitCode === 0 && good(out) ? { ok: true, detail: out.split('\n')[0] ?? '' } : { ok: false, detail: (r.stderr.trim() || out || `exit ${r.exitCode}`).split('\n').pop() ?? '' };
  };
  const daemon = (h: SandboxHost, service: string, program: string, pidFile: string, probe: ExpectedDaemon['probe']): ExpectedDaemon => ({ name: daemonName(h.name, service), node: h.name, service, program, pidFile, probe });
  const c = site.central;
  const o = c.paths.ovn;
  const daemons: ExpectedDaemon[] = [
    daemon(c, SERVICE.nbOvsdb, 'ovsdb-server', o.nbPid, dbProbe(o.nbSock, 'OVN_Northbound')),
    daemon(c, SERVICE.sbOvsdb, 'ovsdb-server', o.sbPid, dbProbe(o.sbSock, 'OVN_Southbound')),
    daemon(c, SERVICE.northd, 'ovn-northd', o.northdPid, appctlProbe(o.northdCtl, ['status'], (out) => /Status: active/.test(out))),
  ];
  // Native TLS has no stunnel: ovsdb-server's listeners are judged by the TLS checks and each host's health.
  const stunnel = site.topology.tls.mode === 'stunnel';
  if (stunnel) daemons.push(
    // The server side is judged by the TLS checks below; here: it runs and its listener answers.
    daemon(c, SERVICE.stunnelServer, 'stunnel', stunnelFiles('server', c.paths).pidFile, async () => ({ ok: true, detail: 'see NB/SB through TLS' })),
    // The operator's way to the NB (role cms): the central must admit its certificate there.
    daemon(site.operator, SERVICE.stunnelClient, 'stunnel', stunnelFiles('client', site.operator.paths).pidFile, async () => {
      const r = await ovsdbListDbs(runner, ovsdbRemotes(site.topology, 'nb', site.operator.root), { timeoutSec: 3 });
      return r.databases.includes('OVN_Northbound') ? { ok: true, detail: 'NB answers through it' } : { ok: false, detail: r.error || 'NB not reachable through it' };
    }),
  );
  for (const w of site.workers) {
    const v = w.paths.ovs;
    daemons.push(
      daemon(w, SERVICE.ovsOvsdb, 'ovsdb-server', v.ovsdbPid, dbProbe(v.dbSock, 'Open_vSwitch')),
      daemon(w, SERVICE.vswitchd, 'ovs-vswitchd', v.vswitchdPid, appctlProbe(v.vswitchdCtl, ['version'], () => true)),
      ...(stunnel
        ? [
            daemon(w, SERVICE.stunnelClient, 'stunnel', stunnelFiles('client', w.paths).pidFile, async () => {
              // The remote ovn-controller uses: the worker's socket for the central's SB, served by this tunnel.
              const r = await ovsdbListDbs(runner, ovsdbRemotes(site.topology, 'sb', w.root), { timeoutSec: 3 });
              return r.databases.includes('OVN_Southbound') ? { ok: true, detail: 'SB answers through it' } : { ok: false, detail: r.error || 'SB not reachable through it' };
            }),
          ]
        : []),
      daemon(w, SERVICE.controller, 'ovn-controller', w.paths.ovn.controllerPid, async (pid) => {
        if (pid === undefined) return { ok: false, detail: 'no pid' };
        const ctl = w.paths.ovn.controllerCtl(pid);
        if (!(await socketAccepts(ctl))) return { ok: false, detail: `no control socket ${ctl}` };
        const r = await controllerConnected(runner, ctl, 3);
        return r.ok ? { ok: true, detail: 'connected to SB' } : r;
      }),
    );
  }
  return daemons;
}

/** The pid in a daemon's pid file when that process is alive and ours (its host's root in its argv). */
function pidFromFile(pidFile: string, root: string): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !isAlive(pid)) return undefined;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${root}/`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** One round of the host's own health checks, answered like `apply --check` on a real host. */
async function hostStatus(h: SandboxHost): Promise<HostStatus> {
  const base = { name: h.name, netns: h.netns, root: h.root };
  try {
    const out = await runApply({ bundleDir: h.bundleDir, check: true, healthTimeoutMs: 0, ...h.local.applyOptions() });
    return { ...base, status: out.report.status === 'converged' ? 'converged' : 'unhealthy', health: out.report.health };
  } catch (err) {
    return { ...base, status: 'unreachable', health: [], error: err instanceof Error ? err.message : String(err) };
  }
}

export interface CollectOptions {
  plan: SandboxPlan;
  site: SandboxSite;
  /** The sandbox's TLS ports (inventory `ports`). */
  ports: { nb: number; sb: number };
  state: SandboxState;
  runner: Runner;
  now?: Date;
}

export async function collectStatus(o: CollectOptions): Promise<StatusReport> {
  const { plan, runner } = o;
  const { ports } = o;
  const now = o.now ?? new Date();
  const { site } = o;
  const perHost = await Promise.all(site.hosts.map(async (h) => [h.name, await new OwnSupervisor(h.paths.state).status().catch(() => [] as ServiceStatus[])] as const));
  const svcOf = new Map(perHost);
  const hostsP = Promise.all(site.hosts.map(hostStatus));
  const daemonsP = Promise.all(
    expectedDaemons(site, runner).map(async (d): Promise<DaemonStatus> => {
      const s = svcOf.get(d.node)?.find((x) => x.name === d.service);
      const running = s?.running === true;
      if (!running) {
        // Alive but unsupervised (its supervisor was killed): nobody restarts it if it dies.
        const orphan = pidFromFile(d.pidFile, site.hosts.find((h) => h.name === d.node)?.root ?? plan.stateDir);
        if (orphan !== undefined) {
          return { name: d.name, node: d.node, program: d.program, running: true, pid: orphan, restarts: s?.restarts ?? 0, healthy: false, detail: `runs (pid ${orphan}) without its supervisor: run up to hand it back` };
        }
      }
      const probe = running ? await d.probe(s?.pid).catch((e: unknown) => ({ ok: false, detail: String(e) })) : { ok: false, detail: describeDown(s) };
      return { name: d.name, node: d.node, program: d.program, running, pid: running ? (s?.pid ?? null) : null, restarts: s?.restarts ?? 0, healthy: running && probe.ok, detail: probe.detail };
    }),
  );
  const endpoint = (port: number) => `ssl:${plan.central.address}:${port}`;
  const tlsCheck = async (db: 'nb' | 'sb', name: string): Promise<TlsEndpointStatus> => {
    // Each database as the host that uses it presents itself: the NB as the operator (role cms,
    // the only non-central identity the NB admits), the SB as worker1.
    const client = db === 'nb' ? site.operator : site.workers[0];
    const base = { endpoint: endpoint(ports[db]), from: client?.netns ?? '' };
    if (client === undefined) return { ...base, reachable: false, database: null, protocol: null, cipher: null, error: 'no worker to check from' };
    const pki = client.paths.pki;
    // The host's own key and certificate, as its stunnel client presents them.
    const tls = { key: pki.key, cert: pki.cert, caCert: pki.caBundle };
    const [dbs, probe] = await Promise.all([
      ovsdbListDbs(runner, `ssl:${plan.central.address}:${ports[db]}`, { netns: client.netns, tls, timeoutSec: 3 }),
      probeTls(runner, { host: plan.central.address, port: ports[db], netns: client.netns, cert: tls.cert, key: tls.key, caFile: tls.caCert, verifyName: plan.central.name, holdMs: 0 }).catch(
        () => undefined,
      ),
    ]);
    const reachable = dbs.databases.includes(name);
    return {
      ...base,
      reachable,
      database: reachable ? name : null,
      protocol: probe?.protocol ?? null,
      cipher: probe?.cipher ?? null,
      error: reachable ? null : dbs.error || 'database not listed',
    };
  };
  const sbctl = new Sbctl(runner, `unix:${plan.paths.central.sbSock}`);
  const nbctl = new Nbctl(runner, `unix:${plan.paths.central.nbSock}`);
  const chassisP = (async (): Promise<ChassisStatus[]> => {
    const [rows, encaps] = await Promise.all([sbctl.list('Chassis', ['name', 'hostname'], { timeoutSec: 3 }), sbctl.list('Encap', ['chassis_name', 'ip'], { timeoutSec: 3 })]);
    const names = rows.map((r) => str(r, 'name'));
    const all = [...new Set([...plan.workers.map((w) => w.systemId), ...names])];
    return all.map((name) => {
      const row = rows.find((r) => str(r, 'name') === name);
      const encap = encaps.find((e) => str(e, 'chassis_name') === name);
      return {
        name,
        hostname: row === undefined ? '' : str(row, 'hostname'),
        encapIp: encap === undefined ? null : str(encap, 'ip'),
        expected: plan.workers.some((w) => w.systemId === name),
        registered: row !== undefined,
      };
    });
  })().catch(() => plan.workers.map((w) => ({ name: w.systemId, hostname: '', encapIp: null, expected: true, registered: false })));
  const portsP = (async (): Promise<PortStatus[]> => {
    const [lsps, bindings, chassis] = await Promise.all([
      nbctl.list('Logical_Switch_Port', ['name', 'up'], { timeoutSec: 3 }),
      sbctl.list('Port_Binding', ['logical_port', 'chassis'], { timeoutSec: 3 }),
      sbctl.list('Chassis', ['_uuid', 'name'], { timeoutSec: 3 }),
    ]);
    const chassisName = new Map(chassis.map((c) => [str(c, '_uuid'), str(c, 'name')]));
    return Promise.all(
      plan.vms.map(async (vm) => {
        const lsp = lsps.find((l) => str(l, 'name') === vm.name);
        const pb = bindings.find((b) => str(b, 'logical_port') === vm.name);
        const uuid = pb === undefined ? '' : str(pb, 'chassis');
        const link = await new Ip(runner, vm.netns).link(vm.name);
        const iface = link === undefined ? 'missing' : link.flags.includes('NO-CARRIER') ? 'no-carrier' : 'ok';
        return { name: vm.name, expectedChassis: vm.worker, chassis: uuid === '' ? null : (chassisName.get(uuid) ?? uuid), up: lsp?.up === true, iface } as PortStatus;
      }),
    );
  })().catch(() => plan.vms.map((vm): PortStatus => ({ name: vm.name, expectedChassis: vm.worker, chassis: null, up: false, iface: 'missing' })));
  const certsP = pkiStatus(plan.paths.pki, { now })
    .then((r) => ({
      certificates: r.rows
        .filter((row) => row.status === 'valid' || row.status === 'expired')
        .map((row) => ({ name: row.name, role: row.role, notAfter: row.notAfter, daysLeft: row.daysLeft, status: row.status, due: row.due })),
      crl: r.crl === null ? null : { nextUpdate: r.crl.nextUpdate, daysLeft: r.crl.daysLeft },
    }))
    .catch(() => ({ certificates: [] as CertificateStatus[], crl: null }));
  const metadataP = sandboxMetadataAgents(plan, sbctl);
  const [hosts, daemons, nbTls, sbTls, chassis, portStatus, certs, metadataAgents] = await Promise.all([
    hostsP,
    daemonsP,
    tlsCheck('nb', 'OVN_Northbound'),
    tlsCheck('sb', 'OVN_Southbound'),
    chassisP,
    portsP,
    certsP,
    metadataP,
  ]);
  return judge({
    healthy: false,
    id: plan.id,
    stateDir: plan.stateDir,
    pkiDir: plan.paths.pki,
    phase: o.state.phase,
    datapath: plan.datapath,
    supervisor: 'own',
    endpoints: { nb: endpoint(ports.nb), sb: endpoint(ports.sb) },
    tlsMode: site.topology.tls.mode,
    tls: { nb: nbTls, sb: sbTls },
    hosts,
    daemons,
    chassis,
    ports: portStatus,
    certificates: certs.certificates,
    ...(metadataAgents === undefined ? {} : { metadataAgents }),
    crl: certs.crl,
    problems: [],
    checkedAt: now.toISOString(),
  });
}

function describeDown(s: ServiceStatus | undefined): string {
  if (s === undefined) return 'not started';
  if (s.lastExit === undefined) return 'not running';
  return `not running (last exit ${s.lastExit.signal ?? `code ${s.lastExit.code ?? '?'}`} at ${s.lastExit.at})`;
}
