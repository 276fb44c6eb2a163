/**
 * What a site's RAFT clusters should look like, from the inventory alone: every central is a
 * member of both clusters at the cluster address render gives it (src/site/topology.ts: stunnel
 * mode `tcp:L(C):<loopback raft port>`, L(C) the central's stable loopback address; native mode
 * `ssl:<its address>:<raft port>`). Status maps the addresses a cluster reports back to host
 * names with it.
 */
import type { Inventory } from '../inventory/types.js';
import { hostPaths, type HostPaths } from '../paths.js';
import { centralLoopback, hostTopology, siteTopology } from '../site/topology.js';

export { centralLoopback };

export type RaftDbName = 'OVN_Northbound' | 'OVN_Southbound';
export const RAFT_DBS: readonly RaftDbName[] = ['OVN_Northbound', 'OVN_Southbound'];

export interface ExpectedMember {
  host: string;
  address: string;
}

export function expectedMembers(inv: Inventory, db: RaftDbName): ExpectedMember[] {
  const topo = siteTopology(inv);
  return topo.centrals.map((c) => {
    const raft = hostTopology(inv, topo, c.host.name).raft;
    if (raft === undefined) throw new Error(`${c.host.name}: a central without RAFT membership`);
    return { host: c.host.name, address: (db === 'OVN_Northbound' ? raft.nb : raft.sb).localAddress };
  });
}

/** The control socket of a central's database server (by default at its distribution path). */
export function dbCtl(db: RaftDbName, p: HostPaths = hostPaths()): string {
  return db === 'OVN_Northbound' ? p.ovn.nbCtl : p.ovn.sbCtl;
}
