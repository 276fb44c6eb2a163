/**
 * The seed post's logical topology (network1 and network2 joined by router1, one port per VM) as
 * ONE ovn-nbctl transaction with `--may-exist` everywhere: running it again changes nothing, and
 * being killed half-way leaves either all of it or none of it.
 */
import type { Nbctl } from '../tools/ovn.js';
import { MAX_WORKERS, type SandboxPlan, type VmPlan } from './plan.js';

/** VM names a sandbox may have had (one per worker, at least two) that this plan does not. */
export function unplannedVms(plan: SandboxPlan): string[] {
  const names: string[] = [];
  for (let k = plan.vms.length + 1; k <= Math.max(2, MAX_WORKERS); k++) names.push(`vm${k}`);
  return names;
}

/**
 * The ovn-nbctl arguments (one transaction) that create or re-assert the topology, and drop the
 * ports of VMs a larger sandbox had (no query needed: VM names are vm1..vm16).
 */
export function topologyArgs(plan: SandboxPlan): string[] {
  const args: string[] = [];
  const cmd = (...c: string[]): void => void args.push('--', ...c);
  // `init` creates NB_Global if missing (a no-op afterwards), in the same transaction.
  cmd('init');
  for (const net of plan.networks) cmd('--may-exist', 'ls-add', net.name);
  for (const vm of plan.vms) {
    cmd('--may-exist', 'lsp-add', vm.network, vm.name);
    cmd('lsp-set-addresses', vm.name, `${vm.mac} ${vm.ip}`);
  }
  cmd('--may-exist', 'lr-add', plan.router.name);
  for (const p of plan.router.ports) {
    cmd('--may-exist', 'lrp-add', plan.router.name, p.lrp, p.mac, p.cidr);
    cmd('--may-exist', 'lsp-add', p.network, p.lsp);
    cmd('lsp-set-addresses', p.lsp, p.mac);
    cmd('lsp-set-type', p.lsp, 'router');
    cmd('lsp-set-options', p.lsp, `router-port=${p.lrp}`);
  }
  for (const vm of unplannedVms(plan)) cmd('--if-exists', 'lsp-del', vm);
  return args;
}

export async function applyTopology(nbctl: Nbctl, plan: SandboxPlan): Promise<void> {
  await nbctl.run(topologyArgs(plan));
}

/** Waits until every VM's logical port is up (bound by an ovn-controller and reported up). */
export async function waitPortsUp(nbctl: Nbctl, vms: readonly VmPlan[], timeoutSec: number): Promise<void> {
  await nbctl.waitUntil(
    vms.map((v) => ['Logical_Switch_Port', v.name, 'up=true'] as [string, string, string]),
    timeoutSec,
  );
}
