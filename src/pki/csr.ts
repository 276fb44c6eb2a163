/**
 * Certificate signing requests: making one for a host that keeps its own key (apply/deploy), and
 * reading one we are asked to sign, including proof that its sender holds the private key.
 */
import { createHash, createPrivateKey, createPublicKey, verify, type KeyObject } from 'node:crypto';
import type * as Forge from 'node-forge';
import forge from './forge.js';
import { inputError } from '../errors.js';
import { readTlv } from './der.js';
import { privateKeyObject, signCertificationRequest } from './native-sign.js';
import { MIN_KEY_BITS, parseSans, throwIfProblems } from './validate.js';
import type { Problem } from '../errors.js';

/** A PKCS#10 request for `subjectCN` (and optional SANs), signed with the host's key. */
export function createCsr(keyPem: string, subjectCN: string, sans: string[] = []): string {
  const problems: Problem[] = [];
  const parsedSans = parseSans(sans, 'sans', problems);
  if (subjectCN.trim() === '') problems.push({ path: 'subjectCN', message: 'must not be empty' });
  throwIfProblems(problems);
  const key = privateKeyObject(keyPem, 'the key given to createCsr');
  const spki = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(spki);
  csr.setSubject([{ shortName: 'CN', value: subjectCN, valueTagClass: forge.asn1.Type.UTF8 as unknown as Forge.asn1.Class }]);
  if (parsedSans.length > 0) {
    csr.setAttributes([
      {
        name: 'extensionRequest',
        extensions: [
          {
            name: 'subjectAltName',
            altNames: parsedSans.map((s) => (s.type === 'ip' ? { type: 7, ip: s.value } : { type: 2, value: s.value })),
          },
        ],
      },
    ]);
  }
  signCertificationRequest(csr, key);
  return forge.pki.certificationRequestToPem(csr);
}

const SIGNATURE_HASHES: Record<string, string> = {
  [forge.pki.oids.sha1WithRSAEncryption as string]: 'sha1',
  [forge.pki.oids.sha256WithRSAEncryption as string]: 'sha256',
  [forge.pki.oids.sha384WithRSAEncryption as string]: 'sha384',
  [forge.pki.oids.sha512WithRSAEncryption as string]: 'sha512',
};

export interface VerifiedCsr {
  commonName: string | undefined;
  publicKey: Forge.pki.PublicKey;
  keyBits: number;
  /** SHA-1 of the RSAPublicKey (RFC 5280 4.2.1.2 method 1) as a forge binary string: the certificate's subjectKeyIdentifier. */
  keyId: string;
}

/** A plain RFC 7468 CSR block (no headers): the common case, decoded natively. */
const PLAIN_CSR_PEM = /-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END (?:NEW )?CERTIFICATE REQUEST-----/;

function csrDer(csrPem: string): Buffer {
  const plain = PLAIN_CSR_PEM.exec(csrPem);
  if (plain?.[1] !== undefined) return Buffer.from(plain[1], 'base64');
  // Anything less plain (headers, odd spacing): forge's lenient reader, as before.
  const block = forge.pem.decode(csrPem).find((b) => b.type === 'CERTIFICATE REQUEST' || b.type === 'NEW CERTIFICATE REQUEST');
  if (block === undefined) throw new Error('no "CERTIFICATE REQUEST" PEM block');
  return Buffer.from(block.body, 'binary');
}

/** DER of AlgorithmIdentifier's OID rsaEncryption (1.2.840.113549.1.1.1). */
const RSA_ENCRYPTION_OID = Buffer.from('06092a864886f70d010101', 'hex');

/**
 * The RSAPublicKey inside a SubjectPublicKeyInfo. OpenSSL 3 imports it as PKCS#1 in a few
 * microseconds, against ~0.15 ms for the same key as SPKI (its generic decoder tries every format).
 */
export function rsaPublicKeyDer(spki: Buffer): Buffer {
  const outer = readTlv(spki, 0);
  const alg = readTlv(spki, outer.contentStart);
  const oid = readTlv(spki, alg.contentStart);
  if (!spki.subarray(oid.start, oid.end).equals(RSA_ENCRYPTION_OID)) throw new Error('OID is not RSA');
  const bits = readTlv(spki, alg.end);
  if (bits.tag !== 0x03 || spki[bits.contentStart] !== 0) throw new Error('malformed subjectPublicKey');
  return spki.subarray(bits.contentStart + 1, bits.end);
}

/** subjectKeyIdentifier for an RSA public key (RFC 5280 4.2.1.2 method 1, as forge computes it), natively. */
export function keyIdOf(rsaPublicKey: Buffer): string {
  return createHash('sha1').update(rsaPublicKey).digest('binary');
}

/** keyIdOf for an SPKI PEM (a key we generated: well-formed by construction). */
export function keyIdOfSpkiPem(spkiPem: string): string {
  const body = spkiPem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '');
  return keyIdOf(rsaPublicKeyDer(Buffer.from(body, 'base64')));
}

/**
 * Parses a CSR and checks its self-signature natively over the exact bytes that were signed.
 * Every failure is bad input (exit 2) naming `file`.
 */
export function readVerifiedCsr(csrPem: string, file: string): VerifiedCsr {
  const bad = (why: string) => inputError(why, '', file);
  let der: Buffer;
  try {
    der = csrDer(csrPem);
  } catch (err) {
    throw bad(`not a PEM certificate signing request (${(err as Error).message})`);
  }

  let csr: Forge.pki.CertificateSigningRequest;
  let info: Buffer;
  let rsaPublicKey: Buffer;
  try {
    csr = forge.pki.certificationRequestFromAsn1(forge.asn1.fromDer(der.toString('binary')));
    // CertificationRequestInfo ::= SEQUENCE { version, subject, subjectPKInfo, attributes }
    const outer = readTlv(der, 0);
    const cri = readTlv(der, outer.contentStart);
    info = der.subarray(cri.start, cri.end);
    const version = readTlv(der, cri.contentStart);
    const subject = readTlv(der, version.end);
    const pk = readTlv(der, subject.end);
    rsaPublicKey = rsaPublicKeyDer(der.subarray(pk.start, pk.end));
  } catch (err) {
    const msg = (err as Error).message;
    throw bad(/OID is not RSA/i.test(msg) ? 'only RSA keys are supported' : `not a valid certificate signing request (${msg})`);
  }

  const hash = csr.signatureOid === null ? undefined : SIGNATURE_HASHES[csr.signatureOid];
  if (hash === undefined) throw bad(`unsupported signature algorithm ${csr.signatureOid ?? '(none)'}: expected RSA with SHA-1/256/384/512`);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: rsaPublicKey, format: 'der', type: 'pkcs1' });
  } catch (err) {
    throw bad(`unreadable public key (${(err as Error).message})`);
  }
  const signature = Buffer.from(String(csr.signature), 'binary');
  if (!verify(hash, info, publicKey, signature)) {
    throw bad('signature check failed: the request was altered or not signed by the key it contains');
  }
  const keyBits = publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
  if (keyBits < MIN_KEY_BITS) throw bad(`RSA key of ${keyBits} bits is too small: at least ${MIN_KEY_BITS} required`);
  if (csr.publicKey === null) throw bad('no public key');

  const cn = csr.subject.getField('CN') as { value?: unknown } | null;
  let commonName: string | undefined;
  if (typeof cn?.value === 'string') {
    try {
      commonName = forge.util.decodeUtf8(cn.value);
    } catch {
      commonName = cn.value; // not UTF-8 (e.g. a BMPString): name validation will report it
    }
  }
  return {
    commonName,
    publicKey: csr.publicKey,
    keyBits,
    keyId: keyIdOf(rsaPublicKey),
  };
}

/** The public key of a private key PEM, for tests and callers that only hold the key. */
export function publicKeyPemOf(keyPem: string): string {
  return createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'pem' }).toString();
}
