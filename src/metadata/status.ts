/**
 * Metadata agents in `status`: per chassis, how its agent runs (a supervised process or a
 * container), whether it is alive, and whether it is registered in the Southbound
 * (Chassis_Private `neutron:ovn-metadata-id`). Healthy needs both: a live process that is not
 * registered serves nothing, and a registration outlives a dead agent.
 */
import type { ServiceStatus } from '../supervisor/types.js';
import type { MetadataRegistration } from './registration.js';
import type { MetadataSandboxPlan } from './sandbox-plan.js';

export type MetadataRunsAs = 'process' | 'container';

export interface MetadataAgentStatus {
  chassis: string;
  service: string;
  runsAs: MetadataRunsAs;
  running: boolean;
  pid: number | null;
  restarts: number;
  /** The agent's id in Chassis_Private, null when not registered. */
  agentId: string | null;
  registered: boolean;
  healthy: boolean;
  detail: string;
}

/** Pure: joins the supervisor's view and the SB's registrations (undefined: SB not readable). */
export function metadataAgentStatus(
  m: MetadataSandboxPlan,
  chassisOf: (worker: string) => string,
  services: readonly ServiceStatus[],
  registrations: readonly MetadataRegistration[] | undefined,
  /** Services whose metadata API socket accepts connections. */
  serving: ReadonlySet<string>,
  runsAs: MetadataRunsAs = 'process',
): MetadataAgentStatus[] {
  return m.agents.map((a) => {
    const chassis = chassisOf(a.worker);
    const s = services.find((x) => x.name === a.service);
    const running = s?.running === true;
    const reg = registrations?.find((r) => r.chassis === chassis);
    const agentId = reg?.agentId ?? null;
    const registered = agentId !== null;
    let detail: string;
    if (!running) detail = s === undefined ? 'not started' : 'not running';
    else if (registrations === undefined) detail = 'SB not readable: registration unknown';
    else if (!registered) detail = `not registered in the SB (Chassis_Private ${chassis} has no neutron:ovn-metadata-id)`;
    else if (!serving.has(a.service)) detail = `registered as ${agentId}, but its metadata API (${a.proxySocket}) does not answer`;
    else detail = `registered as ${agentId}, serving`;
    const healthy = running && registered && serving.has(a.service);
    return { chassis, service: a.service, runsAs, running, pid: running ? (s?.pid ?? null) : null, restarts: s?.restarts ?? 0, agentId, registered, healthy, detail };
  });
}

export function metadataProblems(agents: readonly MetadataAgentStatus[]): string[] {
  return agents.filter((a) => !a.healthy).map((a) => `metadata agent of ${a.chassis}: ${a.detail}`);
}

export function metadataTableRows(agents: readonly MetadataAgentStatus[]): string[][] {
  return agents.map((a) => [a.chassis, a.runsAs, a.pid === null ? '-' : String(a.pid), a.registered ? 'yes' : 'NO', `${a.healthy ? 'ok' : 'FAIL'}: ${a.detail}`]);
}

export const METADATA_TABLE_HEADERS = ['METADATA AGENT', 'RUNS AS', 'PID', 'REGISTERED', 'HEALTH'];
