/**
 * Whether a chassis's metadata agent is registered: the agent writes `neutron:ovn-metadata-id`
 * into its chassis's Chassis_Private external_ids when it starts (and again when ovn-controller
 * recreates the row). ovn-controller removes the row on a clean exit, so a registration can
 * vanish under a running agent: status checks it, not just the process.
 */
import type { Sbctl } from '../tools/ovn.js';
import { str, type OvsdbRow } from '../tools/ovsdb-json.js';

export const METADATA_ID_KEY = 'neutron:ovn-metadata-id';

export interface MetadataRegistration {
  chassis: string;
  /** The agent's id, or null when the chassis has no registration (or no Chassis_Private row). */
  agentId: string | null;
}

/** Pure: registrations of `chassis` from Chassis_Private rows (columns name, external_ids). */
export function registrationsFrom(rows: readonly OvsdbRow[], chassis: readonly string[]): MetadataRegistration[] {
  return chassis.map((name) => {
    const row = rows.find((r) => str(r, 'name') === name);
    const ids = row?.external_ids;
    const id = ids !== null && typeof ids === 'object' && !Array.isArray(ids) ? ids[METADATA_ID_KEY] : undefined;
    return { chassis: name, agentId: typeof id === 'string' && id !== '' ? id : null };
  });
}

export async function metadataRegistrations(sbctl: Sbctl, chassis: readonly string[], timeoutSec = 3): Promise<MetadataRegistration[]> {
  const rows = await sbctl.list('Chassis_Private', ['name', 'external_ids'], { timeoutSec });
  return registrationsFrom(rows, chassis);
}
