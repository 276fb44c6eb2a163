/**
 * What a site's RAFT clusters should look like, from the inventory alone: every central is a
 * member of both clusters at `tcp:L(C):<loopback raft port>`, L(C) being the central's stable
 * loopback address (src/site/topology.ts, the same function render uses). Status maps the
 * addresses a cluster reports back to host names with it.
 */
import type { Inventory } from '../inventory/types.js';
import { hostsWithRole } from '../inventory/types.js';
import { hostPaths } from '../paths.js';
import { centralLoopback } from '../site/topology.js';

export { centralLoopback };

export type RaftDbName = 'OVN_Northbound' | 'OVN_Southbound';
export const RAFT_DBS: readonly RaftDbName[] = ['OVN_Northbound', 'OVN_Southbound'];

export interface ExpectedMember {
  host: string;
  address: string;
}

export function expectedMembers(inv: Inventory, db: RaftDbName): ExpectedMember[] {
  const port = db === 'OVN_Northbound' ? inv.loopbackPorts.nbRaft : inv.loopbackPorts.sbRaft;
  return hostsWithRole(inv, 'central').map((c) => ({ host: c.name, address: `tcp:${centralLoopback(inv.site, c.name)}:${port}` }));
}

/** The control socket of a central's database server (distribution path). */
export function dbCtl(db: RaftDbName): string {
  const p = hostPaths();
  return db === 'OVN_Northbound' ? p.ovn.nbCtl : p.ovn.sbCtl;
}
