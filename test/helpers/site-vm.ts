/**
 * A VM on a test site's worker: an OVS internal port (a tap on the userspace datapath) bound to a
 * logical port by iface-id and moved into its own network namespace on that worker, addressed and
 * up, checksum offload off (the userspace datapath does not fill checksums in). Through
 * `site.exec`: test set-up, not what deploy does.
 */
import type { TestSite } from './site-hosts.js';

export interface SiteVm {
  worker: string;
  /** The OVS port, its namespace and (unless `lsp`) its logical port's name. */
  name: string;
  /** The logical port (iface-id): default `name`. */
  lsp?: string;
  mac: string;
  ip: string;
  prefixLen?: number;
  /** Routes in the VM (`ip route add` arguments), e.g. 169.254.169.254/32 via the metadata port. */
  routes?: string[][];
}

export async function plugVm(site: TestSite, vm: SiteVm): Promise<void> {
  const run = async (argv: string[], allowFailure = false) => {
    const r = await site.exec(vm.worker, argv, { timeoutMs: 120_000 });
    if (!allowFailure && r.code !== 0) throw new Error(`${vm.worker}: ${argv.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  await run(['ovs-vsctl', '--timeout=20', 'add-port', 'br-int', vm.name, '--', 'set', 'Interface', vm.name, 'type=internal', `external_ids:iface-id=${vm.lsp ?? vm.name}`]);
  await run(['ip', 'netns', 'add', vm.name]);
  // ovs-vswitchd makes the tap a moment after the port row.
  for (let k = 0; k < 60 && (await run(['ip', 'link', 'show', vm.name], true)).code !== 0; k++) await new Promise((r) => setTimeout(r, 500));
  await run(['ip', 'link', 'set', vm.name, 'netns', vm.name]);
  const inVm = [
    ['ip', 'link', 'set', 'lo', 'up'],
    ['ip', 'link', 'set', vm.name, 'address', vm.mac],
    ['ip', 'addr', 'add', `${vm.ip}/${vm.prefixLen ?? 24}`, 'dev', vm.name],
    ['ip', 'link', 'set', vm.name, 'up'],
    ...(vm.routes ?? []).map((r) => ['ip', 'route', 'add', ...r]),
  ];
  for (const cmd of inVm) await run(['ip', 'netns', 'exec', vm.name, ...cmd]);
  await run(['ip', 'netns', 'exec', vm.name, 'ethtool', '-K', vm.name, 'tx', 'off'], true);
}

/** The seed's multinode topology: network1 with vm1 on worker1 and vm2 on worker2. */
export const SEED_VMS: readonly SiteVm[] = [
  { name: 'vm1', worker: 'worker1', mac: '40:44:00:00:01:01', ip: '192.168.60.21' },
  { name: 'vm2', worker: 'worker2', mac: '40:44:00:00:01:02', ip: '192.168.60.22' },
];

/** Creates network1 and its VMs through `nbctl` (an NB client of the site), plugs them, and waits until both ports are up. */
export async function seedNetwork(site: TestSite, nbctl: (args: string[]) => Promise<unknown>): Promise<void> {
  await nbctl(['ls-add', 'network1']);
  for (const vm of SEED_VMS) {
    await nbctl(['lsp-add', 'network1', vm.name, '--', 'lsp-set-addresses', vm.name, `${vm.mac} ${vm.ip}`]);
    await plugVm(site, vm);
  }
  await nbctl(SEED_VMS.flatMap((vm, i) => [...(i === 0 ? [] : ['--']), 'wait-until', 'Logical_Switch_Port', vm.name, 'up=true']));
}
