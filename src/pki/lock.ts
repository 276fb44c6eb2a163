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
import { randomBytes } from 'node:crypto';
import { promises as fs, readlinkSync } from 'node:fs';
import path from 'node:path';
import { ExitError } from '../errors.js';
import { pkiPaths } from '../paths.js';
import { readProcStat } from '../supervisor/proc.js';
import { recoverPki } from './recover.js';

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
    return await withLockFile(pkiPaths(key).lock, async () => {
      await recoverPki(key);
      return fn();
    });
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

/** Our pid namespace: a pid means something only inside the namespace that wrote it. */
function pidNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return 'unknown';
  }
}

/** `pid startTicks pidns`: enough to tell a live holder from a dead one whose pid was reused. */
function holderLine(): string {
  return `${process.pid} ${readProcStat(process.pid)?.startTicks ?? 0} ${pidNamespace()}\n`;
}

/**
 * The holder named in a lock file is gone. Only a holder of our own pid namespace can be judged
 * (a PKI directory shared with a container names pids we cannot see); for any other, or another
 * format (an older ovn-deploy), only the mtime rule applies.
 */
async function holderIsDead(lockFile: string): Promise<boolean> {
  const text = await fs.readFile(lockFile, 'utf8').catch(() => undefined);
  const m = /^(\d+) (\d+) (\S+)\n$/.exec(text ?? '');
  if (m === null || m[3] !== pidNamespace() || m[3] === 'unknown') return false;
  const stat = readProcStat(Number(m[1]));
  return stat === undefined || stat.state === 'Z' || stat.startTicks !== Number(m[2]);
}

/** Creates the lock file with its content already in it: there is never an empty lock file. */
async function tryCreate(lockFile: string): Promise<boolean> {
  const tmp = `${lockFile}.${randomBytes(6).toString('hex')}.tmp`;
  await fs.writeFile(tmp, holderLine(), { mode: 0o600, flag: 'wx' });
  try {
    await fs.link(tmp, lockFile);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

async function acquire(lockFile: string): Promise<void> {
  const deadline = Date.now() + WAIT_LOCK_MS;
  let delay = 5;
  for (;;) {
    if (await tryCreate(lockFile)) return;
    const stat = await fs.stat(lockFile).catch(() => undefined);
    if (stat !== undefined && (Date.now() - stat.mtimeMs > STALE_LOCK_MS || (await holderIsDead(lockFile)))) {
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
