/**
 * Getting the PKI's trust files (CA bundle, CRLs) to every stunnel, and the CRL refresh that
 * keeps them current. Every host (a sandbox host's root too) gets its own copies; only a
 * deployment whose stunnels read the PKI's files themselves skips the copy.
 */
import { promises as fs } from 'node:fs';
import { readIfExists } from '../fsx.js';
import { pkiPaths } from '../paths.js';
import { readBundle, refreshCrl } from '../pki/index.js';
import { crlFacts } from './cert-facts.js';
import type { Deployment, TlsEndpoint } from './deployment.js';
import { crlNeedsRefresh } from './renewal.js';

/** A file on the endpoint's host that is the very same file as one of the PKI's. */
export function isPkiFile(d: Deployment, e: TlsEndpoint, hostPath: string, pkiPath: string): boolean {
  return d.hostFilesAreLocal && hostPath === pkiPath;
}

/** Copies ca-bundle.crt and/or crl.pem to each endpoint's caFile/crlFile. */
export async function publishTrustFiles(d: Deployment, endpoints: readonly TlsEndpoint[], which: { bundle?: boolean; crl?: boolean }): Promise<void> {
  const pki = pkiPaths(d.pkiDir);
  const bundle = which.bundle === true ? await fs.readFile(pki.caBundle, 'utf8') : undefined;
  const crl = which.crl === true ? await fs.readFile(pki.crl, 'utf8') : undefined;
  await Promise.all(
    endpoints.map(async (e) => {
      if (bundle !== undefined && !isPkiFile(d, e, e.caFile, pki.caBundle)) await d.write(e, e.caFile, bundle, 0o644);
      if (bundle !== undefined) await d.bundleTrustChanged?.(e, bundle);
      if (crl !== undefined && !isPkiFile(d, e, e.crlFile, pki.crl)) await d.write(e, e.crlFile, crl, 0o644);
    }),
  );
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
