/**
 * The ports a host must accept, and from whom: the OVSDB TLS ports from anywhere (CMS, workers),
 * the RAFT ports only from the other centrals, the tunnel port only from the other chassis.
 * `firewall` in the manifest lists what to open; the nftables file also drops what is restricted.
 */
import { isIP } from 'node:net';
import type { FirewallRule } from '../bundle/manifest.js';
import type { Inventory } from '../inventory/types.js';
import { hostRenderedPaths } from '../paths.js';
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
    const others = sortedUnique(topo.workerEncapIps.map((w) => canonicalIp(w.ip)).filter((ip) => ip !== self));
    policies.push({ proto: 'udp', port: TUNNEL_PORTS[encap.type], from: others, why: `${encap.type} tunnels: the other chassis' encap IPs only` });
  }
  return policies;
}

/** The manifest's list: what to open; a restricted port without any peer is not opened at all. */
export function firewallRules(policies: PortPolicy[]): FirewallRule[] {
  return policies.flatMap((p) => (p.from !== undefined && p.from.length === 0 ? [] : [{ proto: p.proto, port: p.port, from: p.from ?? [], why: p.why }]));
}

export function renderNftables(site: string, host: string, policies: PortPolicy[]): string {
  return hostTemplate('firewall.nft.hbs')({
    site,
    host,
    path: hostRenderedPaths().firewall,
    rules: policies.map((p) => ({
      proto: p.proto,
      port: p.port,
      why: p.why,
      any: p.from === undefined,
      v4: (p.from ?? []).filter((a) => isIP(a) === 4).join(', '),
      v6: (p.from ?? []).filter((a) => isIP(a) === 6).join(', '),
    })),
  });
}
