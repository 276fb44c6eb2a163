/**
 * Serialises changes to one PKI directory: a promise chain for callers in this process (cheap,
 * and fair: first come, first served) and an exclusive lock file for other processes (two
 * `ovn-deploy pki issue` runs at once must not lose an index entry).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ExitError } from '../errors.js';
import { pkiPaths } from '../paths.js';

/** A lock file older than this belongs to a process that died: it is taken over. */
export const STALE_LOCK_MS = 30_000;
/** How long to wait for another process before giving up. */
const WAIT_LOCK_MS = 60_000;

const tails = new Map<string, Promise<void>>();

export async function withPkiLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const key = path.resolve(dir);
  const previous = tails.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = previous.then(() => mine);
  tails.set(key, tail);
  await previous;
  try {
    return await withLockFile(pkiPaths(key).lock, fn);
  } finally {
    release();
    if (tails.get(key) === tail) tails.delete(key);
  }
}

async function withLockFile<T>(lockFile: string, fn: () => Promise<T>): Promise<T> {
  await acquire(lockFile);
  // A holder that is alive keeps touching the file, so only a dead one's lock ever looks stale.
  const heartbeat = setInterval(() => {
    const now = new Date();
    fs.utimes(lockFile, now, now).catch(() => undefined);
  }, STALE_LOCK_MS / 3);
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    await fs.rm(lockFile, { force: true });
  }
}

async function acquire(lockFile: string): Promise<void> {
  const deadline = Date.now() + WAIT_LOCK_MS;
  let delay = 5;
  for (;;) {
    try {
      const handle = await fs.open(lockFile, 'wx', 0o600);
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const stat = await fs.stat(lockFile).catch(() => undefined);
    if (stat !== undefined && Date.now() - stat.mtimeMs > STALE_LOCK_MS) {
      // Re-check right before removing so a lock another process just took over is left alone.
      const again = await fs.stat(lockFile).catch(() => undefined);
      if (again !== undefined && again.ino === stat.ino && again.mtimeMs === stat.mtimeMs) {
        await fs.rm(lockFile, { force: true });
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new ExitError(
        `the PKI directory is locked by another process (${lockFile}); if no ovn-deploy is running, remove that file`,
      );
    }
    await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
    delay = Math.min(delay * 2, 100);
  }
}
