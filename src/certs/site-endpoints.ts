/**
 * The TLS endpoints of a site, from its inventory and topology: every central's stunnel server
 * (its NB and SB listeners on its address) and every host's stunnel client (a tunnel to a remote
 * central's database: the SB on a chassis, the NB on a cms host or a central). One host, one
 * certificate: a central's two endpoints share its files. The sandbox and a site over SSH differ
 * only in where a host's files are (its root) and which namespace its probes run in.
 */
import type { Host, Inventory } from '../inventory/types.js';
import type { HostPaths } from '../paths.js';
import { certificateRole, certificateSans } from '../render/host-bundle.js';
import { SERVICE } from '../render/services.js';
import { stunnelFiles } from '../paths.js';
import { nativePort } from '../site/native-tls.js';
import { hostTopology, ovsdbRemotes, type HostTopology, type SiteTopology } from '../site/topology.js';
import type { TlsEndpoint } from './deployment.js';

export interface HostPlace {
  /** The host's paths as its stunnel sees them (hostPaths(root)). */
  paths: HostPaths;
  /** The namespace its probes run in (the sandbox); none on a real host. */
  netns?: string;
}

const DATABASE = { nb: 'OVN_Northbound', sb: 'OVN_Southbound' } as const;

export function siteEndpoints(inv: Inventory, topo: SiteTopology, place: (host: Host) => HostPlace): TlsEndpoint[] {
  const out: TlsEndpoint[] = [];
  for (const host of inv.hosts) {
    const ht = hostTopology(inv, topo, host.name);
    const { paths, netns } = place(host);
    const ns = netns === undefined ? {} : { netns };
    const base = {
      host: host.name,
      role: certificateRole(ht),
      certName: host.name,
      sans: certificateSans(host),
      certPath: paths.pki.cert,
      keyPath: paths.pki.key,
      caFile: paths.pki.caBundle,
      crlFile: paths.pki.crl,
    };
    if (inv.tls.mode === 'native') {
      out.push(...nativeEndpoints(inv, topo, ht, base, paths, ns));
      continue;
    }
    if (ht.central !== undefined) {
      const f = stunnelFiles('server', paths);
      const address = ht.central.address;
      out.push({
        ...base,
        stunnel: {
          serviceName: SERVICE.stunnelServer,
          pidFile: f.pidFile,
          logFile: f.logFile,
          side: 'server',
          ...ns,
          listeners: (['nb', 'sb'] as const).map((db) => ({ ...ns, host: address, port: inv.ports[db], db })),
        },
      });
    }
    const remote = ht.remoteCentrals[0];
    if (remote !== undefined) {
      const f = stunnelFiles('client', paths);
      // What the host uses through the tunnel: a chassis the SB (ovn-controller), the others the NB.
      const db = ht.clientEndpoints.includes('nb') ? 'nb' : 'sb';
      out.push({
        ...base,
        stunnel: {
          serviceName: SERVICE.stunnelClient,
          pidFile: f.pidFile,
          logFile: f.logFile,
          side: 'client',
          ...ns,
          listeners: [],
          // A unix socket below the host's root: any namespace of the machine reaches it, so no netns.
          tunnelProbe: {
            remote: `unix:${paths.ovsdbSocket(remote.host.name, db)}`,
            database: DATABASE[db],
            ...(ht.remoteCentrals.length > 1 ? { alternates: ht.remoteCentrals.slice(1).map((c) => `unix:${paths.ovsdbSocket(c.host.name, db)}`) } : {}),
          },
        },
      });
    }
  }
  return out;
}

/**
 * Native TLS: a central's ovsdb-servers serve its certificate on the NB, the chassis' SB and the
 * admin SB; every other host presents its certificate as a client (ovn-controller on the SB, a
 * cms host on the NB), proven by a new connection with its files. The daemons re-read changed
 * files themselves: the log is the service's, and nothing is reloaded.
 */
function nativeEndpoints(inv: Inventory, topo: SiteTopology, ht: HostTopology, base: Omit<TlsEndpoint, 'stunnel'>, paths: HostPaths, ns: { netns?: string }): TlsEndpoint[] {
  if (ht.central !== undefined) {
    const address = ht.central.address;
    const listeners = (['nb', 'sb', 'sbAdmin'] as const).map((l) => ({ ...ns, host: address, port: nativePort(inv, l), db: l === 'nb' ? ('nb' as const) : ('sb' as const) }));
    return [{ ...base, stunnel: { native: true, serviceName: SERVICE.sbOvsdb, pidFile: paths.ovn.sbPid, logFile: paths.serviceLog(SERVICE.sbOvsdb), side: 'server', ...ns, listeners } }];
  }
  const db = ht.clientEndpoints.includes('nb') ? 'nb' : 'sb';
  const [first, ...rest] = ovsdbRemotes(topo, db).split(',');
  if (first === undefined) return [];
  const service = db === 'sb' && ht.host.roles.includes('worker') ? SERVICE.controller : 'ovsdb clients';
  return [
    {
      ...base,
      stunnel: {
        native: true,
        serviceName: service,
        pidFile: paths.ovn.controllerPid,
        logFile: paths.serviceLog(SERVICE.controller),
        side: 'client',
        ...ns,
        listeners: [],
        tunnelProbe: { ...ns, remote: first, database: DATABASE[db], ...(rest.length > 0 ? { alternates: rest } : {}), tls: { key: paths.pki.key, cert: paths.pki.cert, caCert: paths.pki.caBundle } },
      },
    },
  ];
}
