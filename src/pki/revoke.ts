/**
 * Revocation and CRL refresh. Both re-sign ca/crl.pem; revocation also marks the index.
 */
import { inputError, type Problem } from '../errors.js';
import { loadCa } from './ca.js';
import { readIndex, writeIndex } from './cert-index.js';
import { writeCrl } from './crl.js';
import { withPkiLock } from './lock.js';
import { REVOCATION_REASONS, type IndexEntry, type RevocationReason } from './types.js';
import { checkName, checkPositiveInt, throwIfProblems } from './validate.js';

/**
 * Revokes every certificate of `name` that still authenticates: the current one and superseded
 * ones (a superseded certificate stays cryptographically valid until it expires). Returns the
 * entries revoked now; an empty list when all were revoked already.
 */
export async function revokeCertificate(
  dir: string,
  name: string,
  opts: { now?: Date; reason?: RevocationReason } = {},
): Promise<IndexEntry[]> {
  const problems: Problem[] = [];
  checkName(name, 'name', problems);
  if (opts.reason !== undefined && !Object.hasOwn(REVOCATION_REASONS, opts.reason)) {
    problems.push({ path: 'reason', message: `unknown reason ${JSON.stringify(opts.reason)}: expected one of ${Object.keys(REVOCATION_REASONS).join(', ')}` });
  }
  throwIfProblems(problems);
  const now = opts.now ?? new Date();
  await loadCa(dir);
  return withPkiLock(dir, async () => {
    const ca = await loadCa(dir);
    const entries = await readIndex(dir);
    const mine = entries.filter((e) => e.name === name);
    if (mine.length === 0) throw inputError(`no certificate named ${JSON.stringify(name)} in ${dir}`, 'name');
    const revoked = mine.filter((e) => e.status === 'valid' || e.status === 'superseded');
    for (const e of revoked) {
      e.status = 'revoked';
      e.revokedAt = now.toISOString();
      e.revocationReason = opts.reason ?? 'unspecified';
    }
    if (revoked.length > 0) await writeIndex(dir, entries);
    // Always re-signed, so a revoke also repairs a missing or stale CRL.
    await writeCrl(dir, ca, entries, { now });
    return revoked;
  });
}

/** Re-signs a current CRL with the same revoked serials (a stale CRL rejects every client). */
export async function refreshCrl(dir: string, opts: { now?: Date; nextUpdateDays?: number } = {}): Promise<void> {
  const problems: Problem[] = [];
  checkPositiveInt(opts.nextUpdateDays, 'nextUpdateDays', problems, 3650);
  throwIfProblems(problems);
  await loadCa(dir);
  await withPkiLock(dir, async () => {
    const ca = await loadCa(dir);
    await writeCrl(dir, ca, await readIndex(dir), {
      now: opts.now ?? new Date(),
      ...(opts.nextUpdateDays === undefined ? {} : { nextUpdateDays: opts.nextUpdateDays }),
    });
  });
}
