/**
 * Undoing a renewal whose rollout failed (`certs rotate` restored the previous files): the index
 * must again name the previous certificate as the current one, and the abandoned certificate is
 * revoked, because a certificate signed by the CA but never put to use should not stay valid.
 */
import { ExitError } from '../errors.js';
import { writeFileAtomic } from '../fsx.js';
import { pkiPaths } from '../paths.js';
import { loadCa } from './ca.js';
import { readIndex, writeIndex } from './cert-index.js';
import { writeCrl } from './crl.js';
import { withPkiLock } from './lock.js';
import { normalizeSerial } from './rollover.js';
import type { IndexEntry } from './types.js';

export interface ReinstateRequest {
  name: string;
  /** The certificate that is in use again. */
  previousSerial: string;
  /** The certificate whose rollout failed. */
  abandonedSerial: string;
  /** The previous certificate itself: certs/NAME.crt holds it again (signing wrote the abandoned one there). */
  previousCertPem?: string;
  now?: Date;
}

/** Returns the entries as written. Re-signs the CRL (it now lists the abandoned serial). */
export async function reinstateCertificate(dir: string, req: ReinstateRequest): Promise<IndexEntry[]> {
  const now = req.now ?? new Date();
  const same = (a: string, b: string) => normalizeSerial(a) === normalizeSerial(b);
  return withPkiLock(dir, async () => {
    const entries = await readIndex(dir);
    const abandoned = entries.find((e) => e.name === req.name && same(e.serial, req.abandonedSerial));
    const previous = entries.find((e) => e.name === req.name && same(e.serial, req.previousSerial));
    if (abandoned === undefined) throw new ExitError(`no certificate ${req.abandonedSerial} named ${req.name} in ${dir}`);
    if (abandoned.status !== 'revoked') {
      abandoned.status = 'revoked';
      abandoned.revokedAt = now.toISOString();
      abandoned.revocationReason = 'superseded';
    }
    // A previous certificate that was revoked meanwhile stays revoked.
    if (previous !== undefined && previous.status === 'superseded') previous.status = 'valid';
    await writeIndex(dir, entries);
    if (req.previousCertPem !== undefined) await writeFileAtomic(pkiPaths(dir).cert(req.name), req.previousCertPem, 0o644);
    await writeCrl(dir, await loadCa(dir), entries, { now });
    return entries;
  });
}
