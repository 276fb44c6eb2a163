/**
 * The sandbox's Neutron-shaped demo network: what Neutron's ML2/OVN driver would write to the NB
 * for one network with one subnet and one VM, as ONE idempotent ovn-nbctl transaction; and the
 * VM itself, an OVS internal port on its worker's br-int moved into its own namespace.
 */
import { ExitError } from '../errors.js';
import type { Runner } from '../runner.js';
import { Ip } from '../tools/netns.js';
import { Vsctl } from '../tools/ovs.js';
import type { MetadataSandboxPlan } from './sandbox-plan.js';

const INTEGRATION_BRIDGE = 'br-int';
const METADATA_IP = '169.254.169.254';

/** Pure: the ovn-nbctl arguments of the network, its metadata localport and the VM's port. */
/** What of the plan the network needs: a site's test builds the same network from these. */
export type MetadataNetwork = Pick<MetadataSandboxPlan, 'switchName' | 'cidr' | 'prefixLen' | 'localport' | 'vm'>;

export function metadataNetworkArgs(m: MetadataNetwork): string[] {
  const args: string[] = [];
  const cmd = (...c: string[]): void => void args.push('--', ...c);
  const { localport: lp, vm } = m;
  cmd('--may-exist', 'ls-add', m.switchName);
  cmd('set', 'Logical_Switch', m.switchName, 'external_ids:"neutron:network_name"=ovn-deploy-metadata-demo', `other_config:subnet=${m.cidr}`);
  cmd('--may-exist', 'lsp-add', m.switchName, lp.lsp);
  cmd('lsp-set-type', lp.lsp, 'localport');
  cmd('lsp-set-addresses', lp.lsp, `${lp.mac} ${lp.ip}`);
  // Without neutron:cidrs the agent tears the namespace down again.
  cmd('set', 'Logical_Switch_Port', lp.lsp, `external_ids:"neutron:cidrs"="${lp.ip}/${m.prefixLen}"`, 'external_ids:"neutron:device_owner"="network:distributed"');
  cmd('--may-exist', 'lsp-add', m.switchName, vm.lsp);
  cmd('lsp-set-addresses', vm.lsp, `${vm.mac} ${vm.ip}`);
  cmd(
    'set',
    'Logical_Switch_Port',
    vm.lsp,
    `external_ids:"neutron:device_id"="${vm.deviceId}"`,
    `external_ids:"neutron:project_id"="${vm.projectId}"`,
    `external_ids:"neutron:cidrs"="${vm.ip}/${m.prefixLen}"`,
    'external_ids:"neutron:device_owner"="compute:nova"',
  );
  return args;
}

/**
 * The VM's port: an internal port (iface-id = the VM's logical port) moved into the VM namespace,
 * with the route to 169.254.169.254 via the metadata port (what Neutron's DHCP option 121 gives a
 * real VM). A tap left dead in the VM namespace by a restarted ovs-vswitchd is replaced.
 */
export async function bindMetadataVm(runner: Runner, m: MetadataSandboxPlan, worker: { netns: string; dbSock: string }): Promise<'moved' | 'kept'> {
  const { vm } = m;
  await new Vsctl(runner, worker.dbSock).run(
    ['--', '--may-exist', 'add-port', INTEGRATION_BRIDGE, vm.iface, '--', 'set', 'Interface', vm.iface, 'type=internal', `external_ids:iface-id=${vm.lsp}`],
    { wait: true },
  );
  const inVm = new Ip(runner, vm.netns);
  let outcome: 'moved' | 'kept' = 'moved';
  const move = await runner.run(['ip', '-n', worker.netns, 'link', 'set', 'dev', vm.iface, 'netns', vm.netns], { mutates: true, allowFailure: true, timeoutMs: 10_000 });
  if (move.exitCode !== 0) {
    if (/File exists|same name exists/.test(move.stderr)) {
      await inVm.deleteLink(vm.iface);
      await new Ip(runner, worker.netns).setLink(vm.iface, { netns: vm.netns });
    } else if ((await inVm.link(vm.iface)) !== undefined) {
      outcome = 'kept';
    } else {
      throw new ExitError(`the metadata VM's port ${vm.iface} is neither in ${worker.netns} nor in ${vm.netns}: ovs-vswitchd did not create it`);
    }
  }
  await inVm.batch([
    ['link', 'set', 'dev', 'lo', 'up'],
    ['link', 'set', 'dev', vm.iface, 'address', vm.mac, 'up'],
    ['addr', 'replace', `${vm.ip}/${m.prefixLen}`, 'dev', vm.iface],
    ['route', 'replace', `${METADATA_IP}/32`, 'via', m.localport.ip],
  ]);
  return outcome;
}

/** The agent's veth end inside ovnmeta-<uuid> (Neutron: `tap` + first 10 chars of the network + 1). */
export function ovnmetaVeth(m: MetadataSandboxPlan): { outside: string; inside: string } {
  const base = `tap${m.networkId.slice(0, 10)}`;
  return { outside: `${base}0`, inside: `${base}1` };
}
