/**
 * The one lock-file design (first written for the PKI): an exclusive file that names its holder
 * (pid, start time, pid namespace), written before the file appears, by a hard link of a
 * complete temp file, so there is never an empty lock file. A holder killed with -9 is
 * recognised at once and its lock taken over; a live holder touches the file regularly, so only
 * a dead one's lock ever looks stale (the rule for holders we cannot judge).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, readlinkSync } from 'node:fs';
import path from 'node:path';
import type { ExitError } from './errors.js';
import { readProcStat } from './supervisor/proc.js';

/** A lock file older than this belongs to a process that died: it is taken over. */
export const STALE_LOCK_MS = 30_000;

export interface LockFileOptions {
  /** How long to wait while a live holder keeps the lock; 0 gives up at once. */
  waitMs: number;
  /** The error once waiting is over; `holder` is the pid the file names, when it names one. */
  busy: (holder: number | undefined, lockFile: string) => ExitError;
  /** Create the lock file's directory first (it may not exist yet). */
  createDir?: boolean;
}

export interface HeldLockFile {
  release(): Promise<void>;
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

async function holderOf(lockFile: string): Promise<{ pid: number; startTicks?: number; ns?: string } | undefined> {
  const text = await fs.readFile(lockFile, 'utf8').catch(() => undefined);
  const m = /^(\d+)(?: (\d+) (\S+))?\n$/.exec(text ?? '');
  if (m === null) return undefined;
  return { pid: Number(m[1]), ...(m[2] === undefined ? {} : { startTicks: Number(m[2]), ns: m[3] as string }) };
}

/**
 * The holder named in a lock file is gone. Only a holder of our own pid namespace can be judged
 * (a directory shared with a container names pids we cannot see); for any other, or another
 * format (an older ovn-deploy), only the mtime rule applies.
 */
async function holderIsDead(lockFile: string): Promise<boolean> {
  const h = await holderOf(lockFile);
  if (h?.ns === undefined || h.ns !== pidNamespace() || h.ns === 'unknown') return false;
  const stat = readProcStat(h.pid);
  return stat === undefined || stat.state === 'Z' || stat.startTicks !== h.startTicks;
}

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

async function acquire(lockFile: string, opts: LockFileOptions): Promise<void> {
  if (opts.createDir === true) await fs.mkdir(path.dirname(lockFile), { recursive: true });
  const deadline = Date.now() + opts.waitMs;
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
    if (Date.now() >= deadline) throw opts.busy((await holderOf(lockFile))?.pid, lockFile);
    await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
    delay = Math.min(delay * 2, 100);
  }
}

/** Takes the lock (waiting as `opts` says); release() removes it. */
export async function acquireLockFile(lockFile: string, opts: LockFileOptions): Promise<HeldLockFile> {
  await acquire(lockFile, opts);
  const heartbeat = setInterval(() => {
    const now = new Date();
    fs.utimes(lockFile, now, now).catch(() => undefined);
  }, STALE_LOCK_MS / 3);
  heartbeat.unref();
  return {
    release: async () => {
      clearInterval(heartbeat);
      await fs.rm(lockFile, { force: true });
    },
  };
}

export async function withLockFile<T>(lockFile: string, opts: LockFileOptions, fn: () => Promise<T>): Promise<T> {
  const held = await acquireLockFile(lockFile, opts);
  try {
    return await fn();
  } finally {
    await held.release();
  }
}
