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

/**
 * A list joined with `sep` once, from which the joined list without any one entry is two
 * slices: a worker's peers are the site's chassis minus itself, and joining ~1,000 addresses
 * anew for every host (in its manifest and in its nftables file) was most of a large site's render.
 */
class JoinedList {
  private readonly text: string;
  /** Where entry i starts in `text`; one more at the end (text.length + sep.length). */
  private readonly starts: number[] = [];
  constructor(
    entries: readonly string[],
    private readonly sep: string,
  ) {
    let at = 0;
    for (const e of entries) {
      this.starts.push(at);
      at += e.length + sep.length;
    }
    this.starts.push(at);
    this.text = entries.join(sep);
  }

  /** The joined list without entry i (undefined: every entry). */
  without(i: number | undefined): string {
    const n = this.starts.length - 1;
    if (i === undefined) return this.text;
    if (n === 1) return '';
    const start = this.starts[i] ?? 0;
    const next = this.starts[i + 1] ?? 0;
    // The last entry takes the separator before it along; any other, the one after it.
    return i === n - 1 ? this.text.slice(0, start - this.sep.length) : this.text.slice(0, start) + this.text.slice(next);
  }
}

interface PeerRenderings {
  /** The JSON array, as the manifest writes a list of plain values (`["a", "b"]`). */
  json: string;
  /** The IPv4 and the IPv6 addresses, `, `-separated, as the nftables sets list them. */
  v4: string;
  v6: string;
}

/** Each worker's peer list (the array in its policy) -> its renderings, cut from the site's. */
const renderingsOf = new WeakMap<readonly string[], PeerRenderings>();

/** The manifest's JSON for a peer list of portPolicies, when it is one (else undefined: format it). */
export function peerListJson(list: readonly unknown[]): string | undefined {
  return renderingsOf.get(list as readonly string[])?.json;
}

interface SitePeers {
  ips: string[];
  index: Map<string, number>;
  json: JoinedList;
  v4: JoinedList;
  v6: JoinedList;
  /** Position of ips[i] in the v4 or the v6 list. */
  familyIndex: number[];
}

/** Every chassis' encap IP, canonical, sorted, once per site: each worker's list is this minus itself. */
const peersOf = new WeakMap<SiteTopology, SitePeers>();
function sitePeers(topo: SiteTopology): SitePeers {
  let peers = peersOf.get(topo);
  if (peers === undefined) {
    const ips = sortedUnique(topo.workerEncapIps.map((w) => canonicalIp(w.ip)));
    const v4s: string[] = [];
    const v6s: string[] = [];
    const familyIndex = ips.map((ip) => (ip.includes(':') ? v6s.push(ip) : v4s.push(ip)) - 1);
    peers = { ips, index: new Map(ips.map((ip, i) => [ip, i])), json: new JoinedList(ips.map((ip) => JSON.stringify(ip)), ', '), v4: new JoinedList(v4s, ', '), v6: new JoinedList(v6s, ', '), familyIndex };
    peersOf.set(topo, peers);
  }
  return peers;
}

/** The site's chassis without `self`, with its renderings registered for the manifest and the nftables file. */
function peersWithout(topo: SiteTopology, self: string): string[] {
  const peers = sitePeers(topo);
  const i = peers.index.get(self);
  if (i === undefined) return [...peers.ips];
  const list = [...peers.ips.slice(0, i), ...peers.ips.slice(i + 1)];
  const v6 = self.includes(':');
  const at = peers.familyIndex[i];
  renderingsOf.set(list, {
    json: `[${peers.json.without(i)}]`,
    v4: peers.v4.without(v6 ? undefined : at),
    v6: peers.v6.without(v6 ? at : undefined),
  });
  return list;
}

/**
 * Every address (and encap IP) of the site's other hosts: who may reach a native central's chassis
 * SB port. Native TLS admits any certificate the CA ever issued (no CRL, no name list), so the
 * source address is what keeps a certificate of a host no longer in the site out.
 */
function siteAddresses(inv: Inventory, ht: HostTopology): string[] {
  return sortedUnique(inv.hosts.filter((h) => h !== ht.host).flatMap((h) => [...h.addresses, ...(h.encap === undefined ? [] : [h.encap.ip])].map(canonicalIp)));
}

export function portPolicies(inv: Inventory, topo: SiteTopology, ht: HostTopology): PortPolicy[] {
  const policies: PortPolicy[] = [];
  if (ht.isCentral) {
    const peers = sortedUnique(ht.remoteCentrals.flatMap((c) => c.host.addresses.map(canonicalIp)));
    if (inv.tls.mode === 'native') {
      // ovsdb-server's own TLS admits any certificate of the site CA: the addresses of the hosts
      // that may use the NB and the SB without a role are the only other gate.
      const admins = sortedUnique([...ht.remoteCentrals, ...topo.cmsHosts.map((host) => ({ host }))].flatMap((c) => c.host.addresses.map(canonicalIp)));
      policies.push(
        { proto: 'tcp', port: inv.ports.nb, from: admins, why: 'OVN Northbound over native TLS: the other centrals (ovn-northd) and cms hosts only' },
        { proto: 'tcp', port: inv.ports.sb, from: siteAddresses(inv, ht), why: 'OVN Southbound over native TLS, RBAC role ovn-controller: the other hosts of the site only' },
        { proto: 'tcp', port: inv.tls.sbAdminPort, from: admins, why: 'OVN Southbound over native TLS without a role: the other centrals (ovn-northd) and cms hosts only' },
        { proto: 'tcp', port: inv.ports.nbRaft, from: peers, why: 'Northbound RAFT over native TLS: the other centrals only' },
        { proto: 'tcp', port: inv.ports.sbRaft, from: peers, why: 'Southbound RAFT over native TLS: the other centrals only' },
      );
    } else {
      policies.push(
      { proto: 'tcp', port: inv.ports.nb, why: 'OVN Northbound over TLS (stunnel): CMS, ovn-northd and admin tools' },
      { proto: 'tcp', port: inv.ports.sb, why: 'OVN Southbound over TLS (stunnel): ovn-controller on every chassis, ovn-northd' },
      { proto: 'tcp', port: inv.ports.nbRaft, from: peers, why: 'Northbound RAFT over TLS: the other centrals only' },
      { proto: 'tcp', port: inv.ports.sbRaft, from: peers, why: 'Southbound RAFT over TLS: the other centrals only' },
      );
    }
  }
  const encap = ht.host.encap;
  if (ht.host.roles.includes('worker') && encap !== undefined) {
    const others = peersWithout(topo, canonicalIp(encap.ip));
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
const v4 = (addrs: readonly string[]): string => renderingsOf.get(addrs)?.v4 ?? addrs.filter((a) => !a.includes(':')).join(', ');
const v6 = (addrs: readonly string[]): string => renderingsOf.get(addrs)?.v6 ?? addrs.filter((a) => a.includes(':')).join(', ');

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
