/**
 * Finishing what a PKI command killed with -9 left, run by whoever takes the lock next.
 *
 * A batch (leaf-batch.ts) writes every file as a complete, flushed temp file beside its target and
 * then renames them in order: the index first, then the certificates, then the keys. So a killed
 * batch leaves some temp files, and which renames happened tells what to do:
 * - the index's temp file is still there: nothing was renamed; every temp file is dropped (the
 *   certificates in them were never on disk under their name, never handed out);
 * - the index was renamed: a certificate temp file whose serial the index lists as current is
 *   renamed into place (roll forward), and so is a key temp file that matches its certificate;
 *   every other temp file is dropped.
 * `pki init` is finished the same way: a CA certificate whose key was already renamed goes in.
 * Afterwards every certificate file is one the index lists, and no temp file is left.
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isTempFile } from '../fsx.js';
import { pkiPaths } from '../paths.js';
import { readIndex } from './cert-index.js';

/** A lock's own temp file younger than this may belong to a process trying to take the lock. */
const LOCK_TEMP_GRACE_MS = 60_000;

/** The target a temp file `.NAME.<hex>.tmp` stands for. */
function targetOf(temp: string): string {
  return path.join(path.dirname(temp), path.basename(temp).slice(1).replace(/\.[0-9a-f]{12}\.tmp$/, ''));
}

async function tempsIn(dir: string): Promise<string[]> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const found: string[] = [];
  for (const n of names.filter(isTempFile)) {
    const st = await fs.lstat(path.join(dir, n)).catch(() => undefined);
    if (st?.isFile()) found.push(path.join(dir, n));
  }
  return found;
}

const bare = (serial: string): string => serial.toLowerCase().replace(/^0+/, '');

function certOf(pem: string | undefined): X509Certificate | undefined {
  try {
    return pem === undefined ? undefined : new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function keyMatches(keyPem: string | undefined, cert: X509Certificate | undefined): boolean {
  if (keyPem === undefined || cert === undefined) return false;
  try {
    return createPublicKey(keyPem).export({ type: 'spki', format: 'der' }).equals(cert.publicKey.export({ type: 'spki', format: 'der' }));
  } catch {
    return false;
  }
}

const readText = (file: string): Promise<string | undefined> => fs.readFile(file, 'utf8').catch(() => undefined);

/** Runs inside the PKI lock. Cheap when there is nothing to do: four directory listings. */
export async function recoverPki(dir: string): Promise<void> {
  const p = pkiPaths(dir);
  const certsDir = path.dirname(p.cert('x'));
  const keysDir = path.dirname(p.key('x'));
  const [root, ca, certs, keys] = await Promise.all([dir, path.dirname(p.caCert), certsDir, keysDir].map(tempsIn));
  const stale = [...(root ?? []), ...(ca ?? []), ...(certs ?? []), ...(keys ?? [])];
  if (stale.length === 0) return;

  const indexRenamed = !(root ?? []).some((t) => targetOf(t) === path.join(dir, path.basename(p.index)));
  const current = indexRenamed ? new Set((await readIndex(dir)).filter((e) => e.status === 'valid').map((e) => `${e.name}/${bare(e.serial)}`)) : new Set<string>();
  const done = new Set<string>();
  const forward = async (temp: string): Promise<void> => {
    await fs.rename(temp, targetOf(temp));
    done.add(temp);
  };
  for (const t of certs ?? []) {
    const name = path.basename(targetOf(t), '.crt');
    const cert = certOf(await readText(t));
    if (cert !== undefined && current.has(`${name}/${bare(cert.serialNumber)}`)) await forward(t);
  }
  // `pki init` renames the CA key, then its certificate: finish a CA killed in between.
  for (const t of ca ?? []) {
    if (targetOf(t) !== p.caCert || (await readText(p.caCert)) !== undefined) continue;
    if (keyMatches(await readText(p.caKey), certOf(await readText(t)))) await forward(t);
  }
  for (const t of keys ?? []) {
    const name = path.basename(targetOf(t), '.key');
    const cert = certOf(await readText(p.cert(name)));
    if (indexRenamed && keyMatches(await readText(t), cert) && !keyMatches(await readText(p.key(name)), cert)) await forward(t);
  }
  const now = Date.now();
  for (const t of stale) {
    if (done.has(t)) continue;
    if (path.basename(t).startsWith(`.${path.basename(p.lock)}.`)) {
      const st = await fs.lstat(t).catch(() => undefined);
      if (st === undefined || now - st.mtimeMs < LOCK_TEMP_GRACE_MS) continue;
    }
    await fs.rm(t, { force: true });
  }
}
