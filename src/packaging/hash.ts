/**
 * Content hashes that name build artifacts: a stable JSON encoding (sorted keys) so the same inputs
 * always give the same hash, file digests, and the digest of a source tree.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** JSON with object keys sorted at every level: equal values give equal strings. */
export function stableJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** The hash of a JSON-able value (undefined fields are ignored, key order does not matter). */
export function hashOf(value: unknown): string {
  return sha256(stableJson(value));
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface TreeEntry {
  /** Relative path with forward slashes. */
  rel: string;
  kind: 'file' | 'symlink';
  executable: boolean;
  mtimeSec: number;
}

/**
 * Digest of a set of files under `root`: path, type, executable bit and content of each, in path
 * order. Ownership and mtimes are left out: they do not change what gets built.
 */
export async function hashTree(root: string, entries: readonly TreeEntry[]): Promise<string> {
  const h = createHash('sha256');
  for (const e of [...entries].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))) {
    const full = path.join(root, e.rel);
    const content = e.kind === 'symlink' ? Buffer.from(await fs.readlink(full)) : await fs.readFile(full);
    h.update(`${e.kind === 'symlink' ? 'l' : e.executable ? 'x' : 'f'} ${e.rel} ${content.length}\n`);
    h.update(content);
    h.update('\n');
  }
  return h.digest('hex');
}

/** Every regular file and symlink under `root` (not following links), skipping names in `skip`. */
export async function walkTree(root: string, skip: ReadonlySet<string> = new Set(['.git'])): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const visit = async (rel: string): Promise<void> => {
    const dir = path.join(root, rel);
    for (const d of await fs.readdir(dir, { withFileTypes: true })) {
      if (skip.has(d.name)) continue;
      const r = rel === '' ? d.name : `${rel}/${d.name}`;
      if (d.isDirectory()) await visit(r);
      else if (d.isFile() || d.isSymbolicLink()) out.push(await treeEntry(root, r));
    }
  };
  await visit('');
  return out;
}

export async function treeEntry(root: string, rel: string): Promise<TreeEntry> {
  const st = await fs.lstat(path.join(root, rel));
  return {
    rel,
    kind: st.isSymbolicLink() ? 'symlink' : 'file',
    executable: (st.mode & 0o111) !== 0,
    mtimeSec: Math.floor(st.mtimeMs / 1000),
  };
}
