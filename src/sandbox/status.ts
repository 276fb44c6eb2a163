/**
 * `ovn-deploy status`: the site status of the sandbox's hosts (each host's apply --check with its
 * daemons, the central's clusters, the chassis) asked through the local transport, plus what only
 * the sandbox has: the NB and SB reached the way a worker reaches them (TLS through the underlay),
 * port bindings and VM interfaces, certificate expiry. This file collects (talks to the daemons);
 * the verdict and the table are pure functions of the collected data, in status-verdict.ts.
 */
import { pkiStatus } from '../pki/index.js';
import type { Runner } from '../runner.js';
import { collectStatusOf } from '../site-status/collect.js';
import type { DaemonView } from '../site-status/daemons.js';
import type { ChassisView, HostHealth, RaftDbView } from '../site-status/judge.js';
import type { MetadataAgentView } from '../site-status/metadata.js';
import { Ip } from '../tools/netns.js';
import { Nbctl, Sbctl } from '../tools/ovn.js';
import { ovsdbListDbs } from '../tools/ovs.js';
import { str } from '../tools/ovsdb-json.js';
import { probeTls } from '../tools/tls.js';
import type { SandboxPlan } from './plan.js';
import { siteHost, type SandboxHost, type SandboxSite } from './site.js';
import { judge } from './status-verdict.js';
import type { SandboxState } from './state.js';

/** A host's daemon as the sandbox names it: `worker1-ovn-controller` (its host, its service there). */
export interface DaemonStatus extends DaemonView {
  node: string;
  service: string;
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

/** A sandbox host as a site host: what site status says of it (apply --check, its daemons). */
export interface HostStatus extends HostHealth {
  netns: string;
  root: string;
  status: 'converged' | 'unhealthy' | 'unreachable';
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
  /** Every host's daemons in one list (hosts[].daemons, named for the sandbox). */
  daemons: DaemonStatus[];
  /** The central's clusters as site status sees them. */
  raft: RaftDbView[];
  chassis: ChassisView[];
  ports: PortStatus[];
  certificates: CertificateStatus[];
  /** Per chassis, its metadata agent (only when the sandbox runs them: `up --metadata-agent`). */
  metadataAgents?: MetadataAgentView[];
  crl: { nextUpdate: string; daysLeft: number } | null;
  /** Why the sandbox is not healthy (empty when it is). */
  problems: string[];
  checkedAt: string;
}

/** A sandbox daemon's name: its host and its service there (`worker1-ovn-controller`). */
const daemonName = (host: string, service: string): string => `${host}-${service}`;

function hostStatus(h: HostHealth, local: SandboxHost): HostStatus {
  const status = !h.reachable || h.error !== undefined ? 'unreachable' : h.applyStatus === 'converged' ? 'converged' : 'unhealthy';
  return { ...h, netns: local.netns, root: local.root, status };
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
  // The site's status of the sandbox's hosts, asked through the local transport.
  const siteP = collectStatusOf(site.inventory, (h) => siteHost(site, h.name).local.statusHost());
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
  const [siteStatus, nbTls, sbTls, portStatus, certs] = await Promise.all([siteP, tlsCheck('nb', 'OVN_Northbound'), tlsCheck('sb', 'OVN_Southbound'), portsP, certsP]);
  const hosts = siteStatus.hosts.map((h) => hostStatus(h, siteHost(site, h.name)));
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
    daemons: hosts.flatMap((h) => h.daemons.map((d) => ({ ...d, name: daemonName(h.name, d.name), node: h.name, service: d.name }))),
    raft: siteStatus.raft,
    chassis: siteStatus.chassis,
    ports: portStatus,
    certificates: certs.certificates,
    ...(plan.metadata === undefined ? {} : { metadataAgents: siteStatus.metadataAgents }),
    crl: certs.crl,
    problems: [],
    checkedAt: now.toISOString(),
  });
}
