/**
 * Signed bundles. `render` signs each bundle's manifest.json with the SITE CA KEY; `apply` checks
 * that signature against the CA(s) the host pinned before it reads anything else of the bundle.
 * The manifest names every file with its SHA-256, so the signature covers every file's bytes.
 *
 * Why the CA key and not a bundle-signing key certified by the CA: the host already trusts
 * exactly the CA (its CA bundle, pinned on first apply), and the CA key already lives on the
 * machine that renders (deploy signs the hosts' CSRs with it there). A separate signing key would
 * be a second secret to create, store, rotate and revoke (apply would also have to fetch and check
 * a CRL for it before trusting a bundle), for no gain in who can sign: whoever holds the CA key can
 * certify any signing key anyway. Key separation is kept by the message itself: what is signed
 * starts with SIGNED_PREFIX (ASCII), so it can never be mistaken for a DER certificate or CRL the
 * same key signs (those start with 0x30). RSA PKCS#1 v1.5 is deterministic: the same input still
 * renders byte-identical bundles.
 */
import { createHash, sign, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { z } from 'zod';

export const SIGNATURE_FILE = 'manifest.sig';
export const SIGNED_PREFIX = 'ovn-deploy bundle manifest v1\n';

const signatureSchema = z.strictObject({
  format: z.literal(1),
  algorithm: z.literal('sha256'),
  /** SHA-256 fingerprint (hex, lower case) of the signing CA's certificate (DER). */
  signer: z.string().regex(/^[0-9a-f]{64}$/),
  signature: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/).max(4096),
});

const signedBytes = (manifest: Buffer): Buffer => Buffer.concat([Buffer.from(SIGNED_PREFIX, 'utf8'), manifest]);

export function caFingerprint(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}

/** Every certificate of a PEM bundle; blocks that are not certificates are skipped. */
export function pemCertificatesOf(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  const certs: X509Certificate[] = [];
  for (const b of blocks) {
    try {
      const c = new X509Certificate(b);
      if (c.ca) certs.push(c);
    } catch {
      // Not a certificate after all: it can sign nothing.
    }
  }
  return certs;
}

/** One CA signs every bundle of a render: its certificate is parsed once, not once per host. */
let lastSigner: { pem: string; cert: X509Certificate; fingerprint: string } | undefined;
function signerOf(caCertPem: string): { cert: X509Certificate; fingerprint: string } {
  if (lastSigner?.pem !== caCertPem) {
    const cert = new X509Certificate(caCertPem);
    lastSigner = { pem: caCertPem, cert, fingerprint: caFingerprint(cert) };
  }
  return lastSigner;
}

const sigFileText = (signer: string, signature: string): string => `${JSON.stringify({ format: 1, algorithm: 'sha256', signer, signature }, null, 2)}\n`;

/** The content of manifest.sig for these manifest bytes. */
export function signManifest(manifest: Buffer, caKey: KeyObject, caCertPem: string): string {
  const signature = sign('sha256', signedBytes(manifest), caKey).toString('base64');
  return sigFileText(signerOf(caCertPem).fingerprint, signature);
}

/**
 * signManifest on the libuv threadpool: render signs a thousand manifests at once, so both cores
 * sign while the main thread groups the rendered files.
 */
export async function signManifestAsync(manifest: Buffer, caKey: KeyObject, caCertPem: string): Promise<string> {
  const { fingerprint } = signerOf(caCertPem);
  const signature = await new Promise<Buffer>((resolve, reject) => sign('sha256', signedBytes(manifest), caKey, (err, sig) => (err ? reject(err) : resolve(sig))));
  return sigFileText(fingerprint, signature.toString('base64'));
}

/**
 * Whether `sigText` is exactly the manifest.sig that signManifest would write for these bytes
 * with this CA: it verifies against the CA and is in our canonical form. PKCS#1 v1.5 signatures
 * are deterministic, so signing again would give the same bytes; checking costs a verify, a
 * small fraction of a sign (render keeps an unchanged bundle's signature this way).
 */
export function isSignatureOf(manifest: Buffer, sigText: string, caCertPem: string): boolean {
  const { cert, fingerprint } = signerOf(caCertPem);
  const verdict = verifyManifestSignature(manifest, sigText, [cert]);
  if (!verdict.ok) return false;
  const signature = (JSON.parse(sigText) as { signature: string }).signature;
  return sigText === sigFileText(fingerprint, signature);
}

export type SignatureVerdict = { ok: true; signer: X509Certificate } | { ok: false; field: string; message: string };

/** Checks manifest.sig against the trusted CAs; never throws on bad input. */
export function verifyManifestSignature(manifest: Buffer, sigText: string, trusted: readonly X509Certificate[]): SignatureVerdict {
  let data: unknown;
  try {
    data = JSON.parse(sigText);
  } catch {
    return { ok: false, field: '', message: 'not valid JSON' };
  }
  const parsed = signatureSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, field: issue?.path.map(String).join('.') ?? '', message: issue?.message ?? 'malformed' };
  }
  const signer = trusted.find((c) => caFingerprint(c) === parsed.data.signer);
  if (signer === undefined) {
    return { ok: false, field: 'signer', message: `signed by CA ${parsed.data.signer.slice(0, 16)}…, which this host does not trust` };
  }
  let good: boolean;
  try {
    good = verify('sha256', signedBytes(manifest), signer.publicKey, Buffer.from(parsed.data.signature, 'base64'));
  } catch {
    good = false;
  }
  return good ? { ok: true, signer } : { ok: false, field: 'signature', message: 'does not match manifest.json: the manifest was changed after render, or signed by another key' };
}
