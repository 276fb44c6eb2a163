/**
 * The CA(s) a host trusts to sign its bundles. A fresh host pins the CA given with `--trust-ca`
 * (deploy ships the signing CA and passes it) on its first apply; from then on the pin decides
 * and `--trust-ca` must name a CA already pinned. After a bundle verified, the pin becomes the
 * CAs of that bundle's CA bundle plus the CA that signed it: a CA rollover reaches the host in a
 * bundle signed by a CA it already trusts, and a CA the site dropped stops being trusted.
 */
import path from 'node:path';
import type { X509Certificate } from 'node:crypto';
import { InputError } from '../errors.js';
import { readIfExists, writeFileAtomic } from '../fsx.js';
import type { HostPaths } from '../paths.js';
import { caFingerprint, pemCertificatesOf } from '../bundle/signature.js';

export const trustPinFile = (paths: HostPaths): string => path.join(paths.state, 'trusted-ca.pem');

export interface Trust {
  certs: X509Certificate[];
  /** The pin file exists (else it is written after the first verified bundle). */
  pinned: boolean;
}

export async function hostTrust(paths: HostPaths, given: { pem: string; from: string } | undefined): Promise<Trust> {
  const pinFile = trustPinFile(paths);
  const givenCerts = given === undefined ? undefined : pemCertificatesOf(given.pem);
  if (given !== undefined && givenCerts?.length === 0) {
    throw new InputError([{ file: given.from, path: '--trust-ca', message: 'holds no CA certificate (PEM, with the CA basic constraint)' }]);
  }
  const raw = await readIfExists(pinFile);
  if (raw === undefined) {
    if (givenCerts === undefined) {
      throw new InputError([{ path: '--trust-ca', message: `this host trusts no CA yet (${pinFile}): give --trust-ca FILE with the site CA certificate (pki/ca/ca.crt; deploy does this)` }]);
    }
    return { certs: givenCerts, pinned: false };
  }
  const certs = pemCertificatesOf(raw.toString('utf8'));
  if (certs.length === 0) throw new InputError([{ file: pinFile, path: '', message: 'the pinned CA file holds no CA certificate: restore it or remove it and apply with --trust-ca' }]);
  if (givenCerts !== undefined && given !== undefined) {
    const pinned = new Set(certs.map(caFingerprint));
    if (!givenCerts.some((c) => pinned.has(caFingerprint(c)))) {
      throw new InputError([{ file: given.from, path: '--trust-ca', message: `this host already trusts another CA (${pinFile}); remove that file to trust a new site CA` }]);
    }
  }
  return { certs, pinned: true };
}

/** The pin after `signer` signed a bundle whose CA bundle is `caBundlePem`; written only when it changes. */
export async function updatePin(paths: HostPaths, signer: X509Certificate, caBundlePem: string): Promise<void> {
  const certs = pemCertificatesOf(caBundlePem);
  if (!certs.some((c) => caFingerprint(c) === caFingerprint(signer))) certs.push(signer);
  const pem = certs.map((c) => c.toString().trim()).join('\n') + '\n';
  const pinFile = trustPinFile(paths);
  if ((await readIfExists(pinFile))?.toString('utf8') === pem) return;
  await writeFileAtomic(pinFile, pem, 0o644);
}
