/**
 * index.json: every certificate the CA issued, with its status. Read without a lock (writes are
 * atomic renames, so a reader sees the old or the new file, never half of one); changed only
 * inside withPkiLock.
 *
 * The parsed index is cached per process and reused while the file's identity (inode, size,
 * mtime, ctime) is unchanged: with thousands of entries, parsing it again for every signature
 * would cost more than the signature itself.
 */
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { ExitError } from '../errors.js';
import { writeFileAtomic } from '../fsx.js';
import { pkiPaths } from '../paths.js';
import { LEAF_ROLES, type CertStatus, type IndexEntry } from './types.js';

const STATUSES: readonly CertStatus[] = ['valid', 'revoked', 'expired', 'superseded'];

interface Cached {
  identity: string;
  entries: readonly IndexEntry[];
}
const cache = new Map<string, Cached>();

function identity(st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** Copies, so callers may change entries without touching the cache. */
function copy(entries: readonly IndexEntry[]): IndexEntry[] {
  return entries.map((e) => ({ ...e }));
}

export async function readIndex(dir: string): Promise<IndexEntry[]> {
  const file = path.resolve(pkiPaths(dir).index);
  let st: Stats;
  try {
    st = await fs.stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const hit = cache.get(file);
  if (hit !== undefined && hit.identity === identity(st)) return copy(hit.entries);

  const raw = await fs.readFile(file, 'utf8');
  const entries = parseIndex(raw, file);
  // Only cache when the file did not change while it was read.
  const after = await fs.stat(file).catch(() => undefined);
  if (after !== undefined && identity(after) === identity(st)) cache.set(file, { identity: identity(st), entries: copy(entries) });
  return entries;
}

export function parseIndex(raw: string, file: string): IndexEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch (err) {
    throw new ExitError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(data)) throw new ExitError(`${file}: expected a JSON array of certificate entries`);
  data.forEach((e: unknown, i) => {
    const bad = entryProblem(e);
    if (bad !== undefined) throw new ExitError(`${file}: [${i}]: ${bad}`);
  });
  return data as IndexEntry[];
}

function entryProblem(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return 'expected an object';
  const r = e as Record<string, unknown>;
  for (const k of ['serial', 'name', 'subject', 'role', 'host', 'notBefore', 'notAfter', 'status', 'issuer']) {
    if (typeof r[k] !== 'string') return `${k}: expected a string`;
  }
  if (!(LEAF_ROLES as readonly unknown[]).includes(r.role)) return `role: expected one of ${LEAF_ROLES.join(', ')}`;
  if (!(STATUSES as readonly unknown[]).includes(r.status)) return `status: expected one of ${STATUSES.join(', ')}`;
  return undefined;
}

/** serial -> the entry as last rendered and its line: most entries never change once written. */
const lines = new Map<string, { snapshot: IndexEntry; line: string }>();

function sameEntry(a: IndexEntry, b: IndexEntry): boolean {
  const ka = Object.keys(a) as (keyof IndexEntry)[];
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

function lineFor(e: IndexEntry): string {
  const memo = lines.get(e.serial);
  if (memo !== undefined && sameEntry(memo.snapshot, e)) return memo.line;
  const line = `  ${JSON.stringify(e)}`;
  if (lines.size > 200_000) lines.clear();
  lines.set(e.serial, { snapshot: { ...e }, line });
  return line;
}

/** One entry per line: diffable and greppable, and much smaller than fully indented JSON. */
export function renderIndex(entries: readonly IndexEntry[]): string {
  return entries.length === 0 ? '[]\n' : `[\n${entries.map(lineFor).join(',\n')}\n]\n`;
}

/**
 * Reads and renders the index ahead of a change (while a key is being made): the commit, under
 * the lock, then finds it parsed (a stat confirms it is unchanged) and its lines rendered. Only
 * a warm-up: a failure here is reported by the commit's own read.
 */
export async function prefetchIndex(dir: string): Promise<void> {
  try {
    renderIndex(await readIndex(dir));
  } catch {
    // the commit reads the index again and reports what is wrong with it
  }
}

export async function writeIndex(dir: string, entries: readonly IndexEntry[]): Promise<void> {
  cache.delete(path.resolve(pkiPaths(dir).index));
  await writeFileAtomic(path.resolve(pkiPaths(dir).index), renderIndex(entries), 0o644);
  await indexWritten(dir, entries);
}

/** Call after writing `entries` as the index (here or in a caller's batch): keeps the cache right. */
export async function indexWritten(dir: string, entries: readonly IndexEntry[]): Promise<void> {
  const file = path.resolve(pkiPaths(dir).index);
  const st = await fs.stat(file).catch(() => undefined);
  if (st === undefined) cache.delete(file);
  else cache.set(file, { identity: identity(st), entries: copy(entries) });
}
