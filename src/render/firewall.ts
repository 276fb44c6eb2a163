/**
 * The ports a host must accept, and from whom: the OVSDB TLS ports from anywhere (CMS, workers),
 * the RAFT ports only from the other centrals, the tunnel port only from the other chassis.
 * `firewall` in the manifest lists what to open; the nftables file also drops what is restricted,
 * but never the host's own traffic (loopback, its own addresses) nor replies to its own
 * connections, and it touches nothing but its own table.
 */
import type { FirewallRule } from '../bundle/manifest.js';
import type { Inventory } from '../inventory/types.js';
import { hostPaths, hostRenderedPaths } from '../paths.js';
import type { HostTopology, SiteTopology } from '../site/topology.js';
import { canonicalIp } from '../stunnel/endpoint.js';
import { hostTemplate } from './templates.js';

/** A rule of the nftables file: `from` undefined = from anywhere; [] = from nobody (no peer yet). */
export interface PortPolicy {
  proto: 'tcp' | 'udp';
  port: number;
  from?: string[];
  why: string;
}

export const TUNNEL_PORTS = { geneve: 6081, vxlan: 4789 } as const;

/** Sorted, so that reordering hosts in the inventory does not change a firewall. */
const sortedUnique = (xs: string[]): string[] => [...new Set(xs)].sort();

/** Every chassis' encap IP, canonical, sorted, once per site: each worker's list is this minus itself. */
const encapIpsOf = new WeakMap<SiteTopology, string[]>();
function allEncapIps(topo: SiteTopology): string[] {
  let ips = encapIpsOf.get(topo);
  if (ips === undefined) {
    ips = sortedUnique(topo.workerEncapIps.map((w) => canonicalIp(w.ip)));
    encapIpsOf.set(topo, ips);
  }
  return ips;
}

export function portPolicies(inv: Inventory, topo: SiteTopology, ht: HostTopology): PortPolicy[] {
  const policies: PortPolicy[] = [];
  if (ht.isCentral) {
    const peers = sortedUnique(ht.remoteCentrals.flatMap((c) => c.host.addresses.map(canonicalIp)));
    policies.push(
      { proto: 'tcp', port: inv.ports.nb, why: 'OVN Northbound over TLS (stunnel): CMS, ovn-northd and admin tools' },
      { proto: 'tcp', port: inv.ports.sb, why: 'OVN Southbound over TLS (stunnel): ovn-controller on every chassis, ovn-northd' },
      { proto: 'tcp', port: inv.ports.nbRaft, from: peers, why: 'Northbound RAFT over TLS: the other centrals only' },
      { proto: 'tcp', port: inv.ports.sbRaft, from: peers, why: 'Southbound RAFT over TLS: the other centrals only' },
    );
  }
  const encap = ht.host.encap;
  if (ht.host.roles.includes('worker') && encap !== undefined) {
    const self = canonicalIp(encap.ip);
    const others = allEncapIps(topo).filter((ip) => ip !== self);
    policies.push({ proto: 'udp', port: TUNNEL_PORTS[encap.type], from: others, why: `${encap.type} tunnels: the other chassis' encap IPs only` });
  }
  return policies;
}

/** The host's own addresses (its addresses and its encap IP): its own probes and clients come from these. */
export function ownAddresses(ht: HostTopology): string[] {
  return sortedUnique([...ht.host.addresses, ...(ht.host.encap !== undefined ? [ht.host.encap.ip] : [])].map(canonicalIp));
}

/** The manifest's list: what to open; a restricted port without any peer is not opened at all. */
export function firewallRules(policies: PortPolicy[]): FirewallRule[] {
  return policies.flatMap((p) => (p.from !== undefined && p.from.length === 0 ? [] : [{ proto: p.proto, port: p.port, from: p.from ?? [], why: p.why }]));
}

/**
 * Every address here is an IP the inventory validated, in canonicalIp's form, so a colon alone
 * tells the family: isIP on each would cost a million calls for 1,000 hosts (every worker's
 * file lists every other chassis).
 */
const v4 = (addrs: readonly string[]): string => addrs.filter((a) => !a.includes(':')).join(', ');
const v6 = (addrs: readonly string[]): string => addrs.filter((a) => a.includes(':')).join(', ');

export function renderNftables(site: string, host: string, policies: PortPolicy[], own: readonly string[], root = '/'): string {
  const restricted = policies.filter((p) => p.from !== undefined);
  // One line per protocol: `tcp dport { 6643, 6644 }` for a central, `udp dport 6081` for a chassis.
  const self = (['tcp', 'udp'] as const).flatMap((proto) => {
    const ports = [...new Set(restricted.filter((p) => p.proto === proto).map((p) => p.port))].sort((a, b) => a - b);
    if (ports.length === 0) return [];
    return [{ proto, ports: ports.length === 1 ? String(ports[0]) : `{ ${ports.join(', ')} }`, v4: v4(own), v6: v6(own) }];
  });
  return hostTemplate('firewall.nft.hbs')({
    site,
    host,
    path: hostRenderedPaths(root).firewall,
    restricted: restricted.length > 0,
    self,
    rules: policies.map((p) => ({
      proto: p.proto,
      port: p.port,
      why: p.why,
      any: p.from === undefined,
      v4: v4(p.from ?? []),
      v6: v6(p.from ?? []),
    })),
  });
}

/** A central's RAFT loopback listeners (its own and its tunnels to the other centrals): root only. */
export function renderLocalAccess(site: string, host: string, raftPorts: readonly number[], root = '/'): string {
  return hostTemplate('local-access.nft.hbs')({ site, host, path: hostRenderedPaths(root).localAccess, ports: [...new Set(raftPorts)].sort((a, b) => a - b).join(', ') });
}

/** The tmpfiles.d line that makes the OVSDB socket directory (root only) at boot. */
export function renderTmpfiles(site: string, host: string, root = '/'): string {
  return hostTemplate('tmpfiles.conf.hbs')({ site, host, ovsdbDir: hostPaths(root).ovsdbDir });
}
