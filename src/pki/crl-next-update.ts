/**
 * A CRL's nextUpdate, read with asn1js alone (about 30 ms to load; @peculiar/x509 takes about
 * 200 ms): what `render` needs to warn before it ships a CRL that stunnel would reject.
 */
import * as asn1js from 'asn1js';

const isTime = (v: unknown): v is asn1js.UTCTime | asn1js.GeneralizedTime => v instanceof asn1js.UTCTime || v instanceof asn1js.GeneralizedTime;

/**
 * CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING };
 * TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL, signature, issuer, thisUpdate Time,
 * nextUpdate Time OPTIONAL, ... } (RFC 5280 5.1). Throws when the PEM is not shaped so.
 */
export function crlNextUpdate(pem: string): Date | undefined {
  const m = /-----BEGIN (?:X509 )?CRL-----([\s\S]*?)-----END (?:X509 )?CRL-----/.exec(pem);
  if (m === null) throw new Error('no "X509 CRL" PEM block');
  const der = Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64');
  const { offset, result } = asn1js.fromBER(der);
  if (offset === -1 || offset !== der.length || !(result instanceof asn1js.Sequence)) throw new Error('not DER: expected one CertificateList SEQUENCE');
  const [tbs, algorithm, signature] = result.valueBlock.value;
  if (!(tbs instanceof asn1js.Sequence) || !(algorithm instanceof asn1js.Sequence) || !(signature instanceof asn1js.BitString)) {
    throw new Error('not a CertificateList (tbsCertList, signatureAlgorithm, signatureValue)');
  }
  const fields = tbs.valueBlock.value;
  const at = fields[0] instanceof asn1js.Integer ? 1 : 0;
  if (!(fields[at] instanceof asn1js.Sequence) || !(fields[at + 1] instanceof asn1js.Sequence) || !isTime(fields[at + 2])) {
    throw new Error('not a TBSCertList (signature, issuer, thisUpdate)');
  }
  const next = fields[at + 3];
  return isTime(next) ? next.toDate() : undefined;
}
