/**
 * The sandbox plan: a pure function of the state directory and the options, describing every
 * node, name, address, VM and check of a sandbox. Everything else (network, daemons, topology,
 * status, down) works from this one description, so `up`, `status` and `down` always agree.
 */
import { InputError, type Problem } from '../errors.js';
import type { TlsMode } from '../inventory/types.js';
import { planMetadata, type MetadataSandboxPlan } from '../metadata/sandbox-plan.js';
import { sandboxPaths, type SandboxPaths } from '../paths.js';
import { canonicalDir, sandboxId, sandboxNames, underlaySubnet, MAX_IFNAME, MAX_WORKERS, MIN_WORKERS, type SandboxNames } from './naming.js';

export type Datapath = 'netdev' | 'system';

export { MAX_WORKERS, MIN_WORKERS } from './naming.js';
/** Underlay MTU: room for Geneve (+58 bytes with OVN's option) around 1500-byte VM frames. */
export const UNDERLAY_MTU = 1600;
export const VM_MTU = 1500;
/** Longest unix socket path (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;

export interface SandboxOptions {
  stateDir: string;
  workers: number;
  datapath: Datapath;
  /** Also run neutron-ovn-metadata-agent on every worker (`up --metadata-agent`). */
  metadataAgent?: boolean;
  /** Run those agents in podman containers of this image (else as supervised processes). */
  metadataImage?: string;
  /** How OVSDB connections are secured (`up --tls`); default stunnel. */
  tls?: TlsMode;
}

export interface NodePlan {
  /** Host name in the inventory, certificate name, chassis name: `central`, `worker1`. */
  name: string;
  /** Short name used in global names: `central`, `w1`. */
  short: string;
  netns: string;
  /** Underlay address (the central's TLS endpoints, a worker's Geneve endpoint). */
  address: string;
  veth: { inside: string; outside: string };
}

export interface WorkerPlan extends NodePlan {
  index: number;
  systemId: string;
  /** Fixed MAC of the underlay interface holding the encap IP, so peers can pre-seed it. */
  phyMac: string;
}

export type NetworkName = 'network1' | 'network2';

export interface VmPlan {
  name: string;
  netns: string;
  worker: string;
  network: NetworkName;
  mac: string;
  ip: string;
  prefixLen: 24;
  gateway: string;
}

export interface RouterPortPlan {
  network: NetworkName;
  lrp: string;
  lsp: string;
  mac: string;
  cidr: string;
}

export interface SandboxPlan {
  id: string;
  stateDir: string;
  paths: SandboxPaths;
  names: SandboxNames;
  datapath: Datapath;
  tls: TlsMode;
  subnet: string;
  underlay: { netns: string; bridge: string; mtu: number };
  central: NodePlan;
  /**
   * The operator's host (role `cms`): a stunnel client with its own certificate, the one way to
   * the Northbound from outside the central, as neutron-server's host has on a real site.
   */
  operator: NodePlan;
  workers: WorkerPlan[];
  router: { name: string; ports: RouterPortPlan[] };
  networks: { name: NetworkName; cidr: string }[];
  vms: VmPlan[];
  /** Every namespace the sandbox owns, underlay first (creation order; `down` reverses it). */
  namespaces: string[];
  /** The metadata agents and their demo network, when enabled. */
  metadata?: MetadataSandboxPlan;
  /** What `up` pings (and traces) to prove the deployment works. */
  checks: { from: string; to: string }[];
}

export function workerName(index: number): string {
  return `worker${index}`;
}

/**
 * VMs as in the seed post: vm1 on network1 (worker1), vm2 on network2 (worker2, or worker1 when
 * there is only one worker), and one more VM on network2 for each further worker.
 */
export function planVms(workers: number, names: SandboxNames): VmPlan[] {
  const vms: VmPlan[] = [];
  const vm = (k: number, network: NetworkName, worker: number, ip: string): VmPlan => ({
    name: `vm${k}`,
    netns: names.vmNetns(`vm${k}`),
    worker: workerName(worker),
    network,
    mac: `40:44:00:00:00:${(k === 1 ? 1 : k === 2 ? 2 : k + 2).toString(16).padStart(2, '0')}`,
    ip,
    prefixLen: 24,
    gateway: network === 'network1' ? '192.168.0.1' : '192.168.1.1',
  });
  vms.push(vm(1, 'network1', 1, '192.168.0.11'));
  vms.push(vm(2, 'network2', workers >= 2 ? 2 : 1, '192.168.1.11'));
  for (let k = 3; k <= workers; k++) vms.push(vm(k, 'network2', k, `192.168.1.${9 + k}`));
  return vms;
}

export function validateOptions(opts: SandboxOptions): Problem[] {
  const problems: Problem[] = [];
  if (!Number.isInteger(opts.workers) || opts.workers < MIN_WORKERS || opts.workers > MAX_WORKERS) {
    problems.push({ path: '--workers', message: `expected a whole number from ${MIN_WORKERS} to ${MAX_WORKERS}, got ${String(opts.workers)}` });
  }
  if (opts.datapath !== 'netdev' && opts.datapath !== 'system') {
    problems.push({ path: '--datapath', message: `expected netdev or system, got "${String(opts.datapath)}"` });
  }
  return problems;
}

export function planSandbox(opts: SandboxOptions): SandboxPlan {
  const problems = validateOptions(opts);
  if (problems.length > 0) throw new InputError(problems);
  const stateDir = canonicalDir(opts.stateDir);
  const id = sandboxId(stateDir);
  const names = sandboxNames(id);
  const paths = sandboxPaths(stateDir);
  const subnet = underlaySubnet(id);
  const node = (name: string, short: string, host: number): NodePlan => ({
    name,
    short,
    netns: names.nodeNetns(short),
    address: `${subnet.base}.${host}`,
    veth: { inside: names.nodeVeth(short), outside: names.underlayVeth(short) },
  });
  const central = node('central', 'central', 1);
  const operator = node('operator', 'ops', 2);
  const workers: WorkerPlan[] = [];
  for (let i = 1; i <= opts.workers; i++) {
    const n = node(workerName(i), `w${i}`, 10 + i);
    const [, , c, d] = n.address.split('.').map(Number);
    // Locally administered unicast MAC made of the address: stable across vswitchd restarts.
    const phyMac = ['02', '0a', hex(Number.parseInt(id.slice(0, 2), 16)), hex(c ?? 0), hex(Number.parseInt(id.slice(2), 16)), hex(d ?? 0)].join(':');
    workers.push({ ...n, index: i, systemId: n.name, phyMac });
  }
  const vms = planVms(opts.workers, names);
  const metadata = opts.metadataAgent === true ? planMetadata({ id, stateDir, paths, names, workers, ...(opts.metadataImage === undefined ? {} : { image: opts.metadataImage }) }) : undefined;
  const plan: SandboxPlan = {
    id,
    stateDir,
    paths,
    names,
    datapath: opts.datapath,
    tls: opts.tls ?? 'stunnel',
    subnet: `${subnet.base}.0/${subnet.prefixLen}`,
    underlay: { netns: names.underlayNetns, bridge: names.underlayBridge, mtu: UNDERLAY_MTU },
    central,
    operator,
    workers,
    router: {
      name: 'router1',
      ports: [
        { network: 'network1', lrp: 'router1-net1', lsp: 'net1-router1', mac: '40:44:00:00:00:03', cidr: '192.168.0.1/24' },
        { network: 'network2', lrp: 'router1-net2', lsp: 'net2-router1', mac: '40:44:00:00:00:04', cidr: '192.168.1.1/24' },
      ],
    },
    networks: [
      { name: 'network1', cidr: '192.168.0.0/24' },
      { name: 'network2', cidr: '192.168.1.0/24' },
    ],
    vms,
    namespaces: [names.underlayNetns, central.netns, operator.netns, ...workers.map((w) => w.netns), ...vms.map((v) => v.netns), ...(metadata === undefined ? [] : [metadata.vm.netns, metadata.ovnmetaNetns])],
    ...(metadata === undefined ? {} : { metadata }),
    checks: vms.filter((v) => v.name !== 'vm1').map((v) => ({ from: 'vm1', to: v.name })),
  };
  checkLimits(plan);
  return plan;
}

function hex(n: number): string {
  return (n & 0xff).toString(16).padStart(2, '0');
}

/** Names and socket paths the kernel would truncate or reject: fail before creating anything. */
function checkLimits(plan: SandboxPlan): void {
  const problems: Problem[] = [];
  for (const n of [plan.central, plan.operator, ...plan.workers]) {
    for (const ifname of [n.veth.inside, n.veth.outside]) {
      if (ifname.length > MAX_IFNAME) problems.push({ path: 'names', message: `interface name ${ifname} is longer than ${MAX_IFNAME}` });
    }
  }
  // The longest socket: ovn-controller's pid-named control socket (pid up to 7 digits).
  const longest = plan.paths.worker(workerName(MAX_WORKERS)).controllerCtl(4_194_304);
  if (longest.length > MAX_SOCKET_PATH) {
    problems.push({
      path: '--dir',
      message: `state directory ${plan.stateDir} is too long for unix socket paths (${longest.length} > ${MAX_SOCKET_PATH} characters under it); choose a shorter --dir`,
    });
  }
  if (problems.length > 0) throw new InputError(problems);
}
