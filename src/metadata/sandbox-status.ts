/**
 * The sandbox's metadata agents as `status` reports them: each worker's agent as its own
 * supervisor sees it (the rendered `ovn-metadata-agent` service, a process or a podman run), its
 * registration in the SB and whether its metadata API answers.
 */
import { hostPaths } from '../paths.js';
import type { SandboxPlan } from '../sandbox/plan.js';
import { socketAccepts } from '../sandbox/ready.js';
import { OwnSupervisor } from '../supervisor/own.js';
import type { ServiceStatus } from '../supervisor/types.js';
import type { Sbctl } from '../tools/ovn.js';
import { metadataRegistrations } from './registration.js';
import type { MetadataAgentPlan } from './sandbox-plan.js';
import { metadataAgentStatus, type MetadataAgentStatus } from './status.js';

/** One agent's service in its worker's supervisor, named as status names it (`a.service`). */
async function agentService(a: MetadataAgentPlan): Promise<ServiceStatus | undefined> {
  const all = await new OwnSupervisor(hostPaths(a.root).state).status().catch(() => [] as ServiceStatus[]);
  const s = all.find((x) => x.name === a.hostService);
  return s === undefined ? undefined : { ...s, name: a.service };
}

/** undefined when the sandbox runs no metadata agents (`up` without --metadata-agent). */
export async function sandboxMetadataAgents(plan: SandboxPlan, sbctl: Sbctl): Promise<MetadataAgentStatus[] | undefined> {
  const m = plan.metadata;
  if (m === undefined) return undefined;
  const chassisOf = (worker: string) => plan.workers.find((w) => w.name === worker)?.systemId ?? worker;
  const [regs, services, serving] = await Promise.all([
    metadataRegistrations(sbctl, m.agents.map((a) => chassisOf(a.worker))).catch(() => undefined),
    Promise.all(m.agents.map(agentService)),
    Promise.all(m.agents.map(async (a) => ((await socketAccepts(a.proxySocket)) ? a.service : undefined))),
  ]);
  return metadataAgentStatus(
    m,
    chassisOf,
    services.filter((s): s is ServiceStatus => s !== undefined),
    regs,
    new Set(serving.filter((s): s is string => s !== undefined)),
    m.runtime.kind,
  );
}
