/**
 * apply's own state files on the host: what was last applied (applied.json), the reloads and
 * restarts owed for files already placed (apply-pending.json: a file changed in an apply that
 * stopped early, e.g. needs-certificate, must still trigger its reload next time), the underlay
 * that was moved into br-phy (underlay.json), and the lock that keeps two applies apart.
 */
import { promises as fs } from 'node:fs';
import { z } from 'zod';
import { ExitError } from '../errors.js';
import { readJsonFile, writeFileAtomic } from '../fsx.js';
import { acquireLockFile, type HeldLockFile } from '../lock.js';

const appliedSchema = z.object({
  version: z.literal(1),
  host: z.string(),
  manifestSha256: z.string(),
  appliedAt: z.string(),
  /** Service names of the manifest (a later bundle without one stops it under systemd). */
  services: z.array(z.object({ name: z.string(), unit: z.string() })),
  /** initCommands ran successfully against this cluster. */
  initialized: z.boolean(),
});
export type AppliedState = z.infer<typeof appliedSchema>;

export const readApplied = (file: string): Promise<AppliedState | undefined> => readJsonFile(file, appliedSchema);
export async function writeApplied(file: string, state: AppliedState): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, 0o644);
}

const pendingSchema = z.object({ reload: z.array(z.string()), restart: z.array(z.string()) });
export type PendingActions = z.infer<typeof pendingSchema>;

export async function readPending(file: string): Promise<PendingActions> {
  return (await readJsonFile(file, pendingSchema).catch(() => undefined)) ?? { reload: [], restart: [] };
}
export async function writePending(file: string, pending: PendingActions): Promise<void> {
  if (pending.reload.length === 0 && pending.restart.length === 0) {
    await fs.rm(file, { force: true });
    return;
  }
  await writeFileAtomic(file, `${JSON.stringify(pending, null, 2)}\n`, 0o644);
}

const underlaySchema = z.object({
  bridge: z.string(),
  interface: z.string(),
  /** The address with the prefix length the NIC had, e.g. 192.0.2.10/24. */
  cidr: z.string(),
  /** Routes via a gateway the NIC had (the default route...): they follow the address. */
  routes: z.array(z.object({ dst: z.string(), gateway: z.string() })).default([]),
});
export type UnderlayState = z.output<typeof underlaySchema>;
export const readUnderlay = (file: string): Promise<UnderlayState | undefined> => readJsonFile(file, underlaySchema);
export async function writeUnderlay(file: string, state: UnderlayState): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, 0o644);
}

export type HeldApplyLock = HeldLockFile;

/**
 * The apply lock (src/lock.ts): a second apply waits for the first (up to `waitMs`), and a lock
 * left by a dead apply (kill -9, reboot) is taken over.
 */
export function acquireApplyLock(lockFile: string, waitMs = 600_000): Promise<HeldApplyLock> {
  return acquireLockFile(lockFile, {
    waitMs,
    createDir: true,
    busy: (holder, file) => new ExitError(`another apply (pid ${holder ?? '?'}) holds ${file}; try again when it is done`, 1),
  });
}
