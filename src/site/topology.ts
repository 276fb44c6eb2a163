/**
 * How the hosts of a site reach each other (pure). Every central C's NB and SB are reachable on
 * every host that may use them as the unix sockets `ovsdbSocket(C, nb|sb)` in a root-only
 * directory: on C itself ovsdb-server listens there, elsewhere a local stunnel client accepts there
 * and carries the connection over TLS to C's stunnel server. So the remote lists are the same
 * strings on every host, and no local user but root reaches a database through a tunnel.
 * RAFT cluster addresses must be TCP: C's RAFT ports live on its loopback address L(C), and
 * `local-access.nft` keeps every user but root off them.
 *
 * Who gets what (the central's stunnel server checks the client certificate's names): NB for
 * centrals and `cms` hosts only, SB for every host of the site, RAFT for centrals only.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { InputError, type Problem } from '../errors.js';
import type { Host, Inventory, Ports, TlsSettings } from '../inventory/types.js';
import { hostPaths, stunnelFiles } from '../paths.js';
import { bracketHost, canonicalIp } from '../stunnel/endpoint.js';
import type { ClientService, ServerService, StunnelConfigSpec, StunnelTlsFiles } from '../stunnel/types.js';
import { sslRemote } from './native-tls.js';

/** The four OVSDB endpoints a central serves; keys of `ports` and `loopbackPorts`. */
export const CENTRAL_ENDPOINTS = ['nb', 'sb', 'nbRaft', 'sbRaft'] as const;
export type CentralEndpoint = (typeof CENTRAL_ENDPOINTS)[number];

/**
 * L(C) = 127.a.b.c from sha256(`${site}/${name}`): stable when centrals are added or removed
 * (unlike an index), never 127.0.x.x (127.0.0.1 is everybody's) and never .255 or .0 at the end.
 */
export function centralLoopback(site: string, name: string): string {
  const d = createHash('sha256').update(`${site}/${name}`).digest();
  const a = 1 + ((d[0] ?? 0) % 254);
  const b = d[1] ?? 0;
  const c = 1 + ((d[2] ?? 0) % 254);
  return `127.${a}.${b}.${c}`;
}

export interface CentralNode {
  host: Host;
  /** Index in inv.hosts (for error paths). */
  index: number;
  loopback: string;
  /** The address its stunnel server listens on and every peer connects to. */
  address: string;
}

export interface RaftMembership {
  /** `tcp:L(C):loopbackPorts.nbRaft`. */
  localAddress: string;
  /** The other centrals' RAFT addresses, in inventory order. */
  peers: string[];
  /** The other centrals' client remotes of the same database (`unix:ovsdbSocket(D, nb)`), in inventory order. */
  peerRemotes: string[];
}

export interface SiteTopology {
  site: string;
  tls: TlsSettings;
  ports: Ports;
  /** In inventory order; the first creates the clusters. */
  centrals: CentralNode[];
  bootstrap: string;
  /** Hosts admitted to the NB besides the centrals (role `cms`), in inventory order. */
  cmsHosts: Host[];
  /** Encap IPs of all workers, in inventory order (firewall: tunnels only from other chassis). */
  workerEncapIps: { host: string; ip: string }[];
}

/** Everything one host needs from the topology. */
export interface HostTopology {
  host: Host;
  isCentral: boolean;
  /** This host's own central node, when it is a central. */
  central?: CentralNode;
  /** The centrals this host reaches through its stunnel client (all but itself). */
  remoteCentrals: CentralNode[];
  /** Endpoints tunnelled to each remote central: sb on a chassis, nb+sb on a cms host, all four on a central. */
  clientEndpoints: readonly CentralEndpoint[];
  raft?: { nb: RaftMembership; sb: RaftMembership };
}

export function siteTopology(inv: Inventory): SiteTopology {
  const problems: Problem[] = [];
  const byLoopback = new Map<string, CentralNode>();
  const centrals: CentralNode[] = [];
  inv.hosts.forEach((host, index) => {
    if (!host.roles.includes('central')) return;
    const address = host.addresses[0];
    if (address === undefined) {
      problems.push({ path: `hosts[${index}].addresses`, message: `central ${host.name} needs an address for its TLS listeners` });
      return;
    }
    const node: CentralNode = { host, index, loopback: centralLoopback(inv.site, host.name), address };
    const other = byLoopback.get(node.loopback);
    if (other !== undefined) {
      problems.push({
        path: `hosts[${index}].name`,
        message:
          `central ${host.name} would get the loopback address ${node.loopback}, which central ${other.host.name} ` +
          `(hosts[${other.index}]) already has (both derive from sha256 of "site/name"): rename one of them`,
      });
      return;
    }
    byLoopback.set(node.loopback, node);
    centrals.push(node);
  });
  const first = centrals[0];
  if (first === undefined && problems.length === 0) problems.push({ path: 'hosts', message: 'no host has the central role' });
  if (problems.length > 0 || first === undefined) throw new InputError(problems);
  return {
    site: inv.site,
    tls: inv.tls,
    ports: inv.ports,
    centrals,
    bootstrap: first.host.name,
    cmsHosts: inv.hosts.filter((h) => h.roles.includes('cms') && !h.roles.includes('central')),
    workerEncapIps: inv.hosts.flatMap((h) => (h.roles.includes('worker') && h.encap !== undefined ? [{ host: h.name, ip: h.encap.ip }] : [])),
  };
}

/**
 * A host's remote list of that database, comma-separated, one entry per central C. stunnel mode:
 * `unix:ovsdbSocket(C, db)`. Native mode: `ssl:C:port`, for the SB the chassis' port (RBAC)
 * unless `admin` (ovn-northd, cms hosts: the port without a role).
 */
export function ovsdbRemotes(topo: SiteTopology, db: 'nb' | 'sb', root = '/', admin = false): string {
  if (topo.tls.mode === 'native') {
    const port = db === 'nb' ? topo.ports.nb : admin ? topo.tls.sbAdminPort : topo.ports.sb;
    return topo.centrals.map((c) => sslRemote(c, port)).join(',');
  }
  const hp = hostPaths(root);
  return topo.centrals.map((c) => `unix:${hp.ovsdbSocket(c.host.name, db)}`).join(',');
}

/** peerRemotes name host paths: apply resolves a `unix:` remote below its root. */
function membership(inv: Inventory, topo: SiteTopology, self: CentralNode, key: 'nbRaft' | 'sbRaft'): RaftMembership {
  const others = topo.centrals.filter((c) => c !== self);
  const db = key === 'nbRaft' ? 'nb' : 'sb';
  if (topo.tls.mode === 'native') {
    // ovsdb-server's own TLS on the central's address, peers asked on their admin ports.
    const client = db === 'nb' ? inv.ports.nb : inv.tls.sbAdminPort;
    return { localAddress: sslRemote(self, inv.ports[key]), peers: others.map((c) => sslRemote(c, inv.ports[key])), peerRemotes: others.map((c) => sslRemote(c, client)) };
  }
  const addr = (c: CentralNode, port: number) => `tcp:${c.loopback}:${port}`;
  const hp = hostPaths();
  return {
    localAddress: addr(self, inv.loopbackPorts[key]),
    peers: others.map((c) => addr(c, inv.loopbackPorts[key])),
    peerRemotes: others.map((c) => `unix:${hp.ovsdbSocket(c.host.name, db)}`),
  };
}

/** Hosts by name, once per inventory: a render asks for every host's topology (a find each was quadratic). */
const hostsByName = new WeakMap<Inventory, Map<string, Host>>();

export function hostTopology(inv: Inventory, topo: SiteTopology, hostName: string): HostTopology {
  let byName = hostsByName.get(inv);
  if (byName === undefined) {
    byName = new Map(inv.hosts.map((h) => [h.name, h]));
    hostsByName.set(inv, byName);
  }
  const host = byName.get(hostName);
  if (host === undefined) throw new InputError([{ path: 'hosts', message: `no host named ${JSON.stringify(hostName)} in site ${inv.site}` }]);
  const central = topo.centrals.find((c) => c.host === host);
  const remoteCentrals = topo.centrals.filter((c) => c.host !== host);
  return {
    host,
    isCentral: central !== undefined,
    ...(central === undefined ? {} : { central, raft: { nb: membership(inv, topo, central, 'nbRaft'), sb: membership(inv, topo, central, 'sbRaft') } }),
    remoteCentrals,
    // A chassis needs only the SB; a cms host the NB too; a central its peers' RAFT ports as well.
    clientEndpoints: central !== undefined ? CENTRAL_ENDPOINTS : host.roles.includes('cms') ? ['nb', 'sb'] : ['sb'],
  };
}

/** The names a central's certificate carries that stunnel can check: its host name and DNS names. */
function certificateNames(h: Host): { checkHost: string[]; checkIP: string[] } {
  return { checkHost: [h.name, ...h.dnsNames.filter((n) => isIP(n) === 0)], checkIP: h.addresses.map(canonicalIp) };
}

/** stunnel's files on a real host: the host's one certificate for both sides. */
export function hostStunnelTls(root = '/'): StunnelTlsFiles {
  const pki = hostPaths(root).pki;
  return { cert: pki.cert, key: pki.key, caFile: pki.caBundle, crlFile: pki.crl };
}

/**
 * Names admitted per endpoint: by the certificate's names, on top of the CA chain and CRL check.
 * Sorted, so that reordering hosts in the inventory changes no central's file.
 */
function admitted(inv: Inventory, topo: SiteTopology, key: CentralEndpoint): string[] {
  const centrals = topo.centrals.map((c) => c.host.name);
  const names = key === 'nbRaft' || key === 'sbRaft' ? centrals : key === 'nb' ? [...centrals, ...topo.cmsHosts.map((h) => h.name)] : inv.hosts.map((h) => h.name);
  return [...new Set(names)].sort();
}

/**
 * The central's TLS server: each endpoint's TLS port on its primary address -> ovsdb-server's
 * unix socket (NB, SB) or its RAFT port on L(C). Each port admits only the certificates named
 * after the hosts of its role (`admitted`): a worker's certificate (same CA) gets neither the NB
 * nor RAFT, and a certificate the CA issued outside the site gets nothing.
 */
export function stunnelServerSpec(inv: Inventory, topo: SiteTopology, ht: HostTopology, tls: StunnelTlsFiles, root = '/'): StunnelConfigSpec | undefined {
  const self = ht.central;
  if (self === undefined || inv.tls.mode === 'native') return undefined;
  const hp = hostPaths(root);
  const files = stunnelFiles('server', hp);
  const services: ServerService[] = CENTRAL_ENDPOINTS.map((key) => ({
    name: key,
    accept: `${bracketHost(self.address)}:${inv.ports[key]}`,
    connect: key === 'nb' || key === 'sb' ? hp.ovsdbSocket(self.host.name, key) : `${self.loopback}:${inv.loopbackPorts[key]}`,
    checkHost: admitted(inv, topo, key),
  }));
  return { kind: 'server', site: inv.site, host: ht.host.name, tls, pidFile: files.pidFile, logFile: files.logFile, foreground: true, services };
}

/**
 * Local listeners for every remote central D and endpoint, each tunnelled to D only: NB and SB on
 * D's unix sockets in the root-only socket directory, RAFT on L(D).
 */
export function stunnelClientSpec(inv: Inventory, ht: HostTopology, tls: StunnelTlsFiles, root = '/'): StunnelConfigSpec | undefined {
  if (ht.remoteCentrals.length === 0 || inv.tls.mode === 'native') return undefined;
  const hp = hostPaths(root);
  const files = stunnelFiles('client', hp);
  const services: ClientService[] = ht.remoteCentrals.flatMap((d) =>
    ht.clientEndpoints.map((key) => ({
      name: `${key}-${d.host.name}`,
      accept: key === 'nb' || key === 'sb' ? hp.ovsdbSocket(d.host.name, key) : `${d.loopback}:${inv.loopbackPorts[key]}`,
      connect: [`${bracketHost(d.address)}:${inv.ports[key]}`],
      ...certificateNames(d.host),
    })),
  );
  return { kind: 'client', site: inv.site, host: ht.host.name, tls, pidFile: files.pidFile, logFile: files.logFile, foreground: true, services };
}
