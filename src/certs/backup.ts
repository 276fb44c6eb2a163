/**
 * The files a rotation replaces, kept so a failed rotation can put them back: in memory for the
 * restore, and as `FILE.prev` next to each file for an operator (and across a crash).
 */
import { promises as fs } from 'node:fs';
import { readIfExists, writeFileAtomic } from '../fsx.js';
import { rotationBackup } from '../paths.js';
import { withPkiLock } from '../pki/index.js';
import type { Deployment, TlsEndpoint } from './deployment.js';

/** A file somewhere (a host of the deployment, or the PKI directory on this machine). */
export interface FileRef {
  path: string;
  mode: number;
  read(): Promise<string | undefined>;
  /** `undefined` removes the file. */
  write(content: string | undefined): Promise<void>;
  writeBackup(content: string): Promise<void>;
}

export function hostFile(d: Deployment, e: TlsEndpoint, file: string, mode: number): FileRef {
  return {
    path: file,
    mode,
    read: () => d.read(e, file),
    write: (content) => d.write(e, file, content, mode),
    writeBackup: (content) => d.write(e, rotationBackup(file), content, mode),
  };
}

/**
 * A file of the PKI directory `pkiDir`. Written under the PKI's lock: whoever takes that lock next
 * (another certificate of the same rotation being issued) drops the temp files it finds as a
 * crashed command's leftovers, and a write in flight outside the lock would lose its temp file.
 */
export function pkiFile(pkiDir: string, file: string, mode: number): FileRef {
  return {
    path: file,
    mode,
    read: async () => (await readIfExists(file))?.toString('utf8'),
    write: (content) =>
      withPkiLock(pkiDir, async () => {
        if (content === undefined) await fs.rm(file, { force: true });
        else await writeFileAtomic(file, content, mode);
      }),
    writeBackup: (content) => withPkiLock(pkiDir, () => writeFileAtomic(rotationBackup(file), content, mode)),
  };
}

export interface Backup {
  ref: FileRef;
  /** undefined: the file did not exist (a restore removes it). */
  content: string | undefined;
}

export async function backupFiles(refs: readonly FileRef[]): Promise<Backup[]> {
  return Promise.all(
    refs.map(async (ref) => {
      const content = await ref.read();
      if (content !== undefined) await ref.writeBackup(content);
      return { ref, content };
    }),
  );
}

/** Certificates before keys, as everywhere: OVSDB's own TLS reloads a pair once both changed, in that order. */
export async function restoreFiles(backups: readonly Backup[]): Promise<void> {
  const certsFirst = [...backups].sort((a, b) => Number(a.ref.mode === 0o600) - Number(b.ref.mode === 0o600));
  for (const b of certsFirst) await b.ref.write(b.content);
}
