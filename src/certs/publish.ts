/**
 * Getting the PKI's trust files (CA bundle, CRLs) to every stunnel, and the CRL refresh that
 * keeps them current. Every host (a sandbox host's root too) gets its own copies.
 */
import { promises as fs } from 'node:fs';
import { ExitError } from '../errors.js';
import { readIfExists } from '../fsx.js';
import { pkiPaths } from '../paths.js';
import { readBundle, refreshCrl } from '../pki/index.js';
import { crlFacts } from './cert-facts.js';
import type { Deployment, TlsEndpoint } from './deployment.js';
import { crlNeedsRefresh } from './renewal.js';

/** One endpoint per host: a host's endpoints (a central's server and client) share its files. */
export function onePerHost(endpoints: readonly TlsEndpoint[]): TlsEndpoint[] {
  const seen = new Set<string>();
  return endpoints.filter((e) => !seen.has(e.host) && seen.add(e.host) !== undefined);
}

/**
 * Copies ca-bundle.crt and/or crl.pem to each host's caFile/crlFile. A host that cannot be
 * written to does not stop the others: it is returned with the reason.
 */
export async function publishTrustFilesEach(
  d: Deployment,
  endpoints: readonly TlsEndpoint[],
  which: { bundle?: boolean; crl?: boolean },
): Promise<{ host: string; why: string }[]> {
  const pki = pkiPaths(d.pkiDir);
  const bundle = which.bundle === true ? await fs.readFile(pki.caBundle, 'utf8') : undefined;
  const crl = which.crl === true ? await fs.readFile(pki.crl, 'utf8') : undefined;
  const failed: { host: string; why: string }[] = [];
  await Promise.all(
    onePerHost(endpoints).map(async (e) => {
      try {
        if (bundle !== undefined) {
          await d.write(e, e.caFile, bundle, 0o644);
          await d.bundleTrustChanged?.(e, bundle);
        }
        if (crl !== undefined) await d.write(e, e.crlFile, crl, 0o644);
      } catch (err) {
        failed.push({ host: e.host, why: err instanceof Error ? err.message : String(err) });
      }
    }),
  );
  return failed;
}

/** publishTrustFilesEach, throwing when any host did not get the files. */
export async function publishTrustFiles(d: Deployment, endpoints: readonly TlsEndpoint[], which: { bundle?: boolean; crl?: boolean }): Promise<void> {
  const failed = await publishTrustFilesEach(d, endpoints, which);
  if (failed.length > 0) throw new ExitError(`the trust files did not reach every host:\n${failed.map((f) => `  ${f.host}: ${f.why}`).join('\n')}`);
}

/**
 * Why the PKI's CRL file must be re-signed now (undefined: it is fine): a CRL near its
 * nextUpdate, or a trusted CA without a CRL.
 */
export async function crlRefreshReason(pkiDir: string, now: Date): Promise<string | undefined> {
  const pki = pkiPaths(pkiDir);
  const crls = crlFacts((await readIfExists(pki.crl))?.toString('utf8'));
  const stale = crls.find((c) => crlNeedsRefresh(c.thisUpdate, c.nextUpdate, now));
  if (stale !== undefined) return `the CRL of "${stale.issuerCommonName}" is due for its next update (${stale.nextUpdate.toISOString()})`;
  const missing = (await readBundle(pkiDir)).find((ca) => !crls.some((c) => c.issuerCommonName === ca.commonName));
  if (missing !== undefined) return `there is no CRL for trusted CA "${missing.commonName}"`;
  return undefined;
}

/** Re-signs the CRLs when needed and copies them to every endpoint; returns why, or undefined. */
export async function refreshCrlsIfNeeded(d: Deployment, now: Date): Promise<string | undefined> {
  const reason = await crlRefreshReason(d.pkiDir, now);
  if (reason === undefined) return undefined;
  await refreshCrl(d.pkiDir, { now });
  await publishTrustFiles(d, d.endpoints, { crl: true });
  return reason;
}
