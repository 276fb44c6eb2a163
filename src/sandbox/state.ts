/**
 * `STATE/state.json`: what a sandbox consists of. It is written (atomically) BEFORE each object
 * it lists is created, so a `down` after an `up` killed at any point still finds everything.
 * Also the lock that keeps two `up`/`down` runs on one state directory apart.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ExitError } from '../errors.js';
import { readIfExists, writeFileAtomic } from '../fsx.js';
import type { SandboxPaths } from '../paths.js';
import { acquireLockFile, type HeldLockFile } from '../lock.js';
import type { Datapath } from './plan.js';

export const STATE_VERSION = 1;

export interface SandboxState {
  version: typeof STATE_VERSION;
  id: string;
  stateDir: string;
  /** Directories `up` created, outermost first; `down` removes them (innermost first) when empty. */
  createdDirs: string[];
  /** Every namespace ever created for this sandbox and not yet removed. */
  namespaces: string[];
  workers: number;
  /** VM names bound by the last `up` (so a smaller `--workers` can unbind the rest). */
  vms: string[];
  datapath: Datapath;
  supervisor?: 'own' | 'systemd';
  /** Workers run neutron-ovn-metadata-agent (`up --metadata-agent`). */
  metadataAgent?: boolean;
  /** ...in podman containers of this image. */
  metadataImage?: string;
  /** `up --tls native` made it (absent: stunnel); fixed for the sandbox's life. */
  tls?: 'native';
  /** `starting` until an `up` has finished every step. */
  phase: 'starting' | 'up';
  updatedAt: string;
}

export async function readState(paths: SandboxPaths): Promise<SandboxState | undefined> {
  const raw = await readIfExists(paths.state);
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new ExitError(`${paths.state}: not valid JSON (${(err as Error).message}); remove the sandbox's namespaces by hand or restore the file`, 1);
  }
  const s = parsed as Partial<SandboxState>;
  if (s.version !== STATE_VERSION || typeof s.id !== 'string' || !Array.isArray(s.namespaces)) {
    throw new ExitError(`${paths.state}: not a sandbox state file of version ${STATE_VERSION}`, 1);
  }
  return {
    version: STATE_VERSION,
    id: s.id,
    stateDir: s.stateDir ?? paths.dir,
    createdDirs: Array.isArray(s.createdDirs) ? s.createdDirs.map(String) : [],
    namespaces: s.namespaces.map(String),
    workers: typeof s.workers === 'number' ? s.workers : 0,
    vms: Array.isArray(s.vms) ? s.vms.map(String) : [],
    datapath: s.datapath === 'system' ? 'system' : 'netdev',
    ...(s.supervisor === undefined ? {} : { supervisor: s.supervisor }),
    ...(s.metadataAgent === true ? { metadataAgent: true } : {}),
    ...(typeof s.metadataImage === 'string' ? { metadataImage: s.metadataImage } : {}),
    ...(s.tls === 'native' ? { tls: 'native' as const } : {}),
    phase: s.phase === 'up' ? 'up' : 'starting',
    updatedAt: typeof s.updatedAt === 'string' ? s.updatedAt : '',
  };
}

export async function writeState(paths: SandboxPaths, state: SandboxState): Promise<void> {
  state.updatedAt = new Date().toISOString();
  await writeFileAtomic(paths.state, `${JSON.stringify(state, null, 2)}\n`, 0o644);
}

/**
 * `mkdir -p` that reports which directories it created (outermost first), so `down` can remove
 * exactly those and never a directory that was there before.
 */
export async function mkdirpTracked(dir: string): Promise<string[]> {
  const missing: string[] = [];
  let cur = path.resolve(dir);
  for (;;) {
    try {
      await fs.stat(cur);
      break;
    } catch {
      missing.unshift(cur);
      const parent = path.dirname(cur);
      if (parent === cur) break;
      cur = parent;
    }
  }
  await fs.mkdir(dir, { recursive: true });
  return missing;
}

export type HeldLock = HeldLockFile;

/**
 * The sandbox's lock (src/lock.ts): a second `up`/`down` fails at once while a live one holds it;
 * a lock whose holder is gone (an `up` killed with -9) is taken over: that is the crash the next
 * `up` is meant to repair.
 */
export function acquireLock(lockFile: string, what: string): Promise<HeldLock> {
  return acquireLockFile(lockFile, {
    waitMs: 0,
    createDir: true,
    busy: (holder) => new ExitError(`another ovn-deploy (pid ${holder ?? '?'}) is working on this sandbox (${what}); wait for it or stop it`, 1),
  });
}

