/**
 * ovn-trace for a VM-to-VM flow: the microflow (as in the seed post) and the parse of
 * `ovn-trace --summary` into the logical path a packet takes: the datapaths it traverses in
 * order, then the port it leaves through, e.g. `network1 -> router1 -> network2 -> vm2`.
 */
import type { SandboxPlan, VmPlan } from './plan.js';

export interface TracePath {
  /** Logical datapaths in the order the packet enters them (switches and routers). */
  datapaths: string[];
  /** The last port the packet is output to that is not a patch port (a VIF), if any. */
  output?: { port: string; type: string };
  /** datapaths followed by the output port: what is printed and compared. */
  hops: string[];
}

const PIPELINE = /^\s*(ingress|egress)\(dp="([^"]+)"/;
const OUTPUT = /\/\*\s*output to "([^"]+)", type "([^"]*)"\s*\*\//;

/** Parses `ovn-trace --summary` (or the detailed form: the same markers appear in both). */
export function parseTraceSummary(text: string): TracePath {
  const datapaths: string[] = [];
  let output: TracePath['output'];
  for (const line of text.split('\n')) {
    const pipe = PIPELINE.exec(line);
    if (pipe !== null) {
      const [, stage, dp] = pipe;
      if (stage === 'ingress' && dp !== undefined && datapaths[datapaths.length - 1] !== dp) datapaths.push(dp);
      continue;
    }
    const out = OUTPUT.exec(line);
    if (out !== null) {
      const [, port, type] = out;
      if (port !== undefined && type !== 'patch') output = { port, type: type ?? '' };
    }
  }
  return { datapaths, ...(output === undefined ? {} : { output }), hops: [...datapaths, ...(output === undefined ? [] : [output.port])] };
}

export function formatTracePath(p: TracePath): string {
  return p.hops.length === 0 ? '(no path: the packet went nowhere)' : p.hops.join(' -> ');
}

/** The seed's microflow from `from` to `to`: to the router's MAC when they are on different networks. */
export function traceMicroflow(plan: SandboxPlan, from: VmPlan, to: VmPlan): string {
  const routerPort = plan.router.ports.find((p) => p.network === from.network);
  const ethDst = from.network === to.network ? to.mac : (routerPort?.mac ?? to.mac);
  return [
    `inport == "${from.name}"`,
    `eth.src == ${from.mac}`,
    `eth.dst == ${ethDst}`,
    `ip4.src == ${from.ip}`,
    `ip4.dst == ${to.ip}`,
    'ip.ttl == 64',
  ].join(' && ');
}

/** The path the seed post shows: across the router when the VMs are on different networks. */
export function expectedHops(plan: SandboxPlan, from: VmPlan, to: VmPlan): string[] {
  if (from.network === to.network) return [from.network, to.name];
  return [from.network, plan.router.name, to.network, to.name];
}
