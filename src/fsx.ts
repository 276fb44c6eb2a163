/**
 * File writes: atomic (temp file + fsync + rename in the same directory), with explicit modes, and
 * the single apply step that turns a rendered plan into files and reports what it changed.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError, inputError } from './errors.js';

export interface FileContent {
  content: string | Uint8Array;
  /** Octal mode, e.g. 0o600 for private keys; default 0o644. */
  mode?: number;
}

/** A rendered plan: path (relative to an apply root, or absolute) -> content. */
export type RenderedFiles = Map<string, FileContent>;

export async function writeFileAtomic(file: string, content: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  // Created with the final mode so a private key is never readable by others, not even briefly.
  const handle = await fs.open(tmp, 'wx', mode);
  try {
    await handle.writeFile(content);
    await handle.chmod(mode); // umask may have narrowed the mode given to open()
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
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

/** Writes every file of `plan` under `root` whose content or mode differs; returns what it touched. */
export async function applyFiles(root: string, plan: RenderedFiles): Promise<ApplyReport> {
  const report: ApplyReport = { written: [], unchanged: [] };
  for (const [rel, file] of [...plan.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const target = path.resolve(root, rel);
    const mode = file.mode ?? 0o644;
    const want = typeof file.content === 'string' ? Buffer.from(file.content) : Buffer.from(file.content);
    const have = await readIfExists(target);
    const haveMode = have === undefined ? undefined : (await fs.stat(target)).mode & 0o777;
    if (have !== undefined && have.equals(want) && haveMode === mode) {
      report.unchanged.push(target);
      continue;
    }
    await writeFileAtomic(target, want, mode);
    report.written.push(target);
  }
  return report;
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
