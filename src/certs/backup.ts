/**
 * The public files a rotation replaces (the certificate), kept so a failed rotation can put them
 * back: in memory for the restore, and as `FILE.prev` next to each file for an operator (and
 * across a crash). The key is never read here: the host keeps its previous key itself
 * (Deployment.installPair / restorePair).
 */
import { rotationBackup } from '../paths.js';
import type { Deployment, TlsEndpoint } from './deployment.js';

/** A public file on a host of the deployment. */
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

export async function restoreFiles(backups: readonly Backup[]): Promise<void> {
  for (const b of backups) await b.ref.write(b.content);
}
