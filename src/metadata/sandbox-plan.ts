/**
 * The metadata agent in the sandbox (pure): one agent per worker, the worker's rendered
 * `ovn-metadata-agent` service (its files where the renderer puts them under the worker's root),
 * reaching the SB through the worker's stunnel client; and a Neutron-shaped demo network (switch `neutron-<uuid>`, a
 * localport with `neutron:cidrs`, one VM port with device/project ids) so `up` can prove that
 * the agent provisions metadata for a VM.
 *
 * The network's uuid is derived from the sandbox id, so `ovnmeta-<uuid>` (the namespace the agent
 * uses, a global name we do not choose) is known in advance: `up` creates and records it like
 * its other namespaces (the agent reuses an existing one: it could not make one the host sees from
 * its worker's private mount namespace), and `down` removes it.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { hostPaths, hostRenderedPaths, sandboxMetadataSecret, type SandboxPaths } from '../paths.js';

/** What of the sandbox plan this needs (kept narrow so the sandbox plan can embed the result). */
export interface MetadataPlanInput {
  /** A podman image: the agents run in containers built from containers/ovn-metadata-agent. */
  image?: string;
  id: string;
  stateDir: string;
  paths: SandboxPaths;
  names: { prefix: string; vmNetns(vm: string): string };
  workers: { name: string; netns: string }[];
}

export interface MetadataAgentPlan {
  worker: string;
  netns: string;
  /** The worker's root: its supervisor's state is hostPaths(root).state. */
  root: string;
  confDir: string;
  statePath: string;
  logFile: string;
  /** The agent's metadata API (haproxy forwards to it): accepts once its worker serves. */
  proxySocket: string;
  /** Its container, when the agents run in containers (unique on the machine). */
  containerName: string;
  /** Its supervisor's log (start order). */
  supervisorLog: string;
}

export type MetadataRuntime = { kind: 'process' } | { kind: 'container'; image: string };

export interface MetadataVmPlan {
  /** OVS internal port on the worker's br-int, moved into the VM namespace. */
  iface: string;
  /** Logical switch port (Neutron names ports by uuid). */
  lsp: string;
  netns: string;
  worker: string;
  mac: string;
  ip: string;
  deviceId: string;
  projectId: string;
}

export interface MetadataSandboxPlan {
  networkId: string;
  switchName: string;
  /** Used by the agent that serves the VM's worker; created by `up`, removed by `down`. */
  ovnmetaNetns: string;
  /** A veth pair of ours inside ovnmeta-<uuid> so no other worker's agent deletes it as empty. */
  keeper: [string, string];
  cidr: string;
  prefixLen: number;
  localport: { lsp: string; mac: string; ip: string };
  vm: MetadataVmPlan;
  /** Where the agents send metadata requests, from the worker's namespace. */
  nova: { host: string; port: number };
  secretFile: string;
  agents: MetadataAgentPlan[];
  /** The metadata URL a VM asks. */
  url: string;
  runtime: MetadataRuntime;
}

/** Nova's metadata API port; in the sandbox a server on the worker's loopback answers there. */
export const SANDBOX_NOVA = { host: '127.0.0.1', port: 8775 } as const;
export const METADATA_URL = 'http://169.254.169.254/openstack/latest/meta_data.json';

/** A uuid-shaped id (v4 layout) derived from the sandbox id: stable across `up` runs. */
export function derivedUuid(id: string, what: string): string {
  const h = createHash('sha256').update(`ovn-deploy:${id}:${what}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function planMetadata(plan: MetadataPlanInput): MetadataSandboxPlan {
  const networkId = derivedUuid(plan.id, 'metadata-network');
  const first = plan.workers[0];
  if (first === undefined) throw new Error('a sandbox has at least one worker');
  const idByte = (k: number) => plan.id.slice(k, k + 2);
  return {
    networkId,
    switchName: `neutron-${networkId}`,
    ovnmetaNetns: `ovnmeta-${networkId}`,
    keeper: [`${plan.names.prefix}-keep0`, `${plan.names.prefix}-keep1`],
    cidr: '192.168.100.0/24',
    prefixLen: 24,
    localport: { lsp: derivedUuid(plan.id, 'metadata-localport'), mac: `fa:16:3e:${idByte(0)}:${idByte(2)}:02`, ip: '192.168.100.2' },
    vm: {
      iface: 'mvm1',
      lsp: derivedUuid(plan.id, 'metadata-vm1-port'),
      netns: plan.names.vmNetns('mvm1'),
      worker: first.name,
      mac: `fa:16:3e:${idByte(0)}:${idByte(2)}:11`,
      ip: '192.168.100.11',
      deviceId: derivedUuid(plan.id, 'metadata-vm1-instance'),
      projectId: derivedUuid(plan.id, 'metadata-project').replace(/-/g, ''),
    },
    nova: { ...SANDBOX_NOVA },
    secretFile: sandboxMetadataSecret(plan.stateDir),
    agents: plan.workers.map((w) => {
      // Where the real renderer puts the agent's files on the worker's root.
      const root = plan.paths.hostRoot(w.name);
      const md = hostRenderedPaths(root).metadata;
      return {
        worker: w.name,
        netns: w.netns,
        root,
        confDir: md.confDir,
        statePath: md.statePath,
        logFile: md.logFile,
        proxySocket: path.join(md.statePath, 'metadata_proxy'),
        containerName: `${plan.names.prefix}-${w.name}-metadata`,
        supervisorLog: path.join(hostPaths(root).supervisorDir, 'supervisor.log'),
      };
    }),
    url: METADATA_URL,
    runtime: plan.image === undefined ? { kind: 'process' } : { kind: 'container', image: plan.image },
  };
}
