/**
 * Key generation and signatures with Node's native crypto. node-forge builds the certificate
 * structures, but its pure-JS RSA private-key operation costs 25-77 ms per signature while
 * OpenSSL (behind node:crypto) takes 1-3 ms, and native key generation runs on the libuv
 * threadpool so several keys are made in parallel.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

export { generateKeyPair } from './keygen.js';

// Both exist in node-forge 1.x but are missing from @types/node-forge.
const forgePki = forge.pki as typeof forge.pki & {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1;
  getCertificationRequestInfo(csr: forge.pki.CertificateSigningRequest): forge.asn1.Asn1;
};

export const SHA256_WITH_RSA_OID = forge.pki.oids.sha256WithRSAEncryption as string;

/** DER of the TBSCertificate, with the signature algorithm set first (it is part of what is signed). */
function tbsDer(cert: forge.pki.Certificate): Buffer {
  cert.siginfo.algorithmOid = SHA256_WITH_RSA_OID;
  cert.signatureOid = SHA256_WITH_RSA_OID;
  // certificateToPem reuses this cached TBSCertificate, so the PEM holds exactly the signed bytes.
  const tbs = forgePki.getTBSCertificate(cert);
  cert.tbsCertificate = tbs;
  return Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
}

/** Signs a forge certificate (sha256WithRSAEncryption) with a native key, in place. */
export function signCertificate(cert: forge.pki.Certificate, key: KeyObject): void {
  cert.signature = sign('sha256', tbsDer(cert), key).toString('binary');
}

/**
 * The same on the libuv threadpool (crypto.sign with a callback): a batch of certificates is
 * signed on every core instead of one after another on the main thread.
 */
export async function signCertificateAsync(cert: forge.pki.Certificate, key: KeyObject): Promise<void> {
  const der = tbsDer(cert);
  const signature = await new Promise<Buffer>((resolve, reject) => {
    sign('sha256', der, key, (err, sig) => (err ? reject(err) : resolve(sig)));
  });
  cert.signature = signature.toString('binary');
}

/** Signs a forge CSR (sha256WithRSAEncryption) with a native key, in place. */
export function signCertificationRequest(csr: forge.pki.CertificateSigningRequest, key: KeyObject): void {
  csr.siginfo.algorithmOid = SHA256_WITH_RSA_OID;
  csr.signatureOid = SHA256_WITH_RSA_OID;
  const info = forgePki.getCertificationRequestInfo(csr);
  csr.certificationRequestInfo = info;
  const der = Buffer.from(forge.asn1.toDer(info).getBytes(), 'binary');
  csr.signature = sign('sha256', der, key).toString('binary');
}

/** Parses a PEM private key without ever putting its text into an error message. */
export function privateKeyObject(pem: string, what: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    throw new Error(`${what} is not a readable private key`);
  }
}
