/**
 * Process identity from /proc. A pid alone can be reused by an unrelated process, so a process is
 * "ours" only when its pid AND its start time (in clock ticks since boot) match what we recorded,
 * on the same boot. Zombies count as dead: PID 1 here reaps orphans only every ~2 s.
 */
import { readFileSync } from 'node:fs';
import { sleep } from '../tools/retry.js';

/** Enough to recognise one process again later. */
export interface ProcIdentity {
  pid: number;
  /** /proc/PID/stat field 22: start time in clock ticks after boot. */
  startTicks: number;
}

export interface ProcStat {
  /** R, S, D, Z, X, ... (field 3). */
  state: string;
  ppid: number;
  /** Process group id (field 5). */
  pgrp: number;
  startTicks: number;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Parses /proc/PID/stat; undefined when the process does not exist. */
export function readProcStat(pid: number): ProcStat | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const text = readText(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  // comm (field 2) may contain spaces and parentheses: fields after it start after the LAST ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  const ppid = Number(rest[1]);
  const pgrp = Number(rest[2]);
  const startTicks = Number(rest[19]);
  if (state === undefined || !Number.isFinite(startTicks)) return undefined;
  return { state, ppid, pgrp, startTicks };
}

/** argv of a live process; empty for zombies and kernel threads, undefined when gone. */
export function readCmdline(pid: number): string[] | undefined {
  const text = readText(`/proc/${pid}/cmdline`);
  if (text === undefined) return undefined;
  const parts = text.split('\0');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

/** The identity of a live process, e.g. right after spawning it. */
export function identify(pid: number): ProcIdentity | undefined {
  const stat = readProcStat(pid);
  if (stat === undefined || stat.state === 'Z' || stat.state === 'X') return undefined;
  return { pid, startTicks: stat.startTicks };
}

/** The very process recorded earlier is still alive (not a reused pid, not a zombie). */
export function isSameProcess(id: ProcIdentity): boolean {
  const now = identify(id.pid);
  return now !== undefined && now.startTicks === id.startTicks;
}

/** Changes on every boot: recorded pids from another boot mean nothing. */
export function bootId(): string {
  return (readText('/proc/sys/kernel/random/boot_id') ?? 'unknown').trim();
}

/**
 * Sends a signal only if `id` is provably still the same process; returns whether it was sent.
 * `group` signals its whole process group (our services lead their own group).
 */
export function signalIfSame(id: ProcIdentity, signal: NodeJS.Signals, group = false): boolean {
  if (!isSameProcess(id)) return false;
  // Only a group it leads: otherwise -pid could name a group that is not ours.
  const asGroup = group && readProcStat(id.pid)?.pgrp === id.pid;
  try {
    process.kill(asGroup ? -id.pid : id.pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}


/**
 * Polls until `id` is dead (or a zombie); false if it still lives after `timeoutMs`. Most daemons
 * exit within milliseconds of their signal, and stops wait on each other (dependents first), so
 * the first looks come soon (2, 4, 8 ... ms) and then every `pollMs`.
 */
export async function waitForDeath(id: ProcIdentity, timeoutMs: number, pollMs = 10, exited?: Promise<unknown>): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 2; ; wait = Math.min(wait * 2, pollMs)) {
    if (!isSameProcess(id)) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    // Our own child: its exit event ends the wait at once instead of at the next poll.
    await (exited === undefined ? sleep(Math.min(wait, left)) : Promise.race([sleep(Math.min(wait, left)), exited]));
  }
}

/**
 * Stops a process we can prove is ours: `signal`, then SIGKILL to its process group after
 * `graceMs`. Returns once it is dead; never touches a process whose identity does not match.
 */
export async function terminate(id: ProcIdentity, signal: NodeJS.Signals, graceMs: number, exited?: Promise<unknown>): Promise<void> {
  if (!signalIfSame(id, signal)) return;
  if (await waitForDeath(id, graceMs, undefined, exited)) return;
  signalIfSame(id, 'SIGKILL', true);
  await waitForDeath(id, 5_000);
}

/**
 * terminate() for processes found by a scan (/proc, a namespace) rather than spawned by us: each
 * is identified first, so a pid reused meanwhile is never signalled. Returns the pids signalled.
 */
export async function terminatePids(pids: readonly number[], signal: NodeJS.Signals, graceMs: number): Promise<number[]> {
  const ids = pids.map(identify).filter((id): id is ProcIdentity => id !== undefined);
  await Promise.all(ids.map((id) => terminate(id, signal, graceMs)));
  return ids.map((id) => id.pid);
}
