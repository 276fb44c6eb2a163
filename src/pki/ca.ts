/**
 * The certificate authority: creating it (`pki init`) and loading it for signing. A loaded CA is
 * cached per process by file content, so repeated signatures parse neither the certificate nor
 * the key again.
 */
import { createHash, webcrypto, type KeyObject } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as Forge from 'node-forge';
import forge from './forge.js';
import { ExitError, inputError, type Problem } from '../errors.js';
import { readIfExists, writeFileAtomic, writeFilesAtomic } from '../fsx.js';
import { pkiPaths } from '../paths.js';
import { readIndex, writeIndex } from './cert-index.js';
import { withPkiLock } from './lock.js';
import { checkPkiDir, noCaError, privateKeyObject } from './ca-signer.js';
import { takeEarlyKey } from './keygen.js';
import { generateKeyPair, signCertificate } from './native-sign.js';
import { buildCaCertificate, randomSerial, type IssuingCa } from './templates.js';
import type { InitPkiOptions, InitPkiResult } from './types.js';
import { checkKeyBits, checkPositiveInt, throwIfProblems } from './validate.js';

export const DEFAULT_CA_KEY_BITS = 3072;
export const DEFAULT_CA_DAYS = 3650;
export const MAX_DAYS = 36_500;
/** notBefore is set this far in the past so peers with a slightly slow clock accept a new certificate. */
export const CLOCK_SKEW_MS = 5 * 60_000;
export const DAY_MS = 86_400_000;

export interface LoadedCa extends IssuingCa {
  certPem: string;
  /** Lower-case hex serial of the CA certificate (IndexEntry.issuer). */
  serial: string;
  skiHex: string;
  notBefore: Date;
  notAfter: Date;
  key: KeyObject;
  /** The same key for WebCrypto (the CRL generator), imported on first use. */
  cryptoKey(): Promise<webcrypto.CryptoKey>;
}

export { checkPkiDir, noCaError } from './ca-signer.js';

const cache = new Map<string, LoadedCa>();
const CACHE_MAX = 16;
/** File identity -> content key, so an unchanged CA costs two stat calls instead of two reads. */
const byIdentity = new Map<string, string>();

function identity(st: Stats | undefined): string {
  return st === undefined ? '-' : `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

export async function loadCa(dir: string): Promise<LoadedCa> {
  const paths = pkiPaths(dir);
  const statOrUndefined = (f: string) => fs.stat(f).catch(() => undefined);
  const [certStat, keyStat] = await Promise.all([statOrUndefined(paths.caCert), statOrUndefined(paths.caKey)]);
  if (certStat === undefined || keyStat === undefined) throw noCaError(dir);
  const fileKey = `${path.resolve(paths.caCert)}\0${identity(certStat)}\0${identity(keyStat)}`;
  const known = byIdentity.get(fileKey);
  const quick = known === undefined ? undefined : cache.get(known);
  if (quick !== undefined) return quick;

  const [certRaw, keyRaw] = await Promise.all([readIfExists(paths.caCert), readIfExists(paths.caKey)]);
  if (certRaw === undefined || keyRaw === undefined) throw noCaError(dir);
  const certPem = certRaw.toString('utf8');
  const cacheKey = `${certPem}\0${createHash('sha256').update(keyRaw).digest('hex')}`;
  const hit = cache.get(cacheKey);
  if (hit !== undefined) {
    rememberIdentity(fileKey, cacheKey);
    return hit;
  }

  let cert: Forge.pki.Certificate;
  try {
    cert = forge.pki.certificateFromPem(certPem);
  } catch (err) {
    throw new ExitError(`${paths.caCert}: not a readable RSA certificate (${(err as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = privateKeyObject(keyRaw.toString('utf8'), paths.caKey);
  } catch (err) {
    throw new ExitError((err as Error).message);
  }
  const skiExt = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  const skiHex =
    skiExt?.subjectKeyIdentifier ??
    (cert as Forge.pki.Certificate & { generateSubjectKeyIdentifier(): Forge.util.ByteStringBuffer }).generateSubjectKeyIdentifier().toHex();
  let imported: Promise<webcrypto.CryptoKey> | undefined;
  const loaded: LoadedCa = {
    cert,
    certPem,
    serial: cert.serialNumber.toLowerCase(),
    skiHex,
    skiBytes: forge.util.hexToBytes(skiHex),
    notBefore: cert.validity.notBefore,
    notAfter: cert.validity.notAfter,
    key,
    cryptoKey: () =>
      (imported ??= webcrypto.subtle.importKey(
        'pkcs8',
        key.export({ type: 'pkcs8', format: 'der' }),
        { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
        false,
        ['sign'],
      )),
  };
  if (cache.size >= CACHE_MAX) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(cacheKey, loaded);
  rememberIdentity(fileKey, cacheKey);
  return loaded;
}

function rememberIdentity(fileKey: string, cacheKey: string): void {
  if (byIdentity.size >= CACHE_MAX * 4) byIdentity.clear();
  byIdentity.set(fileKey, cacheKey);
}

/** The self-signed CA certificate for a key pair (pure apart from the random serial). */
export function renderCaCertificate(
  publicKeyPem: string,
  privateKey: KeyObject,
  opts: { commonName: string; validityDays: number; now: Date },
): string {
  const cert = buildCaCertificate(forge.pki.publicKeyFromPem(publicKeyPem), {
    serial: randomSerial(),
    notBefore: new Date(opts.now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(opts.now.getTime() + opts.validityDays * DAY_MS),
    commonName: opts.commonName,
  });
  signCertificate(cert, privateKey);
  return forge.pki.certificateToPem(cert);
}

/**
 * Creates the CA, an empty index, the CA bundle and a first CRL. Idempotent: an existing CA is
 * kept (only missing companion files are written).
 */
export async function initPki(dir: string, opts: InitPkiOptions = {}): Promise<InitPkiResult> {
  const problems: Problem[] = [];
  checkKeyBits(opts.keyBits, 'keyBits', problems);
  checkPositiveInt(opts.validityDays, 'validityDays', problems, MAX_DAYS);
  if (opts.commonName !== undefined && opts.commonName.trim() === '') problems.push({ path: 'commonName', message: 'must not be empty' });
  throwIfProblems(problems);

  const paths = pkiPaths(dir);
  const now = opts.now ?? new Date();
  checkPkiDir(dir);
  await fs.mkdir(dir, { recursive: true });
  // The key is made before taking the lock (3072+ bits can take seconds); it is thrown away if
  // the CA turns out to exist already.
  const bits = opts.keyBits ?? DEFAULT_CA_KEY_BITS;
  const fresh = (await readIfExists(paths.caCert)) === undefined;
  // A new CA needs its CRL: @peculiar/x509 (about 150 ms) loads while the key is made.
  const crlModule = fresh ? import('./crl.js') : undefined;
  crlModule?.catch(() => undefined);
  const pair = fresh ? await (takeEarlyKey(bits) ?? generateKeyPair(bits)) : undefined;
  return withPkiLock(dir, async () => {
    const hasCert = (await readIfExists(paths.caCert)) !== undefined;
    const hasKey = (await readIfExists(paths.caKey)) !== undefined;
    if (hasCert && !hasKey) {
      throw new ExitError(`${paths.caCert} exists but its key ${paths.caKey} is missing: restore the key or use a new directory`);
    }
    // A CA key is never replaced: it may be the only copy of a CA whose certificate was moved.
    if (hasKey && !hasCert) {
      throw inputError(
        `${paths.caKey} exists without ${paths.caCert}: refusing to replace a CA key; restore the certificate, or move the key away to start a new CA`,
        'dir',
      );
    }
    const created = !hasCert;
    if (created) {
      const key = pair ?? (await generateKeyPair(bits));
      const certPem = renderCaCertificate(key.publicKeyPem, privateKeyObject(key.privateKeyPem, 'new CA key'), {
        commonName: (opts.commonName ?? os.hostname()).trim(),
        validityDays: opts.validityDays ?? DEFAULT_CA_DAYS,
        now,
      });
      // One batch, key renamed first: the certificate's presence is what marks the directory as
      // initialised, and the two renames leave almost no moment with a key but no certificate.
      await writeFilesAtomic([
        { file: paths.caKey, content: key.privateKeyPem, mode: 0o600 },
        { file: paths.caCert, content: certPem, mode: 0o644 },
      ]);
    }
    const ca = await loadCa(dir);
    if (created || (await readIfExists(paths.caBundle)) === undefined) await writeFileAtomic(paths.caBundle, ca.certPem, 0o644);
    if (created || (await readIfExists(paths.index)) === undefined) await writeIndex(dir, []);
    // A lost CRL is rebuilt from the index: an empty one would quietly un-revoke certificates.
    if (created || (await readIfExists(paths.crl)) === undefined) {
      // @peculiar/x509 (the CRL) is loaded only here: issuing and signing do not need it.
      const { writeCrl } = await (crlModule ?? import('./crl.js'));
      await writeCrl(dir, ca, await readIndex(dir), { now });
    }
    return { created, caCertPath: paths.caCert };
  });
}
