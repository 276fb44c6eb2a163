/**
 * What a render of --out depends on, as one digest, and what the files it wrote looked like
 * afterwards: when neither changed, a render has nothing to do and skips rendering at all (the
 * way make compares inputs and outputs). Without this, re-rendering an unchanged 1,000-host site
 * cost a full render, a signature check per host and a read of every file.
 *
 * The digest covers the validated inventory, the PKI's public files, the CA certificate that
 * signs, the metadata secret, the generator string and the renderer itself (this package's
 * code and templates), so a changed input or a changed ovn-deploy renders again. A file's
 * stamp is its inode, size and change time (ctime): a write, a rename over it, a chmod or a
 * `touch -d` all change the ctime, and no system call sets it back.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { templatesDir } from '../paths.js';

export interface RenderInputs {
  inventory: unknown;
  caBundlePem: string;
  crlPem: string;
  signerCertPem: string;
  metadataSecret: string | undefined;
  generator: string;
}

/** `ino:size:ctimeNs` of a regular file, or undefined (missing, a link, not a file). */
export function fileStamp(file: string): string | undefined {
  const st = fs.lstatSync(file, { bigint: true, throwIfNoEntry: false });
  if (st === undefined || !st.isFile()) return undefined;
  return `${st.ino}:${st.size}:${st.ctimeNs}`;
}

function hashTree(hash: ReturnType<typeof createHash>, dir: string, keep: (name: string) => boolean): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) hashTree(hash, p, keep);
    else if (e.isFile() && keep(e.name)) hash.update(`${p}\0`).update(fs.readFileSync(p)).update('\0');
  }
}

let code: string | undefined;
/** sha256 of this package's code (the folder this module was loaded from: dist/ or src/) and templates. */
function codeFingerprint(): string {
  if (code === undefined) {
    const hash = createHash('sha256');
    hashTree(hash, path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'), (n) => /\.(js|ts)$/.test(n));
    hashTree(hash, templatesDir, () => true);
    code = hash.digest('hex');
  }
  return code;
}

export function renderInputsDigest(i: RenderInputs): string {
  return createHash('sha256')
    .update(JSON.stringify({ ...i, metadataSecret: i.metadataSecret ?? null, code: codeFingerprint() }))
    .digest('hex');
}
