/**
 * The sandbox as a site inventory: the same model (and the same stunnel rendering, ports and
 * certificate policy) real hosts use, with the plan's node names and underlay addresses. A
 * worker's encap NIC is its underlay veth: with the userspace datapath, apply moves it into
 * br-phy as on a real host.
 */
import { sandboxInventory } from '../inventory/index.js';
import type { Inventory } from '../inventory/types.js';
import type { SandboxPlan } from './plan.js';
import { SANDBOX_NOVA } from '../metadata/sandbox-plan.js';

export function planInventory(plan: SandboxPlan): Inventory {
  return sandboxInventory({
    site: `sandbox-${plan.id}`,
    central: { name: plan.central.name, address: plan.central.address },
    cms: [{ name: plan.operator.name, address: plan.operator.address }],
    tls: { mode: plan.tls },
    workers: plan.workers.map((w) => ({ name: w.name, address: w.address, metadataAgent: plan.metadata !== undefined, datapath: plan.datapath, interface: w.veth.inside })),
    ...(plan.metadata === undefined ? {} : { metadataAgent: { novaMetadataHost: SANDBOX_NOVA.host, novaMetadataPort: SANDBOX_NOVA.port } }),
  });
}
