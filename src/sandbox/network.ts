/**
 * The sandbox's namespaces and underlay: one namespace per node and per VM, and an underlay
 * namespace holding a Linux bridge that every node reaches through a veth (MTU 1600 so Geneve
 * carries 1500-byte VM frames). Idempotent: each object is checked before it is made. Commands
 * go in `ip -batch` groups: a fork costs the CLI more than the command itself.
 */
import type { Runner } from '../runner.js';
import { Ip } from '../tools/netns.js';
import type { NodePlan, SandboxPlan } from './plan.js';
import type { SandboxNames } from './naming.js';

/**
 * Creates every namespace of the plan that is missing. `record` runs first with the full list:
 * the caller writes it to state.json so that `down` finds namespaces even if we die right after.
 */
export async function ensureNamespaces(
  runner: Runner,
  plan: SandboxPlan,
  record: (names: string[]) => Promise<void>,
): Promise<{ created: string[]; existing: string[] }> {
  const ip = new Ip(runner);
  await record(plan.namespaces);
  const existing = await ip.listNetns();
  const missing = plan.namespaces.filter((ns) => !existing.includes(ns));
  try {
    await ip.batch(missing.map((ns) => ['netns', 'add', ns]));
  } catch {
    // Somebody (a concurrent or killed `up`) made one meanwhile: one by one, tolerating that.
    for (const ns of missing) await ip.ensureNetns(ns);
  }
  return { created: missing, existing };
}

/**
 * The underlay bridge and every node's veth to it, then each node's side: loopback and veth up,
 * the central's address. A veth pair lives or dies as a whole (deleting a namespace deletes both
 * ends), so a missing underlay end means the pair is missing.
 */
export async function ensureUnderlay(runner: Runner, plan: SandboxPlan): Promise<void> {
  const ul = new Ip(runner, plan.underlay.netns);
  const have = new Set((await ul.links()).map((l) => l.ifname));
  const { bridge, mtu } = plan.underlay;
  const nodes = [plan.central, plan.operator, ...plan.workers];
  const lines: string[][] = [];
  if (!have.has(bridge)) lines.push(['link', 'add', 'name', bridge, 'mtu', String(mtu), 'type', 'bridge']);
  lines.push(['link', 'set', 'dev', bridge, 'mtu', String(mtu), 'up']);
  for (const n of nodes) {
    if (!have.has(n.veth.outside)) {
      lines.push(['link', 'add', 'name', n.veth.inside, 'netns', n.netns, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', n.veth.outside, 'mtu', String(mtu)]);
    }
    lines.push(['link', 'set', 'dev', n.veth.outside, 'master', bridge, 'mtu', String(mtu), 'up']);
  }
  await ul.batch(lines);
  await Promise.all(nodes.map((n) => nodeSide(runner, plan, n)));
}

async function nodeSide(runner: Runner, plan: SandboxPlan, node: NodePlan): Promise<void> {
  const lines = [
    ['link', 'set', 'dev', 'lo', 'up'],
    ['link', 'set', 'dev', node.veth.inside, 'mtu', String(plan.underlay.mtu), 'up'],
  ];
  const isCentral = node.name === plan.central.name;
  const ip = new Ip(runner, node.netns);
  // Userspace datapath: apply moves a worker's address from its NIC (this veth) to br-phy; once
  // br-phy exists the address is apply's to keep (underlay.json), not ours to add back.
  if (isCentral || plan.datapath === 'system' || (await ip.link('br-phy')) === undefined) lines.push(['addr', 'replace', `${node.address}/24`, 'dev', node.veth.inside]);
  await ip.batch(lines);
  if (isCentral) {
    // The central's TCP leaves with checksums left to the NIC (veth offload). The workers'
    // userspace datapath reads frames raw from their veth and hands them on unfixed, so their
    // kernel would drop every TCP segment from the central: checksum in software instead.
    await runner.run(['ethtool', '-K', node.veth.inside, 'tx', 'off'], { netns: node.netns, mutates: true, timeoutMs: 10_000 });
  }
}

/** Namespaces of this sandbox that exist now: the plan's, the state file's and any with our prefix. */
export async function ownNamespaces(runner: Runner, names: SandboxNames, recorded: readonly string[]): Promise<string[]> {
  const existing = await new Ip(runner).listNetns();
  return existing.filter((ns) => recorded.includes(ns) || names.owns(ns));
}
