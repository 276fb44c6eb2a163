/**
 * The central's side of `restore` on a site, run there over SSH by the shipped tool
 * (`ovn-deploy backup host ...`): one transaction on the local ovsdb-server's socket, and the
 * disaster-recovery seed put in place or removed. Paths come from hostPaths(), never from input.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ExitError } from '../errors.js';
import { writeFileAtomic } from '../fsx.js';
import { hostPaths } from '../paths.js';
import { transact } from '../tools/ovsdb-rpc.js';
import { parseSnapshot } from '../tools/ovsdb-file.js';
import { DB_NAME, type DbKey } from './target.js';

export async function transactOnHost(db: DbKey, opsJson: string, root = '/'): Promise<void> {
  let ops: unknown;
  try {
    ops = JSON.parse(opsJson);
  } catch {
    throw new ExitError('stdin: the operations are not JSON', 2);
  }
  if (!Array.isArray(ops)) throw new ExitError('stdin: expected a JSON array of OVSDB operations', 2);
  const hp = hostPaths(root);
  await transact(db === 'nb' ? hp.ovn.nbSock : hp.ovn.sbSock, DB_NAME[db], ops);
}

/** The seed for `db`'s next create-cluster (0600 in a 0700 directory); a symlink anywhere on the way is refused. */
export async function placeSeedOnHost(db: DbKey, content: Buffer, root = '/'): Promise<void> {
  const snap = parseSnapshot(content);
  if (snap.schema.name !== DB_NAME[db]) throw new ExitError(`stdin holds ${snap.schema.name}, expected ${DB_NAME[db]}`, 2);
  const file = hostPaths(root).restoreSeed(DB_NAME[db]);
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await fs.lstat(dir);
  if (!st.isDirectory()) throw new ExitError(`${dir} is not a directory (a symlink is not followed)`, 1);
  await fs.chmod(dir, 0o700);
  await writeFileAtomic(file, content, 0o600);
}

export async function removeSeedOnHost(db: DbKey, root = '/'): Promise<void> {
  const file = hostPaths(root).restoreSeed(DB_NAME[db]);
  const st = await fs.lstat(file).catch(() => undefined);
  if (st === undefined) return;
  if (!st.isFile()) throw new ExitError(`${file} is not a regular file: left alone`, 1);
  await fs.unlink(file);
}
