/**
 * File writes: atomic (temp file + rename in the same directory), with explicit modes, and
 * the single apply step that turns a rendered plan into files and reports what it changed.
 *
 * Writes go in batches: every temp file of a batch is written first, then their data is made
 * durable in one flush, then every rename happens, then one more flush makes the renames
 * durable. A crash (or kill -9) at any moment leaves each file with its complete old or complete
 * new content, and a batch of thousands of files costs two filesystem syncs instead of one fsync
 * per file (3-4 ms each on this machine's disk).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fsSync, { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { InputError, inputError } from './errors.js';

export interface FileContent {
  content: string | Uint8Array;
  /** Octal mode, e.g. 0o600 for private keys; default 0o644. */
  mode?: number;
}

/** A rendered plan: path (relative to an apply root, or absolute) -> content. */
export type RenderedFiles = Map<string, FileContent>;

export interface FileWrite extends FileContent {
  file: string;
}

/** Up to this many files are fsynced one by one (in parallel); more share a filesystem sync. */
const FSYNC_EACH_MAX = 16;

const fsyncFd = promisify(fsSync.fsync);

/** Temp files are dot files beside their target; a crashed batch leaves only these behind. */
export function isTempFile(name: string): boolean {
  return /^\..+\.[0-9a-f]{12}\.tmp$/.test(path.basename(name));
}

/** Temp names of one batch: a random 48-bit start, then consecutive (one random draw per batch, not per file). */
function tempNamer(stagingDir: string | undefined): (file: string) => string {
  let next = randomBytes(6).readUIntBE(0, 6);
  return (file) => {
    const id = (next++ % 2 ** 48).toString(16).padStart(12, '0');
    return path.join(stagingDir ?? path.dirname(file), `.${path.basename(file)}.${id}.tmp`);
  };
}

/**
 * syncfs(2) through coreutils' `sync -f` (Node has no binding): one call per filesystem flushes
 * every file of the batch. False when it is not available, so the caller fsyncs each file.
 */
async function syncFilesystems(paths: readonly string[]): Promise<boolean> {
  // A file is on its directory's file system (the batch's files are new ones, never mount
  // points): one stat per directory, not one per file.
  const byDevice = new Map<number, string>();
  for (const d of new Set(paths.map((p) => path.dirname(p)))) {
    const dev = fsSync.statSync(d, { throwIfNoEntry: false })?.dev;
    if (dev !== undefined && !byDevice.has(dev)) byDevice.set(dev, d);
  }
  try {
    await Promise.all([...byDevice.values()].map((p) => promisify(execFile)('sync', ['-f', p], { timeout: 300_000 })));
    return true;
  } catch {
    return false;
  }
}

async function fsyncEach(paths: readonly string[]): Promise<void> {
  await Promise.all(
    paths.map(async (p) => {
      const fd = fsSync.openSync(p, 'r');
      try {
        await fsyncFd(fd);
      } finally {
        fsSync.closeSync(fd);
      }
    }),
  );
}

/** Makes the data (or, for directories, the entries) of `paths` durable. */
async function flush(paths: readonly string[]): Promise<void> {
  if (paths.length === 0) return;
  if (paths.length > FSYNC_EACH_MAX && (await syncFilesystems(paths))) return;
  await fsyncEach(paths);
}

/**
 * `mkdir -p` that throws the real reason: Node's recursive mkdir reports ENOENT when a parent is
 * on a read-only or full file system.
 */
export function mkdirs(dir: string, parentMade = false): void {
  try {
    fsSync.mkdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && fsSync.statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true) return;
    if (code !== 'ENOENT' || parentMade || path.dirname(dir) === dir) throw err;
    mkdirs(path.dirname(dir));
    mkdirs(dir, true);
  }
}

/** A new directory the caller already wrote whole below the staging directory (TreeWriter). */
export interface StagedTree {
  /** Where it goes: must not exist yet. */
  dir: string;
  /** Its copy, a directory directly below the staging directory. */
  copy: string;
  /** Every file in the copy (absolute paths): what the flush must make durable. */
  files: readonly string[];
}

export interface BatchOptions {
  /**
   * Write the temp files here (created, must not exist yet, removed afterwards) instead of beside each target:
   * a batch killed before its renames then leaves one directory to remove, not a temp file in
   * every directory. Must be on the targets' filesystem.
   */
  stagingDir?: string;
  /** The staging directory was made by makeStagingDir for this batch (it holds `staged`). */
  stagingMade?: boolean;
  /**
   * Directories written whole in the staging directory: each is renamed into place once, after
   * the data is durable. One rename instead of one per file, and a reader sees all of it or none.
   */
  staged?: readonly StagedTree[];
  /**
   * Files already written and flushed by the caller, renamed onto their targets right after the
   * batch's own renames (same filesystem): with them they switch at once, not one round trip later.
   */
  thenRename?: readonly { from: string; to: string }[];
}

/** Makes a batch's staging directory (0700), or refuses: an existing one (a link planted where the next batch goes) is never written through. */
export function makeStagingDir(staging: string): void {
  mkdirs(path.dirname(staging));
  fsSync.mkdirSync(staging, 0o700);
}

/**
 * Writes every file atomically as one batch; renames happen in the order given (put first what
 * must be in place before the others), after the staged trees. On an error before the renames
 * nothing has changed; the temp files (and the staging directory) are removed. Synchronous file
 * calls on purpose: for thousands of small files the threadpool round trips cost several times
 * the system calls themselves.
 */
export async function writeFilesAtomic(writes: readonly FileWrite[], opts: BatchOptions = {}): Promise<void> {
  const staged = opts.staged ?? [];
  if (writes.length === 0 && staged.length === 0 && (opts.thenRename ?? []).length === 0) {
    if (opts.stagingMade === true && opts.stagingDir !== undefined) fsSync.rmSync(opts.stagingDir, { recursive: true, force: true });
    return;
  }
  const dirs = new Set<string>();
  const temps: string[] = [];
  const tempName = tempNamer(opts.stagingDir);
  const umask = process.umask();
  const staging = opts.stagingDir;
  // Outside the try: a staging directory this batch did not make is never removed either.
  if (staging !== undefined && opts.stagingMade !== true) makeStagingDir(staging);
  try {
    for (const w of writes) {
      const dir = path.dirname(w.file);
      if (!dirs.has(dir)) {
        mkdirs(dir);
        dirs.add(dir);
      }
      const mode = w.mode ?? 0o644;
      const tmp = tempName(w.file);
      // Created with the final mode so a private key is never readable by others, not even briefly.
      const fd = fsSync.openSync(tmp, 'wx', mode);
      temps.push(tmp);
      try {
        fsSync.writeFileSync(fd, w.content);
        if ((mode & umask) !== 0) fsSync.fchmodSync(fd, mode); // the umask narrowed the mode given to open()
      } finally {
        fsSync.closeSync(fd);
      }
    }
    const stagedPaths: string[] = [];
    // Its files, and every directory in it (the entries that name them).
    for (const t of staged) stagedPaths.push(...t.files, ...new Set(t.files.map((f) => path.dirname(f))), t.copy);
    await flush([...temps, ...stagedPaths]);
    for (const t of staged) {
      mkdirs(path.dirname(t.dir));
      fsSync.renameSync(t.copy, t.dir);
      dirs.add(path.dirname(t.dir));
    }
    for (let i = 0; i < writes.length; i++) {
      fsSync.renameSync(temps[i] as string, (writes[i] as FileWrite).file);
      temps[i] = '';
    }
    for (const r of opts.thenRename ?? []) {
      fsSync.renameSync(r.from, r.to);
      dirs.add(path.dirname(r.to)).add(path.dirname(r.from));
    }
  } finally {
    if (staging !== undefined) fsSync.rmSync(staging, { recursive: true, force: true });
    else for (const t of temps) if (t !== '') fsSync.rmSync(t, { force: true });
  }
  await flush([...dirs]);
}

export async function writeFileAtomic(file: string, content: string | Uint8Array, mode = 0o644): Promise<void> {
  await writeFilesAtomic([{ file, content, mode }]);
}

export async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export interface ApplyReport {
  written: string[];
  unchanged: string[];
}

/** Whether `file` already has exactly this content and mode (size and mode first: no read when they differ). */
export function fileMatches(file: string, want: Buffer, mode: number): boolean {
  const st = fsSync.statSync(file, { throwIfNoEntry: false });
  if (st === undefined || !st.isFile() || st.size !== want.length || (st.mode & 0o777) !== mode) return false;
  return fsSync.readFileSync(file).equals(want);
}

/** The writes `plan` under `root` needs (content or mode differ), and the files already right. */
export function plannedWrites(root: string, plan: RenderedFiles): { writes: FileWrite[]; unchanged: string[] } {
  const writes: FileWrite[] = [];
  const unchanged: string[] = [];
  // A file in a directory that does not exist is a write: one stat per directory, not per file.
  const dirExists = new Map<string, boolean>();
  for (const [rel, file] of [...plan.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const target = path.resolve(root, rel);
    const mode = file.mode ?? 0o644;
    const dir = path.dirname(target);
    let exists = dirExists.get(dir);
    if (exists === undefined) {
      exists = fsSync.statSync(dir, { throwIfNoEntry: false }) !== undefined;
      dirExists.set(dir, exists);
    }
    // Bytes only to compare with a file that may exist; a new one is written from the content as is.
    if (!exists) {
      writes.push({ file: target, content: file.content, mode });
      continue;
    }
    const want = Buffer.from(file.content);
    if (fileMatches(target, want, mode)) unchanged.push(target);
    else writes.push({ file: target, content: want, mode });
  }
  return { writes, unchanged };
}

/** Writes every file of `plan` under `root` whose content or mode differs (one batch); returns what it touched. */
export async function applyFiles(root: string, plan: RenderedFiles): Promise<ApplyReport> {
  const { writes, unchanged } = plannedWrites(root, plan);
  await writeFilesAtomic(writes);
  return { written: writes.map((w) => w.file), unchanged };
}

/** The subset of a zod schema that `readJsonFile` needs (keeps this module free of zod). */
interface JsonSchema<T> {
  safeParse(data: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
}

/**
 * Reads a JSON state file of ours and checks it against `schema`: undefined when absent, an
 * InputError naming the file and every bad field when it is not what we wrote.
 */
export async function readJsonFile<T>(file: string, schema: JsonSchema<T>): Promise<T | undefined> {
  const raw = await readIfExists(file);
  if (raw === undefined) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw inputError(`not valid JSON: ${(err as Error).message}`, '', file);
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    throw new InputError(parsed.error.issues.map((i) => ({ file, path: i.path.map(String).join('.'), message: i.message })));
  }
  return parsed.data;
}
