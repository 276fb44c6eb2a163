/**
 * The registry of test sites (site-hosts.ts): what each site created, persisted as it goes
 * (registered BEFORE each resource is created) so that a later run can remove a site whose creator
 * was killed (SIGKILL, OOM, a timed-out worker), and only such a site: the record names the
 * creator by pid and start time, so a live (or reused) pid is never reaped.
 *
 * The reaper runs as root and deletes what a record names, so it trusts a record only when
 *  - the registry directory is ours: owned by this uid (root in the slow runs), mode 0700, no
 *    symlink (anything else throws: someone else could have planted records there);
 *  - its prefix has the test-site shape and every name carries it (a forged `eth0`, `lo` or a
 *    foreign container is refused, the record left where it is);
 *  - its directory sits directly in os.tmpdir() as `<prefix>-site-*` and is no symlink.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface SiteRecord {
  prefix: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: tells a reused pid from ours. */
  pidStart: string;
  dir: string;
  containers: string[];
  netnses: string[];
  links: string[];
}

/**
 * `od` + 5 hex digits (createTestSite's), or `zz` + up to 5 base36 digits (the hand-made dead site
 * of ssh.slow's reaper test): short enough for 15-char interface names with a suffix.
 */
export const TEST_SITE_PREFIX = /^(od[0-9a-f]{5}|zz[0-9a-z]{1,5})$/;

export const defaultSiteRegistryDir = path.join(os.tmpdir(), 'ovn-deploy-test-sites');

export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Creates the registry directory (0700) or checks that the existing one is ours; throws if not.
 * Returns false when it does not exist and `create` is false.
 */
export function ensureRegistryDir(dir: string, create: boolean): boolean {
  const uid = process.getuid?.() ?? 0;
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (!create) return false;
    mkdirSync(path.dirname(dir), { recursive: true });
    mkdirSync(dir, { mode: 0o700 });
    st = lstatSync(dir);
  }
  const problem = st.isSymbolicLink()
    ? 'is a symlink'
    : !st.isDirectory()
      ? 'is not a directory'
      : st.uid !== uid
        ? `is owned by uid ${st.uid}, not ${uid}`
        : (st.mode & 0o777) !== 0o700
          ? `has mode ${(st.mode & 0o777).toString(8)}, not 700`
          : undefined;
  if (problem !== undefined) throw new Error(`test site registry ${dir} ${problem}: refusing to trust its records (remove it if it is a stale one of yours)`);
  return true;
}

export function saveRecord(rec: SiteRecord, registryDir = defaultSiteRegistryDir): void {
  ensureRegistryDir(registryDir, true);
  const file = path.join(registryDir, `${rec.prefix}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify(rec), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export async function removeRecord(prefix: string, registryDir = defaultSiteRegistryDir): Promise<void> {
  await rm(path.join(registryDir, `${prefix}.json`), { force: true });
}

const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** Why a record (read from `file`) must not be acted on, or undefined if it is a test site's. */
export function recordProblem(rec: unknown, file: string): string | undefined {
  const r = rec as Partial<SiteRecord> | null;
  if (r === null || typeof r !== 'object') return 'not an object';
  if (typeof r.prefix !== 'string' || !TEST_SITE_PREFIX.test(r.prefix)) return `prefix ${String(r.prefix)} is not a test-site prefix`;
  if (path.basename(file) !== `${r.prefix}.json`) return `file name ${path.basename(file)} does not match prefix ${r.prefix}`;
  if (typeof r.pid !== 'number' || !Number.isInteger(r.pid) || r.pid <= 1 || typeof r.pidStart !== 'string') return 'no valid creator pid';
  if (!strings(r.containers) || !strings(r.netnses) || !strings(r.links)) return 'name lists missing';
  // Containers and netnses are `<prefix>-<host>`, links `<prefix>-m|u` (bridges) or `<prefix>m|u<n>` (veths).
  const own = new RegExp(`^${r.prefix}(-[a-z0-9]+|[mu][0-9]+)$`);
  const foreign = [...r.containers, ...r.netnses, ...r.links].filter((n) => !own.test(n));
  if (foreign.length > 0) return `names without the prefix ${r.prefix}: ${foreign.join(', ')}`;
  if (typeof r.dir !== 'string') return 'no directory';
  if (path.dirname(r.dir) !== os.tmpdir() || !new RegExp(`^${r.prefix}-site-[A-Za-z0-9]+$`).test(path.basename(r.dir))) {
    return `directory ${r.dir} is not ${os.tmpdir()}/${r.prefix}-site-*`;
  }
  try {
    if (lstatSync(r.dir).isSymbolicLink()) return `directory ${r.dir} is a symlink`;
  } catch {
    // gone already: nothing to remove there
  }
  return undefined;
}

export interface ReapOptions {
  registryDir?: string;
  /** Removes what a (checked) record names; site-hosts.ts passes the real one. */
  destroy: (rec: SiteRecord) => Promise<void>;
}

/**
 * Removes the sites of dead creators whose records pass recordProblem; refused records are left
 * and reported. Returns the prefixes removed.
 */
export async function reapStaleSites(o: ReapOptions): Promise<{ reaped: string[]; refused: string[] }> {
  const registryDir = o.registryDir ?? defaultSiteRegistryDir;
  if (!ensureRegistryDir(registryDir, false)) return { reaped: [], refused: [] };
  const reaped: string[] = [];
  const refused: string[] = [];
  for (const f of readdirSync(registryDir).filter((n) => n.endsWith('.json'))) {
    const file = path.join(registryDir, f);
    let rec: unknown;
    try {
      if (!lstatSync(file).isFile()) throw new Error('not a regular file');
      rec = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      refused.push(`${f}: ${String(err)}`);
      continue;
    }
    const problem = recordProblem(rec, file);
    if (problem !== undefined) {
      refused.push(`${f}: ${problem}`);
      continue;
    }
    const site = rec as SiteRecord;
    if (processStart(site.pid) === site.pidStart) continue;
    await o.destroy(site);
    await removeRecord(site.prefix, registryDir);
    reaped.push(site.prefix);
  }
  return { reaped, refused };
}
