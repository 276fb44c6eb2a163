/**
 * `ovn-deploy down`: stops every daemon of a sandbox, removes its namespaces (and with them every
 * veth, tap and bridge inside) and the files `up` created, and nothing else. What belongs to the
 * sandbox is what state.json lists plus namespaces carrying its `od<id>-` prefix; processes are
 * only ever signalled when they live inside one of those namespaces.
 */
import { existsSync, promises as fs, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ZxRunner, type Runner } from '../runner.js';
import { hostPaths, sandboxPaths } from '../paths.js';
import { OwnSupervisor } from '../supervisor/own.js';
import { identify, signalIfSame, terminatePids, waitForDeath, type ProcIdentity } from '../supervisor/proc.js';
import { Ip, pidsInNetns } from '../tools/netns.js';
import { canonicalDir, sandboxId, sandboxNames } from './naming.js';
import { ownNamespaces } from './network.js';
import { acquireLock, readState } from './state.js';

export interface DownOptions {
  stateDir: string;
  runner?: Runner;
}

export interface DownResult {
  /** False when there was no sandbox in the directory (nothing done). */
  found: boolean;
  id: string;
  stateDir: string;
  namespaces: string[];
  /** Processes still alive in our namespaces after the supervisor stopped, then terminated. */
  stragglers: number[];
  removed: string[];
  warnings: string[];
  durationMs: number;
}

const STRAGGLER_GRACE_MS = 3000;

export async function down(opts: DownOptions): Promise<DownResult> {
  const started = Date.now();
  const runner = opts.runner ?? new ZxRunner();
  const stateDir = canonicalDir(opts.stateDir);
  const id = sandboxId(stateDir);
  const names = sandboxNames(id);
  const paths = sandboxPaths(stateDir);
  const state = await readState(paths).catch(() => undefined);
  const listNamespaces = (): Promise<string[]> => ownNamespaces(runner, names, state?.namespaces ?? []);
  const result: DownResult = { found: false, id, stateDir, namespaces: [], stragglers: [], removed: [], warnings: [], durationMs: 0 };
  const ourEntries = paths.entries.map((e) => path.join(stateDir, e)).filter((p) => existsSync(p));
  // Nothing recorded: only namespaces (of an `up` killed early) can be left, and no supervisor.
  const listedFirst = state === undefined && ourEntries.length === 0 ? await listNamespaces() : undefined;
  if (listedFirst?.length === 0) {
    result.durationMs = Date.now() - started;
    return result;
  }
  result.found = true;
  const lock = existsSync(stateDir) ? await acquireLock(paths.lock, 'down') : undefined;
  try {
    // Each host's own supervisor stops its daemons (dependents first) and then itself, while the
    // namespaces are listed (after the signals: loading the process runner would delay them). If
    // one fails, whatever still runs in our namespaces is stopped below all the same.
    const hostsDir = path.join(stateDir, 'hosts');
    const hosts = existsSync(hostsDir) ? readdirSync(hostsDir, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.isSymbolicLink()).map((e) => e.name) : [];
    const stops = hosts.map(async (h) => {
      try {
        await new OwnSupervisor(hostPaths(paths.hostRoot(h)).state).stop();
      } catch (err) {
        result.warnings.push(`the supervisor of ${h} did not stop cleanly (${err instanceof Error ? err.message : String(err)}); stopping its daemons directly`);
      }
    });
    const [namespaces] = await Promise.all([listedFirst ?? listNamespaces(), ...stops]);
    result.namespaces = namespaces;
    result.stragglers = [...(await killStragglers(namespaces)), ...(await stopOrphanSupervisors(stateDir))];
    // VMs and nodes before the underlay: each namespace takes its veth ends and taps with it.
    await new Ip(runner).deleteNetnsAll([...namespaces].sort((a, b) => Number(a === names.underlayNetns) - Number(b === names.underlayNetns)));
    const entries = ourEntries.filter((e) => e !== paths.lock);
    await Promise.all(entries.map((e) => fs.rm(e, { recursive: true, force: true })));
    result.removed.push(...entries);
  } finally {
    await lock?.release();
  }
  // Directories `up` created, innermost first, and only when nothing else was put in them.
  for (const dir of [...(state?.createdDirs ?? [])].reverse()) {
    try {
      await fs.rmdir(dir);
      result.removed.push(dir);
    } catch {
      // not empty (someone else's files) or already gone: leave it
    }
  }
  result.durationMs = Date.now() - started;
  return result;
}

/**
 * An own supervisor of this state directory that its pid file no longer names (the directory
 * was emptied under it): recognised by its exact command line, `... supervise --dir STATE`.
 */
async function stopOrphanSupervisors(stateDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const i = argv.indexOf('supervise');
    const dir = argv[i + 2] ?? '';
    if (i > 0 && argv[i + 1] === '--dir' && (dir === stateDir || dir.startsWith(`${stateDir}/hosts/`)) && /cli\.js$|ovn-deploy$/.test(argv[i - 1] ?? '')) pids.push(Number(entry));
  }
  // SIGTERM only: a supervisor stops its daemons on the way out; what it leaves is a straggler.
  const ids = pids.map(identify).filter((id): id is ProcIdentity => id !== undefined);
  for (const id of ids) signalIfSame(id, 'SIGTERM');
  await Promise.all(ids.map((id) => waitForDeath(id, STRAGGLER_GRACE_MS)));
  return pids;
}

/**
 * Anything still running inside our namespaces (a daemon orphaned by a supervisor killed with
 * -9, a `ping` from a killed `up`): SIGTERM, then SIGKILL after a grace period.
 */
async function killStragglers(namespaces: readonly string[]): Promise<number[]> {
  const pids = pidsInNetns(namespaces).filter((p) => p !== process.pid);
  await terminatePids(pids, 'SIGTERM', STRAGGLER_GRACE_MS);
  return pids;
}
