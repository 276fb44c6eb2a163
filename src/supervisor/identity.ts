/**
 * "Is this pid ours?" for the two kinds of processes the own supervisor records: the supervisor
 * itself (pid file) and its services (status.json). Anything we cannot prove is ours is never
 * signalled: a recorded pid may since belong to an unrelated process.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SupervisorPaths } from '../paths.js';
import { bootId, identify, readCmdline, type ProcIdentity } from './proc.js';
import type { ServiceRecord, StatusFile } from './state.js';

/** argv of `ovn-deploy supervise --dir DIR` for exactly this state directory. */
export function isSupervisorCmdline(cmdline: readonly string[], stateDir: string): boolean {
  const at = cmdline.indexOf('supervise');
  if (at < 0) return false;
  const dir = cmdline.indexOf('--dir', at);
  const value = dir < 0 ? undefined : cmdline[dir + 1];
  return value !== undefined && path.resolve(value) === path.resolve(stateDir);
}

/** The running supervisor of `stateDir`, proven by its command line; undefined when none. */
export function liveSupervisor(paths: SupervisorPaths, stateDir: string): ProcIdentity | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(paths.pid, 'utf8').trim());
  } catch {
    return undefined;
  }
  const id = identify(pid);
  if (id === undefined) return undefined;
  const cmdline = readCmdline(pid);
  return cmdline !== undefined && isSupervisorCmdline(cmdline, stateDir) ? id : undefined;
}

/**
 * The live process a status record describes, if it provably is that process: same boot, same pid
 * and start time, and the recorded program (or `ip`, before `ip netns exec` has exec'ed it).
 */
export function recordedProcess(record: ServiceRecord, status: StatusFile): ProcIdentity | undefined {
  if (record.pid === undefined || record.startTicks === undefined) return undefined;
  if (status.bootId !== bootId()) return undefined;
  const id = identify(record.pid);
  if (id === undefined || id.startTicks !== record.startTicks) return undefined;
  const program = readCmdline(record.pid)?.[0];
  const expected = [record.argv[0], ...(record.netns === undefined ? [] : ['ip'])];
  return program !== undefined && expected.includes(program) ? id : undefined;
}
