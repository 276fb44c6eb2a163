/**
 * Serialises changes to one PKI directory: a promise chain for callers in this process (cheap,
 * and fair: first come, first served) and an exclusive lock file for other processes (two
 * `ovn-deploy pki issue` runs at once must not lose an index entry).
 *
 * The lock file names its holder (pid and start time, written before the file appears, by a
 * hard link of a complete temp file), so a holder killed with -9 is recognised at once and its
 * lock taken over; and whoever takes the lock first finishes what a killed holder left
 * (recover.ts) before changing anything.
 */
import path from 'node:path';
import { ExitError } from '../errors.js';
import { withLockFile, type LockFileOptions } from '../lock.js';
import { pkiPaths } from '../paths.js';
import { serializer } from '../tools/retry.js';
import { recoverPki } from './recover.js';

// The lock-file design itself lives in src/lock.ts (every lock of ovn-deploy uses it).
export { STALE_LOCK_MS } from '../lock.js';

/** How long to wait for another process before giving up. */
const WAIT_LOCK_MS = 60_000;
const PKI_LOCK: LockFileOptions = {
  waitMs: WAIT_LOCK_MS,
  busy: (_holder, lockFile) => new ExitError(`the PKI directory is locked by another process (${lockFile}); if no ovn-deploy is running, remove that file`),
};

const inProcess = serializer();

export async function withPkiLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const key = path.resolve(dir);
  return inProcess(key, () =>
    withLockFile(pkiPaths(key).lock, PKI_LOCK, async () => {
      await recoverPki(key);
      return fn();
    }),
  );
}
