/**
 * A worker's Open vSwitch: its database settings (chassis identity, SB remote through the local
 * stunnel client, Geneve encap IP, bridges), the underlay interface once ovs-vswitchd runs, and
 * the VMs: an internal port (a tap) per VM moved into the VM's own namespace, as in the seed post.
 */
import { ExitError } from '../errors.js';
import type { Runner } from '../runner.js';
import { Ip } from '../tools/netns.js';
import { appctl, Vsctl } from '../tools/ovs.js';
import { MAX_WORKERS, VM_MTU, type SandboxPlan, type VmPlan, type WorkerPlan } from './plan.js';

export const INTEGRATION_BRIDGE = 'br-int';
/** Userspace datapath only: the bridge whose internal port holds the encap IP. */
export const PHYSICAL_BRIDGE = 'br-phy';

export function workerVsctl(runner: Runner, plan: SandboxPlan, w: WorkerPlan): Vsctl {
  return new Vsctl(runner, plan.paths.worker(w.name).dbSock);
}

/**
 * Userspace datapath: tell vswitchd the other workers' underlay MACs (their br-phy's, read from
 * their namespaces). Otherwise the first packet into each new tunnel is dropped while OVS
 * resolves the neighbour, and the first ping of every pair is lost.
 */
export async function seedTunnelNeighbours(runner: Runner, plan: SandboxPlan, w: WorkerPlan): Promise<void> {
  if (plan.datapath !== 'netdev') return;
  const ctl = plan.paths.worker(w.name).vswitchdCtl;
  for (const peer of plan.workers) {
    if (peer.name === w.name) continue;
    const mac = (await new Ip(runner, peer.netns).link(PHYSICAL_BRIDGE))?.address;
    if (mac === undefined) continue;
    await appctl(runner, ctl, ['tnl/neigh/set', PHYSICAL_BRIDGE, peer.address, mac], { mutates: true });
  }
}

/**
 * One ovs-vsctl transaction per worker: an internal port on br-int for each VM the plan puts on
 * it (iface-id = the logical port), and no port for any other VM name (a VM that moved to
 * another worker, or one a larger sandbox had). Waits for ovs-vswitchd to make the taps.
 */
export async function ensureVmPorts(runner: Runner, plan: SandboxPlan, w: WorkerPlan): Promise<void> {
  const mine = plan.vms.filter((v) => v.worker === w.name).map((v) => v.name);
  const args: string[] = [];
  for (let k = 1; k <= Math.max(2, MAX_WORKERS); k++) {
    const name = `vm${k}`;
    if (!mine.includes(name)) args.push('--', '--if-exists', 'del-port', INTEGRATION_BRIDGE, name);
  }
  for (const name of mine) {
    args.push('--', '--may-exist', 'add-port', INTEGRATION_BRIDGE, name, '--', 'set', 'Interface', name, 'type=internal', `external_ids:iface-id=${name}`);
  }
  await workerVsctl(runner, plan, w).run(args, { wait: true });
}

/**
 * Binds a VM whose port ensureVmPorts made: its tap moved into the VM namespace and given the
 * VM's MAC, address and default route. When ovs-vswitchd has
 * been restarted it recreates the tap in the worker's namespace and the old one in the VM
 * namespace is dead: the old one is deleted and the new one moved in.
 */
export async function bindVm(runner: Runner, plan: SandboxPlan, vm: VmPlan, dryRun = false): Promise<'moved' | 'kept'> {
  const w = plan.workers.find((x) => x.name === vm.worker);
  if (w === undefined) throw new Error(`VM ${vm.name} is planned on unknown worker ${vm.worker}`);
  const inWorker = new Ip(runner, w.netns);
  const inVm = new Ip(runner, vm.netns);
  // Try the move first (the common case on a first `up`); its error says where the tap is.
  let outcome: 'moved' | 'kept' = 'moved';
  const move = await runner.run(['ip', '-n', w.netns, 'link', 'set', 'dev', vm.name, 'netns', vm.netns], { mutates: true, allowFailure: true, timeoutMs: 10_000 });
  if (move.exitCode !== 0 && !dryRun) {
    if (/File exists|same name exists/.test(move.stderr)) {
      // A tap of that name already sits in the VM namespace: the dead one of an earlier vswitchd.
      await inVm.deleteLink(vm.name);
      await inWorker.setLink(vm.name, { netns: vm.netns });
    } else if ((await inVm.link(vm.name)) !== undefined) {
      outcome = 'kept';
    } else {
      throw new ExitError(`the tap of ${vm.name} is neither in ${w.netns} nor in ${vm.netns}: ovs-vswitchd of ${w.name} did not create it (see ${plan.paths.worker(w.name).vswitchdLog})`);
    }
  }
  await inVm.batch([
    ['link', 'set', 'dev', vm.name, 'address', vm.mac, 'mtu', String(VM_MTU), 'up'],
    ['addr', 'replace', `${vm.ip}/${vm.prefixLen}`, 'dev', vm.name],
    ['route', 'replace', 'default', 'via', vm.gateway],
  ]);
  return outcome;
}
