/**
 * The host's one certificate. The key is made here and never leaves the host; the CA signs the
 * CSR elsewhere and only the certificate comes back. A certificate is usable when it belongs to
 * our key, chains to the bundle's CA bundle, is inside its validity period and carries exactly
 * the names the bundle asks for; anything else means a new CSR (status needs-certificate).
 */
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { inputError } from '../errors.js';
import type { CertificateRequest } from '../bundle/manifest.js';

export type CertVerdict = 'ok' | 'missing' | 'key-mismatch' | 'expired' | 'untrusted' | 'names-differ' | 'unreadable';

/** Every PEM certificate block of a bundle file. */
export function pemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const out: X509Certificate[] = [];
  for (const b of blocks) {
    try {
      out.push(new X509Certificate(b));
    } catch {
      // a broken block cannot be trusted: skip it
    }
  }
  return out;
}

const spkiOf = (keyPem: string): string => createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'pem' }).toString();

export function keyMatchesCert(keyPem: string, cert: X509Certificate): boolean {
  try {
    return spkiOf(keyPem) === cert.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  } catch {
    return false;
  }
}

/** Issued by (and signed by) one of the CA bundle's certificates. */
export function chainsTo(cert: X509Certificate, cas: readonly X509Certificate[]): boolean {
  return cas.some((ca) => {
    try {
      return cert.checkIssued(ca) && cert.verify(ca.publicKey);
    } catch {
      return false;
    }
  });
}

/** The subjectAltName entries as `--san` writes them: DNS names and IP addresses. */
export function certSans(cert: X509Certificate): string[] {
  const raw = cert.subjectAltName ?? '';
  return raw
    .split(/,\s*/)
    .map((e) => e.trim())
    .filter((e) => e !== '')
    .map((e) => e.replace(/^DNS:/, '').replace(/^IP Address:/, ''))
    .map((v) => v.toLowerCase());
}

export function certCommonName(cert: X509Certificate): string | undefined {
  return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => {
  const x = [...new Set(a.map((s) => s.toLowerCase()))].sort();
  const y = [...new Set(b.map((s) => s.toLowerCase()))].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

export function judgeCertificate(
  req: CertificateRequest,
  keyPem: string | undefined,
  certPem: string | undefined,
  caBundlePem: string | undefined,
  now = new Date(),
): CertVerdict {
  if (certPem === undefined || keyPem === undefined) return 'missing';
  const cert = pemCertificates(certPem)[0];
  if (cert === undefined) return 'unreadable';
  if (!keyMatchesCert(keyPem, cert)) return 'key-mismatch';
  if (now.getTime() > Date.parse(cert.validTo) || now.getTime() < Date.parse(cert.validFrom)) return 'expired';
  if (!chainsTo(cert, pemCertificates(caBundlePem ?? ''))) return 'untrusted';
  if (certCommonName(cert) !== req.name || !sameSet(certSans(cert), req.sans)) return 'names-differ';
  return 'ok';
}

const DAY_MS = 86_400_000;

/**
 * A usable certificate that is inside the renewal window: fewer than `windowDays` days left.
 * Renewing early leaves time to roll the new one out while the old one still serves.
 */
export function insideRenewalWindow(certPem: string | undefined, windowDays: number, now = new Date()): boolean {
  const cert = certPem === undefined ? undefined : pemCertificates(certPem)[0];
  if (cert === undefined || windowDays <= 0) return false;
  return Date.parse(cert.validTo) - now.getTime() < windowDays * DAY_MS;
}

/**
 * A new certificate from the CA that issued this one could end later than this one does. Not so
 * when the leaf already ends with its CA (signing caps leaves at the CA's end): renewing then
 * would ask again on every apply without gaining a day; the CA itself is due instead.
 */
export function renewalWouldExtend(certPem: string | undefined, caBundlePem: string | undefined): boolean {
  const cert = certPem === undefined ? undefined : pemCertificates(certPem)[0];
  if (cert === undefined) return false;
  const issuers = pemCertificates(caBundlePem ?? '').filter((ca) => chainsTo(cert, [ca]));
  return issuers.some((ca) => Date.parse(ca.validTo) - Date.parse(cert.validTo) >= DAY_MS);
}

/** The certificate (first block) belongs to this key; false when either is absent or unreadable. */
export function pemMatchesKey(certPem: string | undefined, keyPem: string | undefined): boolean {
  const cert = certPem === undefined ? undefined : pemCertificates(certPem)[0];
  return cert !== undefined && keyPem !== undefined && keyMatchesCert(keyPem, cert);
}

/**
 * Checks a certificate given with `--certificate` before it is installed: it must be ours (our
 * key) and signed by the bundle's CA; otherwise bad input naming where it came from.
 */
export function checkGivenCertificate(certPem: string, from: string, keyPem: string | undefined, caBundlePem: string, now = new Date()): void {
  const cert = pemCertificates(certPem)[0];
  if (cert === undefined) throw inputError('not a PEM certificate', '', from);
  if (keyPem === undefined) {
    throw inputError('this host has no key yet: run apply without --certificate first (it makes the key and the CSR)', '', from);
  }
  if (!keyMatchesCert(keyPem, cert)) throw inputError("the certificate does not match this host's key (signed for another CSR?)", '', from);
  if (!chainsTo(cert, pemCertificates(caBundlePem))) throw inputError("the certificate is not signed by a CA of the bundle's CA bundle", '', from);
  if (now.getTime() > Date.parse(cert.validTo)) throw inputError(`the certificate expired on ${new Date(cert.validTo).toISOString()}`, '', from);
}

/** The admin-side command that signs this host's CSR (the design's exact shape). */
export function signCommand(req: CertificateRequest): string {
  const argv = ['ovn-deploy', 'pki', 'sign-csr', '--dir', '<PKI>', '--csr', `${req.name}.csr`, '--role', req.role, '--name', req.name];
  if (req.sans.length > 0) argv.push('--san', req.sans.join(','));
  argv.push('--out', `${req.name}.pem`);
  return argv.join(' ');
}
