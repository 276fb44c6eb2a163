/**
 * The unsigned certificate structures (node-forge), one builder per kind. Pure: the caller picks
 * serial, dates and key, and signs the result (native-sign.ts).
 */
import { randomBytes } from 'node:crypto';
import type * as Forge from 'node-forge';
import forge from './forge.js';
import type { LeafRole } from './types.js';
import type { SubjectAltName } from './validate.js';

export const ORGANIZATION = 'ovn-deploy';

/** Names go in as UTF8String: PrintableString (forge's default) cannot hold '_' or '@'. */
function dn(fields: { CN: string; OU?: string }): Forge.pki.CertificateField[] {
  const utf8 = forge.asn1.Type.UTF8 as unknown as Forge.asn1.Class;
  const attrs: Forge.pki.CertificateField[] = [{ shortName: 'O', value: ORGANIZATION, valueTagClass: utf8 }];
  if (fields.OU !== undefined) attrs.push({ shortName: 'OU', value: fields.OU, valueTagClass: utf8 });
  attrs.push({ shortName: 'CN', value: fields.CN, valueTagClass: utf8 });
  return attrs;
}

/** RFC 4514 form of what dn() builds, for the index. */
export function subjectString(fields: { CN: string; OU?: string }): string {
  return [`CN=${fields.CN}`, ...(fields.OU === undefined ? [] : [`OU=${fields.OU}`]), `O=${ORGANIZATION}`].join(',');
}

/**
 * 16 random bytes as a positive INTEGER: the top bit is cleared (forge would encode it as a
 * negative number) and a zero first byte is avoided (DER would need it stripped, making the
 * serial shorter than 128 bits).
 */
export function randomSerial(): string {
  for (;;) {
    const bytes = randomBytes(16);
    bytes[0] = (bytes[0] ?? 0) & 0x7f;
    if (bytes[0] !== 0) return bytes.toString('hex');
  }
}

interface Validity {
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

function baseCertificate(publicKey: Forge.pki.PublicKey, v: Validity): Forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = v.serial;
  cert.validity.notBefore = v.notBefore;
  cert.validity.notAfter = v.notAfter;
  return cert;
}

export function caSubjectCN(commonName: string): string {
  return `ovn-deploy CA ${commonName}`;
}

export function buildCaCertificate(publicKey: Forge.pki.PublicKey, v: Validity & { commonName: string }): Forge.pki.Certificate {
  const cert = baseCertificate(publicKey, v);
  const subject = dn({ CN: caSubjectCN(v.commonName) });
  cert.setSubject(subject);
  cert.setIssuer(subject);
  const ski = (cert as Forge.pki.Certificate & { generateSubjectKeyIdentifier(): Forge.util.ByteStringBuffer })
    .generateSubjectKeyIdentifier()
    .getBytes();
  cert.setExtensions([
    { name: 'basicConstraints', critical: true, cA: true },
    { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ski },
  ]);
  return cert;
}

/**
 * forge keeps parsed UTF8String values as raw UTF-8 bytes but UTF-8-encodes them again when
 * writing: decode first, or a non-ASCII CA name would no longer match the leaves' issuer.
 */
function reencodable(attr: Forge.pki.CertificateField): Forge.pki.CertificateField {
  const utf8 = forge.asn1.Type.UTF8 as unknown as Forge.asn1.Class;
  if (attr.valueTagClass !== utf8 || typeof attr.value !== 'string') return attr;
  return { ...attr, value: forge.util.decodeUtf8(attr.value) };
}

export interface IssuingCa {
  cert: Forge.pki.Certificate;
  /** The CA's subjectKeyIdentifier as a forge binary string (the leaves' AKI). */
  skiBytes: string;
}

/** Extended key usages per role: centrals also act as clients (RAFT between centrals through stunnel clients). */
export const ROLE_EKU: Record<LeafRole, { serverAuth?: true; clientAuth: true }> = {
  central: { serverAuth: true, clientAuth: true },
  worker: { clientAuth: true },
  'metadata-agent': { clientAuth: true },
  cms: { clientAuth: true },
};

export function buildLeafCertificate(
  publicKey: Forge.pki.PublicKey,
  ca: IssuingCa,
  v: Validity & { name: string; role: LeafRole; sans: SubjectAltName[]; keyId?: string },
): Forge.pki.Certificate {
  const cert = baseCertificate(publicKey, v);
  cert.setSubject(dn({ CN: v.name, OU: v.role }));
  cert.setIssuer(ca.cert.subject.attributes.map(reencodable));
  const extensions: object[] = [
    { name: 'basicConstraints', critical: true, cA: false },
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', ...ROLE_EKU[v.role] },
    // Given (computed natively), forge takes the value as it is instead of hashing the key in JS.
    v.keyId === undefined
      ? { name: 'subjectKeyIdentifier' }
      : { name: 'subjectKeyIdentifier', value: forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, v.keyId) },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.skiBytes },
  ];
  if (v.sans.length > 0) {
    extensions.push({
      name: 'subjectAltName',
      altNames: v.sans.map((s) => (s.type === 'ip' ? { type: 7, ip: s.value } : { type: 2, value: s.value })),
    });
  }
  cert.setExtensions(extensions);
  return cert;
}
