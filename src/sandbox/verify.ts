/**
 * The end-to-end proof that a sandbox works: a ping between VMs (across the router and, with
 * two or more workers, the Geneve tunnel) and ovn-trace's logical path for the same flow.
 */
import { ExitError } from '../errors.js';
import type { Runner } from '../runner.js';
import { ovnTrace } from '../tools/ovn.js';
import { sleep } from '../tools/retry.js';
import type { SandboxPlan, VmPlan } from './plan.js';
import { expectedHops, formatTracePath, parseTraceSummary, traceMicroflow, type TracePath } from './trace.js';

export interface PingResult {
  from: string;
  to: string;
  transmitted: number;
  received: number;
  /** Average round trip in ms, when any reply came back. */
  rttAvgMs?: number;
}

/** `N packets transmitted, M received` and the rtt line of ping's summary. */
export function parsePingSummary(text: string): { transmitted: number; received: number; rttAvgMs?: number } {
  const counts = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(text);
  const rtt = /=\s*[\d.]+\/([\d.]+)\/[\d.]+/.exec(text);
  return {
    transmitted: Number(counts?.[1] ?? 0),
    received: Number(counts?.[2] ?? 0),
    ...(rtt?.[1] === undefined ? {} : { rttAvgMs: Number(rtt[1]) }),
  };
}

const WARMUP_TRIES = 20;

/**
 * Pings `to` from `from`'s namespace: every one of `count` pings must come back. A first packet
 * may be lost while a tunnel's neighbour is resolved (up seeds the neighbours, so normally none
 * is), so after a loss single pings warm the path up and the full round is tried once more.
 */
export async function pingVm(runner: Runner, from: VmPlan, to: VmPlan, count = 3): Promise<PingResult> {
  const round = () =>
    runner.run(['ping', '-n', '-q', '-c', String(count), '-i', '0.05', '-W', '1', to.ip], { netns: from.netns, allowFailure: true, mutates: false, timeoutMs: 10_000 });
  let r = await round();
  let summary = parsePingSummary(r.stdout);
  let warm = true;
  if (summary.received < count) {
    warm = false;
    for (let i = 0; i < WARMUP_TRIES && !warm; i++) {
      const w = await runner.run(['ping', '-n', '-q', '-c', '1', '-W', '0.3', to.ip], { netns: from.netns, allowFailure: true, mutates: false, timeoutMs: 5000 });
      warm = w.exitCode === 0;
      if (!warm && w.exitCode !== 1) await sleep(50); // exit 2: e.g. "Network is unreachable" while the tap comes up
    }
    r = await round();
    summary = parsePingSummary(r.stdout);
  }
  const result: PingResult = { from: from.name, to: to.name, ...summary };
  if (summary.received < count) {
    throw new ExitError(
      `ping ${from.name} (${from.ip}) -> ${to.name} (${to.ip}) failed: ${summary.received}/${summary.transmitted} replies` +
        (warm ? '' : ' (no reply during warm-up either)') +
        `\n${(r.stdout + r.stderr).trim()}`,
    );
  }
  return result;
}

export interface TraceResult {
  from: string;
  to: string;
  path: TracePath;
  expected: string[];
  output: string;
}

/** ovn-trace of the seed's flow; throws unless the path is the expected one. */
export async function traceVm(runner: Runner, plan: SandboxPlan, from: VmPlan, to: VmPlan): Promise<TraceResult> {
  const output = await ovnTrace(runner, `unix:${plan.paths.central.sbSock}`, from.network, traceMicroflow(plan, from, to));
  const path = parseTraceSummary(output);
  const expected = expectedHops(plan, from, to);
  if (path.hops.join(' ') !== expected.join(' ')) {
    throw new ExitError(
      `ovn-trace ${from.name} -> ${to.name}: expected ${expected.join(' -> ')}, got ${formatTracePath(path)}\n${output.trim().split('\n').slice(0, 40).join('\n')}`,
    );
  }
  return { from: from.name, to: to.name, path, expected, output };
}

export function vmByName(plan: SandboxPlan, name: string): VmPlan {
  const vm = plan.vms.find((v) => v.name === name);
  if (vm === undefined) throw new Error(`no VM ${name} in the plan`);
  return vm;
}
