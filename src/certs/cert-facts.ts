/**
 * What a deployed certificate, key, bundle or CRL file says, read with node:crypto and the PKI's
 * parsers. Pure functions of file contents: callers read the files through the Deployment.
 */
// @peculiar/x509 (through tsyringe) needs the Reflect metadata API, loaded before it.
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { commonNameOf, normalizeSerial, parseBundle, parseCrl, type BundleCa } from '../pki/index.js';

export interface CertFacts {
  serial: string;
  commonName: string;
  issuerCommonName: string;
  notBefore: Date;
  notAfter: Date;
  pem: string;
}

export function certFacts(pem: string): CertFacts | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return undefined;
  }
  return {
    serial: normalizeSerial(cert.serialNumber),
    commonName: commonNameOf(cert.subject),
    issuerCommonName: commonNameOf(cert.issuer),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    pem,
  };
}

/** The key's public half equals the certificate's (never puts key material into messages). */
export function keyMatchesCert(keyPem: string, certPem: string): boolean {
  try {
    const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
    const fromCert = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
    return Buffer.compare(fromKey, fromCert) === 0;
  } catch {
    return false;
  }
}

/** Signed by this CA (signature checked, not just the names compared). */
export function isIssuedBy(certPem: string, caPem: string): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

export function bundleCas(text: string | undefined, file: string): BundleCa[] {
  return text === undefined ? [] : parseBundle(text, file);
}

export interface CrlFacts {
  /** CN of the CA that signed it. */
  issuerCommonName: string;
  thisUpdate: Date;
  nextUpdate: Date;
  crlNumber: bigint;
  revokedSerials: string[];
}

const CRL_BLOCK_RE = /-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----\n?/g;

/** Every CRL in a CRLfile (stunnel reads all of them: one per trusted CA). */
export function crlFacts(text: string | undefined): CrlFacts[] {
  if (text === undefined) return [];
  return (text.match(CRL_BLOCK_RE) ?? []).flatMap((block) => {
    try {
      const info = parseCrl(block);
      return [
        {
          issuerCommonName: crlIssuerCommonName(block),
          thisUpdate: info.thisUpdate,
          nextUpdate: info.nextUpdate ?? info.thisUpdate,
          crlNumber: info.crlNumber,
          revokedSerials: info.revokedSerials.map(normalizeSerial),
        },
      ];
    } catch {
      return [];
    }
  });
}

/** The CN of the CA that signed a CRL. */
export function crlIssuerCommonName(pem: string): string {
  return new x509.X509Crl(pem).issuerName.getField('CN')[0] ?? '';
}

