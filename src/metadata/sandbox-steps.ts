/**
 * `up --metadata-agent`: what the sandbox adds around the agents. The agents themselves are the
 * workers' rendered `ovn-metadata-agent` service (config and service from the real renderer,
 * started by apply under each worker's own supervisor after its ovn-controller); here: the shared
 * secret and the ovnmeta keeper before the hosts converge, the Neutron-shaped demo network and its
 * VM, then proof: every agent registered in the SB through its worker's stunnel client, and the
 * VM's worker serving ovnmeta-<uuid>. `up --no-metadata-agent` removes what these steps made.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Ip } from '../tools/netns.js';
import { Nbctl, Sbctl } from '../tools/ovn.js';
import { Vsctl } from '../tools/ovs.js';
import { pollUntil } from '../tools/retry.js';
import { ExitError } from '../errors.js';
import type { MetadataAgentRuntime } from '../render/metadata-runtime.js';
import type { Step } from '../ui/dag.js';
import type { Runner } from '../runner.js';
import type { ConvergeOptions } from '../sandbox/hosts.js';
import type { UpContext } from '../sandbox/up-context.js';
import { writeState } from '../sandbox/state.js';
import { terminatePids } from '../supervisor/proc.js';
import { waitForSocket } from '../sandbox/ready.js';
import { metadataRegistrations } from './registration.js';
import { bindMetadataVm, metadataNetworkArgs, ovnmetaVeth } from './sandbox-network.js';
import { planMetadata, type MetadataSandboxPlan } from './sandbox-plan.js';
import { ensureSharedSecret } from './secret.js';

const REGISTER_TIMEOUT_MS = 60_000;
const PROVISION_TIMEOUT_MS = 60_000;

/** The shared secret of this `up`, read before the hosts are rendered. */
const secrets = new WeakMap<UpContext, string>();

/**
 * What the workers' render needs for their agents: the secret and, for `--metadata-image`, the
 * container each runs its agent in (named for the sandbox: several sandboxes share podman; in
 * the worker's namespace by name, where `podman exec` finds it too).
 */
export function metadataRenderOptions(ctx: UpContext): Pick<ConvergeOptions, 'metadataSecret' | 'metadataRuntime'> {
  const m = ctx.plan.metadata;
  const secret = secrets.get(ctx);
  if (m === undefined) return {};
  const { runtime } = m;
  const withSecret = secret === undefined ? {} : { metadataSecret: secret };
  if (runtime.kind === 'process') return withSecret;
  return {
    ...withSecret,
    metadataRuntime: (host: string): MetadataAgentRuntime | undefined => {
      const a = m.agents.find((x) => x.worker === host);
      return a === undefined ? undefined : { kind: 'container', image: runtime.image, name: a.containerName, netns: a.netns };
    },
  };
}

export function metadataSteps(): Step<UpContext>[] {
  return [
    {
      id: 'metadata-prepare',
      title: 'Metadata agents: shared secret and ovnmeta namespace',
      deps: ['prepare', 'namespaces'],
      run: async (ctx) => {
        const m = ctx.plan.metadata;
        if (ctx.state.metadataAgent === true && m === undefined) delete ctx.state.metadataAgent;
        if (m === undefined) return 'Metadata agent: not enabled';
        if (ctx.dryRun) {
          ctx.opts.print(`would create ${m.secretFile} (0600) when missing; the workers' bundles carry the agents' configs`);
          return 'Metadata agents (dry run)';
        }
        ctx.state.metadataAgent = true;
        if (m.runtime.kind === 'container') ctx.state.metadataImage = m.runtime.image;
        else delete ctx.state.metadataImage;
        await writeState(ctx.plan.paths, ctx.state);
        const { secret, created } = await ensureSharedSecret(m.secretFile);
        secrets.set(ctx, secret);
        await ensureOvnmetaKeeper(ctx.runner, m);
        return `Metadata agents on ${m.agents.length} workers (${m.runtime.kind === 'container' ? `containers of ${m.runtime.image}` : 'processes'})${created ? ', new shared secret' : ''}`;
      },
    },
    {
      id: 'metadata-network',
      title: 'Neutron-shaped demo network',
      deps: ['topology'],
      run: async (ctx) => {
        const m = ctx.plan.metadata;
        const nbctl = new Nbctl(ctx.runner, `unix:${ctx.plan.paths.central.nbSock}`);
        if (m === undefined) {
          // `up --no-metadata-agent` on a sandbox that had them: its namespaces go with the
          // leftovers, the demo network here.
          const had = planMetadata(ctx.plan);
          if (ctx.dryRun || !ctx.namespacesBefore.includes(had.ovnmetaNetns)) return 'Metadata demo network: not enabled';
          await nbctl.run(['--if-exists', 'ls-del', had.switchName]);
          return `Metadata demo network ${had.switchName} removed`;
        }
        await nbctl.run(metadataNetworkArgs(m));
        return `Metadata demo network ${m.switchName} (${m.cidr})`;
      },
    },
    {
      id: 'metadata-vm',
      title: 'Bind the metadata demo VM',
      deps: ['hosts'],
      run: async (ctx) => {
        const m = ctx.plan.metadata;
        if (m === undefined) {
          // Its namespace goes with the leftovers; its port stays on the worker's br-int otherwise.
          const had = planMetadata(ctx.plan);
          const w = ctx.plan.workers.find((x) => x.name === had.vm.worker);
          if (ctx.dryRun || w === undefined || !ctx.namespacesBefore.includes(had.ovnmetaNetns)) return 'Metadata demo VM: not enabled';
          await new Vsctl(ctx.runner, ctx.plan.paths.worker(w.name).dbSock).run(['--if-exists', 'del-port', 'br-int', had.vm.iface]);
          return `Metadata demo VM port ${had.vm.iface} removed`;
        }
        const w = ctx.plan.workers.find((x) => x.name === m.vm.worker);
        if (w === undefined) throw new Error(`metadata VM on unknown worker ${m.vm.worker}`);
        if (ctx.dryRun) {
          ctx.opts.print(`would bind ${m.vm.iface} (${m.vm.ip}) into ${m.vm.netns} on ${w.name}`);
          return;
        }
        const outcome = await bindMetadataVm(ctx.runner, m, { netns: w.netns, dbSock: ctx.plan.paths.worker(w.name).dbSock });
        return `Metadata demo VM ${m.vm.iface}@${w.name} (${outcome})`;
      },
    },
    {
      id: 'metadata-ready',
      title: 'Metadata agents registered and serving',
      deps: ['hosts', 'metadata-network', 'metadata-vm'],
      run: async (ctx) => {
        const m = ctx.plan.metadata;
        if (m === undefined && !ctx.dryRun && ctx.namespacesBefore.includes(planMetadata(ctx.plan).ovnmetaNetns)) {
          // apply stopped the agents (no longer in the workers' bundles); their haproxy children outlive them.
          const stopped = await stopMetadataProxies(planMetadata(ctx.plan));
          return `Metadata agents removed${stopped.length > 0 ? ` (${stopped.length} haproxy stopped)` : ''}`;
        }
        if (m === undefined || ctx.dryRun) return m === undefined ? 'Metadata agent: not enabled' : undefined;
        const sbctl = new Sbctl(ctx.runner, `unix:${ctx.plan.paths.central.sbSock}`);
        const chassis = ctx.plan.workers.map((w) => w.systemId);
        await pollUntil(
          async () => {
            const regs = await metadataRegistrations(sbctl, chassis).catch(() => []);
            return regs.length > 0 && regs.every((r) => r.agentId !== null) ? regs : undefined;
          },
          {
            timeoutMs: REGISTER_TIMEOUT_MS,
            intervalMs: 200,
            onTimeout: () => new ExitError(`metadata agents did not register in the SB within ${REGISTER_TIMEOUT_MS / 1000} s (see ${m.agents.map((a) => a.logFile).join(', ')})`),
          },
        );
        // A registration outlives its agent (a restarted agent finds its old one): the proxy
        // socket answering proves the new process serves.
        await Promise.all(m.agents.map((a) => waitForSocket(a.proxySocket, REGISTER_TIMEOUT_MS, a.logFile)));
        await ensureOvnmetaOffload(ctx, m);
        return `Metadata agents registered on ${chassis.join(', ')}; ${m.ovnmetaNetns} serves ${m.vm.iface}`;
      },
    },
  ];
}

/**
 * haproxy processes the agents spawned (their config lives in an agent's state_path: ours by
 * path): they stay up by design when an agent stops. SIGTERM, then SIGKILL after a grace period.
 */
export async function stopMetadataProxies(m: MetadataSandboxPlan): Promise<number[]> {
  const dirs = m.agents.map((a) => `${a.statePath}/ovn-metadata-proxy/`);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.startsWith('haproxy\0') && dirs.some((d) => cmd.includes(d))) pids.push(Number(entry));
  }
  await terminatePids(pids, 'SIGTERM', 3_000);
  return pids;
}

/**
 * Every agent's startup sync tears down each ovnmeta-* namespace it does not serve itself, and
 * deletes it when it holds no device. Real hosts each have their own /run/netns; the sandbox's
 * workers share the machine's, so worker2's agent would delete worker1's namespace while it is
 * being provisioned. A veth pair of ours inside it (made before any agent starts) keeps it
 * non-empty, so the other agents leave it alone. It also keeps the namespace `up` made: an agent
 * started by its worker's supervisor (in the worker's private mount namespace) could not make one
 * the rest of the machine sees.
 */
export async function ensureOvnmetaKeeper(runner: Runner, m: MetadataSandboxPlan): Promise<void> {
  const ip = new Ip(runner, m.ovnmetaNetns);
  if ((await ip.link(m.keeper[0])) !== undefined) return;
  await ip.batch([['link', 'add', 'name', m.keeper[0], 'type', 'veth', 'peer', 'name', m.keeper[1]]]);
}

/**
 * Waits for the agent to provision the VM's network (its veth inside ovnmeta-<uuid>), then, on
 * the userspace datapath, turns off TX checksum offload on that veth: vswitchd reads its frames
 * raw and would forward haproxy's TCP segments with unfilled checksums, which the VM drops.
 */
export async function ensureOvnmetaOffload(ctx: Pick<UpContext, 'runner' | 'plan'>, m: NonNullable<UpContext['plan']['metadata']>): Promise<void> {
  const veth = ovnmetaVeth(m);
  const ip = new Ip(ctx.runner, m.ovnmetaNetns);
  await pollUntil(
    async () => {
      const ns = await new Ip(ctx.runner).listNetns();
      if (!ns.includes(m.ovnmetaNetns)) return undefined;
      const link = await ip.link(veth.inside).catch(() => undefined);
      return link?.flags.includes('UP') === true ? link : undefined;
    },
    {
      timeoutMs: PROVISION_TIMEOUT_MS,
      intervalMs: 200,
      onTimeout: () => new ExitError(`the metadata agent of ${m.vm.worker} did not provision ${m.ovnmetaNetns} (${veth.inside}) within ${PROVISION_TIMEOUT_MS / 1000} s (see ${m.agents.find((a) => a.worker === m.vm.worker)?.logFile ?? 'its log'})`),
    },
  );
  if (ctx.plan.datapath === 'netdev') {
    await ctx.runner.run(['ethtool', '-K', veth.inside, 'tx', 'off'], { netns: m.ovnmetaNetns, mutates: true, timeoutMs: 10_000 });
  }
}
