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
import { hostTopology, type SiteTopology } from '../site/topology.js';
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
