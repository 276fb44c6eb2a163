/**
 * `ovn-deploy status`: every daemon with its pid and a real health probe, the NB and SB reached
 * the way a worker reaches them (TLS through the underlay), chassis registration, port bindings
 * and certificate expiry. This file collects (talks to the daemons); the verdict and the table
 * are pure functions of the collected data, in status-verdict.ts.
 */
import { controllerConnected } from '../health/probes.js';
import { metadataRegistrations } from '../metadata/registration.js';
import { metadataAgentStatus, type MetadataAgentStatus } from '../metadata/status.js';
import { pkiPaths } from '../paths.js';
import { pkiStatus } from '../pki/index.js';
import type { Runner } from '../runner.js';
import type { ServiceStatus, Supervisor } from '../supervisor/types.js';
import { Ip } from '../tools/netns.js';
import { Nbctl, Sbctl } from '../tools/ovn.js';
import { appctl, ovsdbListDbs } from '../tools/ovs.js';
import { str } from '../tools/ovsdb-json.js';
import { probeTls } from '../tools/tls.js';
import type { SandboxPlan } from './plan.js';
import { socketAccepts } from './ready.js';
import { pidFromFile, serviceName } from './services.js';
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
  tls: { nb: TlsEndpointStatus; sb: TlsEndpointStatus };
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
  program: string;
  probe: (pid: number | undefined) => Promise<{ ok: boolean; detail: string }>;
}

function expectedDaemons(plan: SandboxPlan, runner: Runner, sbPort: number): ExpectedDaemon[] {
  const c = plan.paths.central;
  const dbProbe = (sock: string, db: string) => async () => {
    const r = await ovsdbListDbs(runner, `unix:${sock}`, { timeoutSec: 3 });
    return r.databases.includes(db) ? { ok: true, detail: `${db} answers` } : { ok: false, detail: r.error || `${db} not served` };
  };
  const appctlProbe = (ctl: string, args: string[], good: (out: string) => boolean) => async () => {
    const r = await appctl(runner, ctl, args, { timeoutSec: 3, allowFailure: true });
    const out = r.stdout.trim();
    return r.exitCode === 0 && good(out) ? { ok: true, detail: out.split('\n')[0] ?? '' } : { ok: false, detail: (r.stderr.trim() || out || `exit ${r.exitCode}`).split('\n').pop() ?? '' };
  };
  const daemons: ExpectedDaemon[] = [
    { name: serviceName.nb, node: 'central', program: 'ovsdb-server', probe: dbProbe(c.nbSock, 'OVN_Northbound') },
    { name: serviceName.sb, node: 'central', program: 'ovsdb-server', probe: dbProbe(c.sbSock, 'OVN_Southbound') },
    { name: serviceName.northd, node: 'central', program: 'ovn-northd', probe: appctlProbe(c.northdCtl, ['status'], (o) => /Status: active/.test(o)) },
    // The server side is judged by the TLS checks below; here: it runs and its listener answers.
    { name: serviceName.centralStunnel, node: 'central', program: 'stunnel', probe: async () => ({ ok: true, detail: 'see NB/SB through TLS' }) },
  ];
  for (const w of plan.workers) {
    const wp = plan.paths.worker(w.name);
    daemons.push(
      { name: serviceName.workerDb(w.name), node: w.name, program: 'ovsdb-server', probe: dbProbe(wp.dbSock, 'Open_vSwitch') },
      { name: serviceName.vswitchd(w.name), node: w.name, program: 'ovs-vswitchd', probe: appctlProbe(wp.vswitchdCtl, ['version'], () => true) },
      {
        name: serviceName.workerStunnel(w.name),
        node: w.name,
        program: 'stunnel',
        probe: async () => {
          const r = await ovsdbListDbs(runner, `tcp:127.0.0.1:${sbPort}`, { netns: w.netns, timeoutSec: 3 });
          return r.databases.includes('OVN_Southbound') ? { ok: true, detail: 'SB answers through it' } : { ok: false, detail: r.error || 'SB not reachable through it' };
        },
      },
      {
        name: serviceName.controller(w.name),
        node: w.name,
        program: 'ovn-controller',
        probe: async (pid) => {
          if (pid === undefined) return { ok: false, detail: 'no pid' };
          const ctl = wp.controllerCtl(pid);
          if (!(await socketAccepts(ctl))) return { ok: false, detail: `no control socket ${ctl}` };
          const r = await controllerConnected(runner, ctl, 3);
          return r.ok ? { ok: true, detail: 'connected to SB' } : r;
        },
      },
    );
  }
  return daemons;
}

export interface CollectOptions {
  plan: SandboxPlan;
  /** Each service's pid file, to spot daemons that run without their supervisor. */
  pidFiles: ReadonlyMap<string, string>;
  /** The sandbox's TLS ports (inventory `ports`). */
  ports: { nb: number; sb: number };
  state: SandboxState;
  runner: Runner;
  supervisor: Supervisor;
  now?: Date;
}

export async function collectStatus(o: CollectOptions): Promise<StatusReport> {
  const { plan, runner } = o;
  const { ports } = o;
  const now = o.now ?? new Date();
  const svc = await o.supervisor.status().catch(() => [] as ServiceStatus[]);
  const byName = new Map(svc.map((s) => [s.name, s]));
  const daemonsP = Promise.all(
    expectedDaemons(plan, runner, ports.sb).map(async (d): Promise<DaemonStatus> => {
      const s = byName.get(d.name);
      const running = s?.running === true;
      if (!running) {
        // Alive but unsupervised (its supervisor was killed): nobody restarts it if it dies.
        const pidFile = o.pidFiles.get(d.name);
        const orphan = pidFile === undefined ? undefined : pidFromFile(pidFile, plan.stateDir);
        if (orphan !== undefined) {
          return { name: d.name, node: d.node, program: d.program, running: true, pid: orphan, restarts: s?.restarts ?? 0, healthy: false, detail: `runs (pid ${orphan}) without its supervisor: run up to hand it back` };
        }
      }
      const probe = running ? await d.probe(s?.pid).catch((e: unknown) => ({ ok: false, detail: String(e) })) : { ok: false, detail: describeDown(s) };
      return { name: d.name, node: d.node, program: d.program, running, pid: running ? (s?.pid ?? null) : null, restarts: s?.restarts ?? 0, healthy: running && probe.ok, detail: probe.detail };
    }),
  );
  const firstWorker = plan.workers[0];
  const endpoint = (port: number) => `ssl:${plan.central.address}:${port}`;
  const tlsCheck = async (db: 'nb' | 'sb', name: string): Promise<TlsEndpointStatus> => {
    const base = { endpoint: endpoint(ports[db]), from: firstWorker?.netns ?? '' };
    if (firstWorker === undefined) return { ...base, reachable: false, database: null, protocol: null, cipher: null, error: 'no worker to check from' };
    const files = pkiPaths(plan.paths.pki);
    const tls = { key: files.key(firstWorker.name), cert: files.cert(firstWorker.name), caCert: files.caBundle };
    const [dbs, probe] = await Promise.all([
      ovsdbListDbs(runner, `ssl:${plan.central.address}:${ports[db]}`, { netns: firstWorker.netns, tls, timeoutSec: 3 }),
      probeTls(runner, { host: plan.central.address, port: ports[db], netns: firstWorker.netns, cert: tls.cert, key: tls.key, caFile: tls.caCert, verifyName: plan.central.name, holdMs: 0 }).catch(
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
  const metadataP = (async (): Promise<MetadataAgentStatus[] | undefined> => {
    const m = plan.metadata;
    if (m === undefined) return undefined;
    const chassisOf = (worker: string) => plan.workers.find((w) => w.name === worker)?.systemId ?? worker;
    const regs = await metadataRegistrations(sbctl, m.agents.map((a) => chassisOf(a.worker))).catch(() => undefined);
    const serving = new Set<string>();
    await Promise.all(m.agents.map(async (a) => (await socketAccepts(a.proxySocket)) && serving.add(a.service)));
    return metadataAgentStatus(m, chassisOf, svc, regs, serving, m.runtime.kind);
  })();
  const [daemons, nbTls, sbTls, chassis, portStatus, certs, metadataAgents] = await Promise.all([
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
    supervisor: o.supervisor.kind,
    endpoints: { nb: endpoint(ports.nb), sb: endpoint(ports.sb) },
    tls: { nb: nbTls, sb: sbTls },
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
