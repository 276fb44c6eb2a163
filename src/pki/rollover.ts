/**
 * Several CAs in one PKI directory, for a CA rollover (`ovn-deploy certs ca-rollover`).
 *
 * - ca/ca.crt + ca/ca.key stay the CURRENT issuer: what loadCa, issueCertificate and signCsr use.
 * - Every CA a rollover made or retired is kept in `ca-store/<serial>/`, a folder shaped like a PKI
 *   directory (`ca/ca.crt`, `ca/ca.key`) so that loadCa reads it unchanged.
 * - ca/ca-bundle.crt lists every CA peers trust (current first). It is the one source of truth for
 *   "trusted": during a rollover it holds the old and the new CA.
 * - ca/crl.pem holds a current CRL for EVERY CA in the bundle (current first): stunnel rejects a
 *   peer of a trusted CA that has no CRL ("unable to get certificate CRL").
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { ExitError } from '../errors.js';
import { readIfExists, writeFileAtomic } from '../fsx.js';
import { pkiPaths, rolloverPaths } from '../paths.js';
import { DAY_MS, loadCa, renderCaCertificate, type LoadedCa } from './ca.js';
import { readIndex } from './cert-index.js';
import { writeCrl } from './crl.js';
import { withPkiLock } from './lock.js';
import { generateKeyPair, privateKeyObject } from './native-sign.js';
import { caSubjectCN } from './templates.js';

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g;

export interface BundleCa {
  /** Lower-case hex, as IndexEntry.issuer. */
  serial: string;
  commonName: string;
  certPem: string;
  notBefore: Date;
  notAfter: Date;
}

/** Lower-case hex without leading zeros: node prints serials upper-case and padded. */
export function normalizeSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '');
}

/** The CN of an X509Certificate `subject` ("O=ovn-deploy\nCN=ovn-deploy CA x"). */
export function commonNameOf(subject: string): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(subject)?.[1] ?? '';
}

export function parseBundle(text: string, file = 'CA bundle'): BundleCa[] {
  return (text.match(PEM_CERT_RE) ?? []).map((block) => {
    const pem = block.endsWith('\n') ? block : `${block}\n`;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch (err) {
      throw new ExitError(`${file}: holds a certificate that cannot be read (${(err as Error).message})`);
    }
    return {
      serial: normalizeSerial(cert.serialNumber),
      commonName: commonNameOf(cert.subject),
      certPem: pem,
      notBefore: new Date(cert.validFrom),
      notAfter: new Date(cert.validTo),
    };
  });
}

/** The CAs ca/ca-bundle.crt trusts (empty when there is no bundle). */
export async function readBundle(dir: string): Promise<BundleCa[]> {
  const file = pkiPaths(dir).caBundle;
  const raw = await readIfExists(file);
  return raw === undefined ? [] : parseBundle(raw.toString('utf8'), file);
}

export function renderBundle(cas: readonly { certPem: string }[]): string {
  return cas.map((c) => (c.certPem.endsWith('\n') ? c.certPem : `${c.certPem}\n`)).join('');
}

/** A CA by serial: the current issuer, or one kept in the store. */
export async function loadCaBySerial(dir: string, serial: string): Promise<LoadedCa> {
  const current = await loadCa(dir);
  if (normalizeSerial(current.serial) === normalizeSerial(serial)) return current;
  const stored = rolloverPaths(dir).caStore(normalizeSerial(serial));
  if ((await readIfExists(pkiPaths(stored).caKey)) === undefined) {
    throw new ExitError(`CA ${serial} is trusted by ${pkiPaths(dir).caBundle} but its key is not in ${stored}: no CRL can be signed for it`);
  }
  return loadCa(stored);
}

/**
 * The CRLs of every trusted CA other than `currentSerial`, concatenated (empty outside a
 * rollover). writeCrl appends them to the current CA's CRL, so every writer of ca/crl.pem (revoke,
 * refresh, init) keeps a CRL for each CA in the bundle.
 */
export async function renderCrlsOfOtherTrustedCas(dir: string, currentSerial: string, render: (ca: LoadedCa) => Promise<string>): Promise<string> {
  const others = (await readBundle(dir)).filter((c) => c.serial !== normalizeSerial(currentSerial));
  const pems: string[] = [];
  for (const c of others) pems.push(await render(await loadCaBySerial(dir, c.serial)));
  return pems.join('');
}

/** True when the private key belongs to the certificate (public keys compared as SPKI DER). */
export function caKeyMatches(ca: LoadedCa): boolean {
  const fromKey = createPublicKey(ca.key).export({ type: 'spki', format: 'der' });
  const fromCert = new X509Certificate(ca.certPem).publicKey.export({ type: 'spki', format: 'der' });
  return Buffer.compare(fromKey, fromCert) === 0;
}

/** Copies a CA's files into the store (kept as they are when already there). */
async function storeCa(dir: string, certPem: string, keyPem: string, serial: string): Promise<void> {
  const files = pkiPaths(rolloverPaths(dir).caStore(normalizeSerial(serial)));
  if ((await readIfExists(files.caKey)) === undefined) await writeFileAtomic(files.caKey, keyPem, 0o600);
  if ((await readIfExists(files.caCert)) === undefined) await writeFileAtomic(files.caCert, certPem, 0o644);
}

/** Keeps a copy of the current issuer in the store, so it stays loadable once it is no longer current. */
export async function storeCurrentCa(dir: string): Promise<string> {
  const paths = pkiPaths(dir);
  const ca = await loadCa(dir);
  const keyPem = (await fs.readFile(paths.caKey)).toString('utf8');
  await storeCa(dir, ca.certPem, keyPem, ca.serial);
  return normalizeSerial(ca.serial);
}

/**
 * "sandbox 1609" -> "sandbox 1609 #2" -> "sandbox 1609 #3": a new CA needs its own subject, since
 * OpenSSL finds issuers and CRLs by subject name, and two CAs of one name in a bundle are a trap.
 */
export function nextCaCommonName(currentCn: string): string {
  const prefix = caSubjectCN('');
  const base = currentCn.startsWith(prefix) ? currentCn.slice(prefix.length) : currentCn;
  const m = /^(.*) #(\d+)$/.exec(base);
  return m === null ? `${base} #2` : `${m[1] ?? ''} #${Number(m[2]) + 1}`;
}

export interface NextCaOptions {
  /** Default: the current CA's key size. */
  keyBits?: number;
  /** Default: the current CA's lifetime. */
  validityDays?: number;
  now?: Date;
}

/** Makes a new CA in the store (not trusted, not issuing yet) and returns its serial. */
export async function createNextCa(dir: string, opts: NextCaOptions = {}): Promise<string> {
  const current = await loadCa(dir);
  const now = opts.now ?? new Date();
  const keyBits = opts.keyBits ?? current.key.asymmetricKeyDetails?.modulusLength ?? 3072;
  const lifetimeDays = Math.round((current.notAfter.getTime() - current.notBefore.getTime()) / DAY_MS);
  const pair = await generateKeyPair(keyBits);
  const certPem = renderCaCertificate(pair.publicKeyPem, privateKeyObject(pair.privateKeyPem, 'new CA key'), {
    commonName: nextCaCommonName(commonNameOf(new X509Certificate(current.certPem).subject)),
    validityDays: opts.validityDays ?? Math.max(1, lifetimeDays),
    now,
  });
  const serial = normalizeSerial(new X509Certificate(certPem).serialNumber);
  await withPkiLock(dir, async () => {
    await storeCurrentCa(dir);
    await storeCa(dir, certPem, pair.privateKeyPem, serial);
  });
  return serial;
}

/**
 * Rewrites the bundle to exactly these CAs (the current issuer first, whatever the order given)
 * and re-signs ca/crl.pem so it holds a current CRL for each of them.
 */
export async function setTrustedCas(dir: string, serials: readonly string[], opts: { now?: Date } = {}): Promise<void> {
  await withPkiLock(dir, async () => {
    const current = await loadCa(dir);
    const wanted = [...new Set(serials.map(normalizeSerial))];
    if (!wanted.includes(normalizeSerial(current.serial))) {
      throw new ExitError(`the bundle must trust the current issuer ${current.serial}: switch the issuer before removing its CA`);
    }
    const ordered = [normalizeSerial(current.serial), ...wanted.filter((s) => s !== normalizeSerial(current.serial))];
    const cas = await Promise.all(ordered.map((s) => loadCaBySerial(dir, s)));
    await writeFileAtomic(pkiPaths(dir).caBundle, renderBundle(cas), 0o644);
    await writeCrl(dir, current, await readIndex(dir), { now: opts.now ?? new Date() });
  });
}

/**
 * Makes a stored CA the current issuer (the previous one stays in the store). Crash-safe: the
 * store copy is the source, so running it again after an interruption repairs a half-written
 * ca/ca.key + ca/ca.crt pair; the pair is checked before this returns.
 */
export async function switchIssuer(dir: string, serial: string, opts: { now?: Date } = {}): Promise<void> {
  const want = normalizeSerial(serial);
  await withPkiLock(dir, async () => {
    const paths = pkiPaths(dir);
    const stored = pkiPaths(rolloverPaths(dir).caStore(want));
    const [certPem, keyPem] = await Promise.all([readIfExists(stored.caCert), readIfExists(stored.caKey)]);
    if (certPem === undefined || keyPem === undefined) throw new ExitError(`CA ${want} is not in the store ${rolloverPaths(dir).caStore(want)}`);
    const current = await loadCa(dir).catch(() => undefined);
    if (current !== undefined && normalizeSerial(current.serial) === want && caKeyMatches(current)) return;
    // The outgoing issuer must stay loadable (its CRL is still published while peers trust it).
    if (current !== undefined && caKeyMatches(current)) await storeCurrentCa(dir);
    await writeFileAtomic(paths.caKey, keyPem, 0o600);
    await writeFileAtomic(paths.caCert, certPem, 0o644);
    const now = await loadCa(dir);
    if (!caKeyMatches(now)) throw new ExitError(`after switching the issuer, ${paths.caKey} does not match ${paths.caCert}: run the switch again`);
    // The CRL file lists the current issuer first.
    await writeCrl(dir, now, await readIndex(dir), { now: opts.now ?? new Date() });
  });
}
