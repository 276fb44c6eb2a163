/**
 * What the certificate lifecycle does ON a host, below its root: make a new key and CSR (the key
 * never leaves the host), put the new key in place keeping the previous one, put it back, tell
 * whether key and certificate match, write the public TLS files, follow a new CA bundle with the
 * bundle trust pin, reload a TLS service. The sandbox calls these in-process (a host is a root
 * directory of this machine); a real host runs them through `ovn-deploy certs host ...` over SSH
 * (commands/certs-host.ts). Every path comes from hostPaths(root): a caller names files by kind,
 * never by path, so nothing outside the host's PKI directory can be written through here.
 */
import { createPrivateKey } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { chooseServices } from '../apply/index.js';
import { trustPinFile, updatePin } from '../apply/trust.js';
import { bundleServiceSchema, MANIFEST_FILE, type BundleService } from '../bundle/manifest.js';
import { pemCertificatesOf, SIGNATURE_FILE, verifyManifestSignature } from '../bundle/signature.js';
import { ExitError } from '../errors.js';
import { readIfExists, writeFileAtomic, writeFilesAtomic } from '../fsx.js';
import { hostPaths, rotationBackup, type HostPaths } from '../paths.js';
import { createCsr, generateKeyPair } from '../pki/index.js';
import type { Runner } from '../runner.js';
import { keyMatchesCert } from './cert-facts.js';

/** `certs host read` of a file that does not exist (not an error: a restore then removes it). */
export const ABSENT_EXIT = 3;

/** The public files a rotation, rollover or revocation writes on a host (and their rotation backups). */
export const PUBLIC_FILES = ['cert', 'caBundle', 'crl'] as const;
export type PublicFile = (typeof PUBLIC_FILES)[number];

export interface PublicFileRef {
  kind: PublicFile;
  backup: boolean;
}

/** The kind of a host path, or undefined when it is not one of the public TLS files (or their backups). */
export function publicFileOf(paths: HostPaths, file: string): PublicFileRef | undefined {
  for (const kind of PUBLIC_FILES) {
    if (file === paths.pki[kind]) return { kind, backup: false };
    if (file === rotationBackup(paths.pki[kind])) return { kind, backup: true };
  }
  return undefined;
}

export function publicFilePath(paths: HostPaths, ref: PublicFileRef): string {
  return ref.backup ? rotationBackup(paths.pki[ref.kind]) : paths.pki[ref.kind];
}

/** A regular file (or nothing) at `file`; a symlink or anything else there is refused, never followed. */
async function requireRegularOrAbsent(file: string): Promise<boolean> {
  const st = await fs.lstat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (st === undefined) return false;
  if (!st.isFile()) throw new ExitError(`${file} is not a regular file (a symlink or something else): refusing to touch it`, 2);
  return true;
}

/** A public file's content, or undefined when absent; a symlink or anything but a regular file is refused, not followed. */
export async function readPublicFile(paths: HostPaths, ref: PublicFileRef): Promise<string | undefined> {
  const file = publicFilePath(paths, ref);
  if (!(await requireRegularOrAbsent(file))) return undefined;
  return (await readIfExists(file))?.toString('utf8');
}

export async function writePublicFile(paths: HostPaths, ref: PublicFileRef, content: string | undefined): Promise<void> {
  const file = publicFilePath(paths, ref);
  const exists = await requireRegularOrAbsent(file);
  if (content === undefined) {
    if (exists) await fs.unlink(file);
    return;
  }
  await writeFileAtomic(file, content, 0o644);
}

/**
 * A CSR for the key in the pending slot (pki.keyNext, 0600), made there first when the slot is
 * empty; the current key keeps serving until installPendingPair. The same slot apply's own renewal
 * uses, and like apply this reuses a pending key it finds (an interrupted rotation's, whose
 * certificate may already be signed) rather than replace a key it did not just create. One that
 * is not an RSA key of the policy's size is refused, naming the file, and left where it is.
 */
export async function pendingKeyCsr(paths: HostPaths, req: { name: string; sans: readonly string[]; keyBits: number }): Promise<string> {
  if (await requireRegularOrAbsent(paths.pki.keyNext)) {
    const pem = await fs.readFile(paths.pki.keyNext, 'utf8');
    const bits = (() => {
      try {
        const k = createPrivateKey(pem);
        return k.asymmetricKeyType === 'rsa' ? k.asymmetricKeyDetails?.modulusLength : undefined;
      } catch {
        return undefined;
      }
    })();
    if (bits !== req.keyBits) {
      throw new ExitError(
        `${paths.pki.keyNext}: a pending key is in the way that is not an RSA key of ${req.keyBits} bits${bits === undefined ? '' : ` (it has ${bits})`}; ` +
          'ovn-deploy never replaces a key it did not just create: move it away if no certificate needs it, then run this again',
        2,
      );
    }
    return createCsr(pem, req.name, [...req.sans]);
  }
  const pair = await generateKeyPair(req.keyBits);
  await fs.mkdir(paths.pki.dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(paths.pki.keyNext, pair.privateKeyPem, 0o600);
  return createCsr(pair.privateKeyPem, req.name, [...req.sans]);
}

/** Atomically replaces `to` by a hard link to `from` (both in one directory): no content copied, nothing left half-written. */
async function linkOver(from: string, to: string): Promise<void> {
  const tmp = path.join(path.dirname(to), `.${path.basename(to)}.${process.pid}.link`);
  await fs.rm(tmp, { force: true });
  await fs.link(from, tmp);
  await fs.rename(tmp, to);
}

/**
 * The signed certificate and the pending key become the host's pair in one step on the host, the
 * key it replaces kept as its rotation backup (key.prev). A certificate that does not belong to
 * the pending key is refused (exit 2) before anything changes. The two renames are back to back
 * (about 80 µs apart here): a client that opens the pair in between (ovsdb-client, ovn-nbctl)
 * can still get a mismatched pair, as with any two files, but no longer for the round trip to
 * the host between two steps. The certificate goes first: OVS's stream_ssl_set_key_and_cert
 * (ovsdb-server, ovn-controller in native TLS) re-reads the pair only when both files changed,
 * looking at the key first, so a daemon that polls between the renames sees no change yet and
 * both on its next poll (with the key first it would keep the old pair).
 */
export async function installPendingPair(paths: HostPaths, certPem: string): Promise<void> {
  if (!(await requireRegularOrAbsent(paths.pki.keyNext))) throw new ExitError(`${paths.pki.keyNext}: no pending key to put in place`);
  const pending = await fs.readFile(paths.pki.keyNext, 'utf8');
  if (!keyMatchesCert(pending, certPem)) throw new ExitError(`${paths.pki.cert}: the certificate given does not belong to the pending key ${paths.pki.keyNext}; nothing was changed`, 2);
  await requireRegularOrAbsent(paths.pki.cert);
  await requireRegularOrAbsent(rotationBackup(paths.pki.key));
  if (await requireRegularOrAbsent(paths.pki.key)) await linkOver(paths.pki.key, rotationBackup(paths.pki.key));
  await fs.chmod(paths.pki.keyNext, 0o600);
  // The pending key was made durable when it was written (new-key).
  await writeFilesAtomic([{ file: paths.pki.cert, content: certPem, mode: 0o644 }], { thenRename: [{ from: paths.pki.keyNext, to: paths.pki.key }] });
}

/**
 * A failed rotation's rollback: the key installPendingPair replaced and the certificate it had
 * (undefined: there was none) go back together, renamed into place back to back as they came.
 */
export async function restorePreviousPair(paths: HostPaths, certPem: string | undefined): Promise<void> {
  const prev = rotationBackup(paths.pki.key);
  if (!(await requireRegularOrAbsent(prev))) throw new ExitError(`${prev}: no previous key to restore`);
  await requireRegularOrAbsent(paths.pki.key);
  const hadCert = await requireRegularOrAbsent(paths.pki.cert);
  if (certPem === undefined) {
    if (hadCert) await fs.unlink(paths.pki.cert);
    await linkOver(prev, paths.pki.key);
    return;
  }
  await writeFilesAtomic([
    { file: paths.pki.cert, content: certPem, mode: 0o644 },
    { file: paths.pki.key, content: await fs.readFile(prev), mode: 0o600 },
  ]);
}

/** Whether the host's key belongs to its certificate (read here; the key is not returned). */
export async function keyMatchesOnHost(paths: HostPaths): Promise<boolean> {
  const [key, cert] = await Promise.all([readIfExists(paths.pki.key), readIfExists(paths.pki.cert)]);
  return key !== undefined && cert !== undefined && keyMatchesCert(key.toString('utf8'), cert.toString('utf8'));
}

/**
 * The host's bundle trust pin after its stunnel got `caBundlePem`, by apply's own rule (updatePin):
 * the new CA bundle plus the CA that signed the bundle the host holds now. Without the first, the
 * next deploy (bundles signed by the new CA) is refused once a CA rollover is complete; without
 * the second, `status` (apply --check of the bundle on the host) is refused until that deploy.
 */
export async function followBundleTrust(paths: HostPaths, caBundlePem: string): Promise<void> {
  const pinned = pemCertificatesOf((await readIfExists(trustPinFile(paths)))?.toString('utf8') ?? '');
  const [manifest, sig] = await Promise.all([readIfExists(path.join(paths.bundle, MANIFEST_FILE)), readIfExists(path.join(paths.bundle, SIGNATURE_FILE))]);
  const held = manifest === undefined || sig === undefined ? undefined : verifyManifestSignature(manifest, sig.toString('utf8'), pinned);
  // A bundle that does not verify now never will: only the new CA bundle is trusted then.
  if (held?.ok === true) await updatePin(paths, held.signer, caBundlePem);
  else await writeFileAtomic(trustPinFile(paths), caBundlePem, 0o644);
}

/** The service of the host's applied bundle by name (the bundle it verified when it applied it). */
export async function bundleService(paths: HostPaths, name: string): Promise<BundleService> {
  const raw = await readIfExists(path.join(paths.bundle, MANIFEST_FILE));
  if (raw === undefined) throw new ExitError(`no bundle in ${paths.bundle}: deploy this host first`);
  const services = (JSON.parse(raw.toString('utf8')) as { services?: { name?: unknown }[] }).services ?? [];
  const found = services.find((s) => s.name === name);
  if (found === undefined) throw new ExitError(`the bundle in ${paths.bundle} has no service ${JSON.stringify(name)} (it has: ${services.map((s) => String(s.name)).join(', ')})`);
  return bundleServiceSchema.parse(found);
}

/** Reloads the service as apply does (systemd or the own supervisor), confirmed from its log. */
export async function reloadOnHost(root: string, name: string, runner: Runner): Promise<void> {
  const paths = hostPaths(root);
  const svc = await bundleService(paths, name);
  await chooseServices('auto', root, runner).reload(svc);
}
