/**
 * The sandbox as a site of local hosts: its inventory, and per host a network namespace plus a
 * root directory under the state directory, reached through the local transport. Everything a
 * host runs comes from its bundle (the real renderer) applied by the real apply; the sandbox
 * adds only the network between the hosts, the logical topology, VMs, ping and trace.
 */
import type { Inventory } from '../inventory/types.js';
import { hostPaths, type HostPaths } from '../paths.js';
import type { Runner } from '../runner.js';
import { siteTopology, type SiteTopology } from '../site/topology.js';
import { localHost, type LocalHost } from '../transport/local.js';
import { planInventory } from './inventory.js';
import type { SandboxPlan } from './plan.js';

export interface SandboxHost {
  name: string;
  netns: string;
  root: string;
  paths: HostPaths;
  /** Where its bundle is rendered: the host's own bundle directory (as `deploy` pushes it). */
  bundleDir: string;
  reportFile: string;
  local: LocalHost;
}

export interface SandboxSite {
  inventory: Inventory;
  topology: SiteTopology;
  hosts: SandboxHost[];
  central: SandboxHost;
  /** The operator's NB client host (role `cms`). */
  operator: SandboxHost;
  workers: SandboxHost[];
}

export function sandboxSite(plan: SandboxPlan, runner?: Runner): SandboxSite {
  const inventory = planInventory(plan);
  const host = (name: string, netns: string): SandboxHost => {
    const root = plan.paths.hostRoot(name);
    const paths = hostPaths(root);
    // A sandbox's stunnels always accept on the same addresses (one central), and its certificate
    // rotations reload them under traffic: they keep their listeners open across reloads.
    const local = localHost({ netns, root, socketActivation: true, ...(runner === undefined ? {} : { runner }) });
    return { name, netns, root, paths, bundleDir: paths.bundle, reportFile: plan.paths.report(name), local };
  };
  const central = host(plan.central.name, plan.central.netns);
  const operator = host(plan.operator.name, plan.operator.netns);
  const workers = plan.workers.map((w) => host(w.name, w.netns));
  return { inventory, topology: siteTopology(inventory), hosts: [central, operator, ...workers], central, operator, workers };
}

export function siteHost(site: SandboxSite, name: string): SandboxHost {
  const h = site.hosts.find((x) => x.name === name);
  if (h === undefined) throw new Error(`no sandbox host ${name}`);
  return h;
}
