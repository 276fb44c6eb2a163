/**
 * Key generation and signatures with Node's native crypto. node-forge builds the certificate
 * structures, but its pure-JS RSA private-key operation costs 25-77 ms per signature while
 * OpenSSL (behind node:crypto) takes 1-3 ms, and native key generation runs on the libuv
 * threadpool so several keys are made in parallel.
 */
import { sign, type KeyObject } from 'node:crypto';
import type * as Forge from 'node-forge';
import forge from './forge.js';
import { encodeTlv } from './der.js';

export { generateKeyPair } from './keygen.js';

// Both exist in node-forge 1.x but are missing from @types/node-forge.
const forgePki = forge.pki as typeof forge.pki & {
  getTBSCertificate(cert: Forge.pki.Certificate): Forge.asn1.Asn1;
  getCertificationRequestInfo(csr: Forge.pki.CertificateSigningRequest): Forge.asn1.Asn1;
};

export const SHA256_WITH_RSA_OID = forge.pki.oids.sha256WithRSAEncryption as string;

/** DER of the TBSCertificate, with the signature algorithm set first (it is part of what is signed). */
function tbsDer(cert: Forge.pki.Certificate): Buffer {
  cert.siginfo.algorithmOid = SHA256_WITH_RSA_OID;
  cert.signatureOid = SHA256_WITH_RSA_OID;
  // certificateToPem reuses this cached TBSCertificate, so the PEM holds exactly the signed bytes.
  const tbs = forgePki.getTBSCertificate(cert);
  cert.tbsCertificate = tbs;
  return Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
}

/** Signs a forge certificate (sha256WithRSAEncryption) with a native key, in place. */
export function signCertificate(cert: Forge.pki.Certificate, key: KeyObject): void {
  cert.signature = sign('sha256', tbsDer(cert), key).toString('binary');
}

/**
 * Signs on the libuv threadpool (crypto.sign with a callback) and returns the certificate as PEM,
 * assembled around the exact TBSCertificate bytes that were signed: forge's certificateToPem
 * would encode the whole structure a second time (about a fifth of a batch's CPU). The PEM is
 * byte for byte what certificateToPem gives (CRLF lines of 64, as forge writes them).
 */
export async function signCertificatePem(cert: Forge.pki.Certificate, key: KeyObject): Promise<string> {
  const der = tbsDer(cert);
  const signature = await new Promise<Buffer>((resolve, reject) => {
    sign('sha256', der, key, (err, sig) => (err ? reject(err) : resolve(sig)));
  });
  cert.signature = signature.toString('binary');
  return pemBlock('CERTIFICATE', encodeTlv(0x30, der, SHA256_WITH_RSA_ALGORITHM, encodeTlv(0x03, BIT_STRING_NO_UNUSED_BITS, signature)));
}

/** AlgorithmIdentifier { sha256WithRSAEncryption, NULL parameters }, as forge encodes it. */
const SHA256_WITH_RSA_ALGORITHM = Buffer.from('300d06092a864886f70d01010b0500', 'hex');
const BIT_STRING_NO_UNUSED_BITS = Buffer.from([0]);

/** PEM in forge's layout (pem.encode): CRLF line ends, base64 lines of 64 characters. */
function pemBlock(type: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${type}-----\r\n${lines.join('\r\n')}\r\n-----END ${type}-----\r\n`;
}

/** Signs a forge CSR (sha256WithRSAEncryption) with a native key, in place. */
export function signCertificationRequest(csr: Forge.pki.CertificateSigningRequest, key: KeyObject): void {
  csr.siginfo.algorithmOid = SHA256_WITH_RSA_OID;
  csr.signatureOid = SHA256_WITH_RSA_OID;
  const info = forgePki.getCertificationRequestInfo(csr);
  csr.certificationRequestInfo = info;
  const der = Buffer.from(forge.asn1.toDer(info).getBytes(), 'binary');
  csr.signature = sign('sha256', der, key).toString('binary');
}

export { privateKeyObject } from './ca-signer.js';
