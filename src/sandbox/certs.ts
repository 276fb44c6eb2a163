/**
 * The sandbox's CA, from ovn-deploy's own PKI. Leaf certificates are the hosts' business, as on a
 * real site: each host's apply makes its key and CSR and keeps a certificate that is still good
 * (a second `up` must not change what the running stunnels serve); `up` signs what they ask for.
 */
import { readFileSync, unlinkSync } from 'node:fs';
import type { Inventory } from '../inventory/types.js';
import { pkiPaths } from '../paths.js';
import { initPki } from '../pki/ca.js';
import { crlNextUpdate } from '../pki/crl-next-update.js';
import type { SandboxPlan } from './plan.js';
import { isAlive } from '../supervisor/proc.js';
import { SANDBOX_CA_KEY_BITS } from './early-ca.js';

export { SANDBOX_CA_KEY_BITS } from './early-ca.js';
/** Refresh the CRL well before nextUpdate: stunnel rejects every client once it is past. */
const CRL_REFRESH_DAYS = 7;

export interface PkiOutcome {
  caCreated: boolean;
  issued: string[];
  reused: string[];
  /** The CRL was rewritten: running stunnels must reload to read it. */
  crlRefreshed: boolean;
}

/**
 * A PKI lock file whose pid is dead (an `up` killed while issuing) is removed at once: the PKI
 * would otherwise wait for it to age (30 s). Only a dead holder's lock is touched.
 */
export function clearDeadPkiLock(dir: string): boolean {
  const lock = pkiPaths(dir).lock;
  const holder = Number.parseInt(readText(lock) ?? '', 10);
  if (!Number.isInteger(holder) || holder <= 0 || isAlive(holder)) return false;
  try {
    unlinkSync(lock);
    return true;
  } catch {
    return false;
  }
}

/**
 * The sandbox's CA and a fresh CRL. Leaf certificates are not made here: every host makes its
 * key and CSR itself (apply) and `up` signs the CSR, as `deploy` does for a real site.
 */
export async function ensureSandboxCa(plan: SandboxPlan, inv: Inventory, now = new Date()): Promise<PkiOutcome> {
  const dir = plan.paths.pki;
  clearDeadPkiLock(dir);
  const init = await initPki(dir, {
    keyBits: SANDBOX_CA_KEY_BITS,
    validityDays: inv.certificates.caValidityDays,
    commonName: `sandbox ${plan.id}`,
  });
  const outcome: PkiOutcome = { caCreated: init.created, issued: [], reused: [], crlRefreshed: false };
  // asn1js alone: @peculiar/x509 loads only when the CRL is rewritten.
  const crl = readText(pkiPaths(dir).crl);
  const nextUpdate = crl === undefined ? undefined : nextUpdateOf(crl);
  if (nextUpdate === undefined || nextUpdate.getTime() - now.getTime() < CRL_REFRESH_DAYS * 86_400_000) {
    const { refreshCrl } = await import('../pki/revoke.js');
    await refreshCrl(dir);
    outcome.crlRefreshed = !init.created;
  }
  return outcome;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** A CRL that cannot be read is rewritten from the index, like a missing one. */
function nextUpdateOf(pem: string): Date | undefined {
  try {
    return crlNextUpdate(pem);
  } catch {
    return undefined;
  }
}
