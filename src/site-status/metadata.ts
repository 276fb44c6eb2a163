/**
 * Metadata agents in the site status: per chassis whose host has the metadata-agent role, whether
 * the agent is registered in the Southbound and healthy, read from that host's own health checks
 * (`apply --check`: service running, Chassis_Private registration through the host's SB remotes,
 * its metadata API socket answering and, in a container, the image's HEALTHCHECK) and its
 * daemons (pid, restarts). Pure.
 */
import type { Inventory } from '../inventory/types.js';
import { hostsWithRole } from '../inventory/types.js';
import { SERVICE } from '../render/services.js';
import type { HostHealth } from './judge.js';

export interface MetadataAgentView {
  chassis: string;
  host: string;
  runsAs: 'process' | 'container';
  /** Its service runs (undefined: not known). */
  running: boolean | undefined;
  pid: number | null;
  restarts: number;
  /** undefined: not known (host unreachable or its checks did not run). */
  registered: boolean | undefined;
  healthy: boolean;
  detail: string;
}

export function judgeMetadataAgents(inv: Inventory, hosts: readonly HostHealth[]): MetadataAgentView[] {
  return hostsWithRole(inv, 'metadata-agent').map((h): MetadataAgentView => {
    const health = hosts.find((x) => x.name === h.name);
    // How the host runs it (its bundle checks a container's HEALTHCHECK), else what the inventory asks.
    const container = health?.health.some((c) => c.check.startsWith('container-healthy ')) ?? false;
    const runsAs = container || inv.metadataAgent?.image !== undefined ? 'container' : 'process';
    const daemon = health?.daemons.find((d) => d.name === SERVICE.metadataAgent);
    const base = { chassis: h.systemId, host: h.name, runsAs, running: daemon?.running, pid: daemon?.pid ?? null, restarts: daemon?.restarts ?? 0 } as const;
    if (health === undefined || !health.reachable || health.error !== undefined) {
      return { ...base, registered: undefined, healthy: false, detail: health?.error ?? 'host not checked' };
    }
    const agentChecks = health.health.filter((c) => c.service === SERVICE.metadataAgent);
    const reg = agentChecks.find((c) => c.check.startsWith('metadata-registered '));
    const bad = agentChecks.filter((c) => !c.ok);
    const healthy = reg !== undefined && bad.length === 0;
    const why = bad.map((c) => `${c.check}: ${c.detail}`).join('; ');
    const detail = reg === undefined ? 'no registration check in the bundle (re-deploy)' : bad.length === 0 ? reg.detail : reg.ok ? why : `not registered in the SB: ${why}`;
    return { ...base, registered: reg?.ok, healthy, detail };
  });
}
