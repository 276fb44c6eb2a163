/**
 * How a host runs neutron-ovn-metadata-agent: the argv (and env) of its `ovn-metadata-agent`
 * service, so whichever manager starts the bundle's services (systemd, the own supervisor) runs
 * the agent the same way, as a process or as a podman container of the role's image.
 */
import { metadataConfigFiles } from '../metadata/render.js';
import type { HostPaths, HostRenderedPaths } from '../paths.js';

export type MetadataAgentRuntime =
  /** `command`: what runs the agent script (default the distribution's binary). */
  | { kind: 'process'; command?: readonly string[] }
  /**
   * A container of `image` (built from containers/ovn-metadata-agent); `name` unique on the
   * machine; `netns`: the host's network namespace when the host is one (`ns:/run/netns/NETNS`,
   * so `podman exec` and the image's healthcheck join it too), else the host's network.
   */
  | { kind: 'container'; image: string; name?: string; netns?: string };

export const METADATA_AGENT_BINARY = '/usr/bin/neutron-ovn-metadata-agent';
export const PODMAN_BINARY = '/usr/bin/podman';
export const DEFAULT_METADATA_CONTAINER = 'ovn-metadata-agent';
/** The agent's metadata API socket in its state_path (neutron's metadata_proxy_socket default), what haproxy forwards to. */
export const METADATA_PROXY_SOCKET = 'metadata_proxy';

/**
 * /run/netns as `ip netns add` leaves it: a directory that is a shared mount point of its own.
 * podman refuses `-v /run/netns:/run/netns:shared` without the directory, and with a private
 * mount there (a host without systemd, whose mounts are private) the ovnmeta-* namespaces the
 * agent bind-mounts inside its container reach the host as empty files ("Peer netns reference
 * is invalid"). Idempotent; the own supervisor's podman launcher and the systemd unit (ExecStartPre=) run these lines.
 */
export const NETNS_DIR_SHARED = [
  'mkdir -p /run/netns',
  'mountpoint -q /run/netns || mount --bind /run/netns /run/netns',
  'mount --make-shared /run/netns',
] as const;

/** The unit's ExecStartPre= of a containerized agent: NETNS_DIR_SHARED, stopping at the first failure. */
export const NETNS_DIR_PRESTART: readonly string[] = ['/bin/sh', '-ec', NETNS_DIR_SHARED.join('; ')];

/** The agent's own arguments: every config fragment (the secret last) and its log file. */
function agentArgs(rp: HostRenderedPaths): string[] {
  return [...metadataConfigFiles(rp.metadata.confDir).flatMap((f) => ['--config-file', f]), '--log-file', rp.metadata.logFile];
}

export function metadataAgentCommand(runtime: MetadataAgentRuntime, hp: HostPaths, rp: HostRenderedPaths): { argv: string[]; env: Record<string, string> } {
  if (runtime.kind === 'process') return { argv: [...(runtime.command ?? [METADATA_AGENT_BINARY]), ...agentArgs(rp)], env: {} };
  const m = rp.metadata;
  const ovsRun = hp.ovs.runDir;
  // podman in the foreground (the manager's process), in the host's network. The agent makes
  // ovnmeta-* namespaces, veths and haproxy processes the host's Open vSwitch must see: privileged,
  // /run/netns shared. Its files at the same paths inside, so config, logs and the metadata
  // proxy socket stay where the host's other tools look. --replace: a container a killed podman
  // left behind is replaced, not duplicated.
  const argv = [
    PODMAN_BINARY,
    'run',
    '--rm',
    '--replace',
    '--name',
    runtime.name ?? DEFAULT_METADATA_CONTAINER,
    '--network',
    runtime.netns === undefined ? 'host' : `ns:/run/netns/${runtime.netns}`,
    '--privileged',
    '--volume',
    '/run/netns:/run/netns:shared',
    '--volume',
    `${ovsRun}:${ovsRun}`,
    // The SB through the host's tunnel: the unix sockets of the root-only socket directory.
    '--volume',
    `${hp.ovsdbDir}:${hp.ovsdbDir}`,
    '--volume',
    `${m.confDir}:${m.confDir}:ro`,
    '--volume',
    `${m.statePath}:${m.statePath}`,
    '--volume',
    `${m.logDir}:${m.logDir}`,
    // The image's healthcheck reads the agent's databases from its ini.
    '--env',
    `OVN_METADATA_CONF_DIR=${m.confDir}`,
    runtime.image,
    'neutron-ovn-metadata-agent',
    ...agentArgs(rp),
  ];
  return { argv, env: {} };
}
