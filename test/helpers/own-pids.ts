/**
 * Pids of the daemons a slow test started, read from the system (/proc), never from the tool's
 * own status files: a test proves a restart by a new pid and start time, and signals only a pid
 * it has just proved is its daemon (pid > 1, the expected command line and network namespace).
 */
import { readdirSync } from 'node:fs';
import { readCmdline, readProcStat, type ProcIdentity } from '../../src/supervisor/proc.js';
import { pidsInNetns } from '../../src/tools/netns.js';

/** What makes a process the daemon we mean: words of its command line, and its namespace. */
export interface DaemonMatch {
  what: string;
  /** Each must be one of its argv words, or (for a process that retitled itself) a substring. */
  argv: string[];
  /** argv[0] must match, e.g. to pass over a wrapper (an entrypoint script) started with the same words. */
  program?: RegExp;
  netns?: string;
}

function matches(pid: number, m: DaemonMatch, inNs: Set<number> | undefined): boolean {
  if (pid <= 1 || pid === process.pid || (inNs !== undefined && !inNs.has(pid))) return false;
  const argv = readCmdline(pid);
  if (argv === undefined || argv.length === 0) return false;
  if (m.program !== undefined && !m.program.test(argv[0] ?? '')) return false;
  const joined = argv.join(' ');
  return m.argv.every((w) => argv.includes(w) || joined.includes(w));
}

/**
 * The one live process matching `m` whose parent does not match too (a daemon's forked workers
 * share its command line); throws unless exactly one.
 */
export function daemonPid(m: DaemonMatch): ProcIdentity {
  const inNs = m.netns === undefined ? undefined : new Set(pidsInNetns([m.netns]));
  const all = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map(Number)
    .filter((pid) => matches(pid, m, inNs) && !['Z', 'X'].includes(readProcStat(pid)?.state ?? 'X'));
  const roots = all.filter((pid) => !all.includes(readProcStat(pid)?.ppid ?? -1));
  if (roots.length !== 1) throw new Error(`${m.what}: expected one process with ${JSON.stringify(m.argv)}${m.netns === undefined ? '' : ` in ${m.netns}`}, found ${JSON.stringify(roots)}`);
  const pid = roots[0] as number;
  const stat = readProcStat(pid);
  if (stat === undefined) throw new Error(`${m.what}: pid ${pid} vanished`);
  return { pid, startTicks: stat.startTicks };
}

/** Signals `id` only if it is still that very process and still matches `m`. */
export function killVerified(id: ProcIdentity, m: DaemonMatch, signal: NodeJS.Signals = 'SIGKILL'): void {
  const inNs = m.netns === undefined ? undefined : new Set(pidsInNetns([m.netns]));
  if (!Number.isInteger(id.pid) || id.pid <= 1) throw new Error(`${m.what}: refusing to signal pid ${id.pid}`);
  if (readProcStat(id.pid)?.startTicks !== id.startTicks || !matches(id.pid, m, inNs)) throw new Error(`${m.what}: pid ${id.pid} is no longer the process we verified`);
  process.kill(id.pid, signal);
}

/** A different process than `before`: another pid, or the same pid started later. */
export function isRestarted(before: ProcIdentity, after: ProcIdentity): boolean {
  return after.pid !== before.pid || after.startTicks > before.startTicks;
}
