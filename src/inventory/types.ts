/**
 * The validated shape of a site inventory (`site.yaml`). The schema in `schema.ts` parses raw
 * YAML into exactly this; everything downstream (render, PKI, sandbox) takes these types.
 */

/**
 * `cms`: a client of the Northbound (neutron-server, an operator's machine): it gets NB and SB
 * through its stunnel client and nothing else; a worker never gets the Northbound.
 */
export type Role = 'central' | 'worker' | 'metadata-agent' | 'cms';
export const ROLES: readonly Role[] = ['central', 'worker', 'metadata-agent', 'cms'];

export type EncapType = 'geneve' | 'vxlan';

export interface Ports {
  /** Northbound OVSDB, TLS (stunnel) on the central's addresses. */
  nb: number;
  /** Southbound OVSDB, TLS. */
  sb: number;
  /** Northbound RAFT cluster port. */
  nbRaft: number;
  /** Southbound RAFT cluster port. */
  sbRaft: number;
}

/**
 * ovsdb-server listens in plaintext only on 127.0.0.1, on these ports; stunnel's server side
 * forwards the TLS ports above to them. Separate numbers so a host can be central and worker.
 */
export interface LoopbackPorts {
  nb: number;
  sb: number;
  nbRaft: number;
  sbRaft: number;
}

export interface Encap {
  type: EncapType;
  ip: string;
  /**
   * The NIC that carries the tunnels. With the userspace datapath (`datapath: netdev`) apply moves
   * it into the `br-phy` bridge and puts the encap IP on br-phy's internal port (OVS's own tunnel
   * stack needs the address on an OVS port); with the kernel datapath it is informational.
   */
  interface?: string;
}

/** `system`: the kernel module (production); `netdev`: OVS's userspace datapath (no module needed). */
export type Datapath = 'system' | 'netdev';

export interface Host {
  name: string;
  /** IPv4/IPv6 addresses this host is reached by; the first is the primary. */
  addresses: string[];
  /** Extra DNS names the host is reached by (go into a central's server certificate SAN). */
  dnsNames: string[];
  roles: Role[];
  /** Required for workers. */
  encap?: Encap;
  /** Datapath of the host's bridges; default `system`. */
  datapath: Datapath;
  /** OVS system-id / chassis name; defaults to the host name. */
  systemId: string;
  /** SSH target for `deploy`; defaults to root@first address. */
  ssh?: { user: string; port: number; host?: string };
}

/**
 * `stunnel`: stunnel terminates TLS in front of unix sockets (name checks per port, CRL); `native`:
 * ovsdb-server's own TLS (`pssl:`), so the Southbound sees each chassis's certificate and enforces
 * RBAC (role ovn-controller), but OVSDB's TLS checks no CRL.
 */
export type TlsMode = 'stunnel' | 'native';
export const TLS_MODES = ['stunnel', 'native'] as const satisfies readonly TlsMode[];

export interface TlsSettings {
  mode: TlsMode;
  /**
   * Native mode: the Southbound port without a role, for ovn-northd and cms hosts (the firewall
   * admits only centrals and cms hosts); chassis use `ports.sb`, where RBAC applies.
   */
  sbAdminPort: number;
}

export interface CertificatePolicy {
  caValidityDays: number;
  leafValidityDays: number;
  /** Certificates with fewer days left than this are due for renewal. */
  renewalWindowDays: number;
  caKeyBits: number;
  leafKeyBits: number;
}

/** Settings of neutron-ovn-metadata-agent on the hosts with the metadata-agent role. */
export interface MetadataAgentConfig {
  /** Where the agent forwards metadata requests (nova-api's metadata service). */
  novaMetadataHost: string;
  novaMetadataPort: number;
  /** metadata_workers: API worker processes. */
  workers: number;
  /** Set: every agent runs in a podman container of this image; unset: the distribution's agent. */
  image?: string;
}

export interface Inventory {
  /** Site name; used in certificate subjects and generated headers. */
  site: string;
  tls: TlsSettings;
  ports: Ports;
  loopbackPorts: LoopbackPorts;
  certificates: CertificatePolicy;
  hosts: Host[];
  /** Required as soon as a host has the metadata-agent role (render checks it). */
  metadataAgent?: MetadataAgentConfig;
}

/** Where a parsed inventory came from plus its non-fatal findings. */
export interface ParsedInventory {
  inventory: Inventory;
  file: string;
  warnings: string[];
}

export function hostsWithRole(inv: Inventory, role: Role): Host[] {
  return inv.hosts.filter((h) => h.roles.includes(role));
}
