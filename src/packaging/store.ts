/**
 * The artifact cache: one directory per input hash holding the built files and artifact.json.
 * An artifact appears atomically (built elsewhere, renamed into place), so a crashed build never
 * leaves a half artifact that a later build would trust. One build at a time per cache (the work
 * trees are shared), enforced by a lock file naming the holder's pid.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ExitError } from '../errors.js';
import { writeFileAtomic } from '../fsx.js';
import type { BuildCachePaths } from '../paths.js';
import { sha256File } from './hash.js';
import type { RpmPackageInfo } from './rpm.js';

export interface ArtifactFile {
  /** File name inside the artifact (and in the output directory). */
  file: string;
  sha256: string;
  size: number;
  rpm?: RpmPackageInfo;
}

export interface BuildStats {
  durationMs: number;
  /** Compiler runs that were not served by ccache (undefined without ccache). */
  compiled?: number;
  ccacheHits?: number;
  /** Source files compiled, as ccache logged them (first ones only). */
  compiledFiles?: string[];
}

export interface StoredArtifact {
  schema: 1;
  hash: string;
  name: string;
  kind: 'rpms' | 'image';
  version: string;
  release?: string;
  sourceDateEpoch?: number;
  inputs: unknown;
  /** Human-facing description of where the source came from. */
  source?: unknown;
  files: ArtifactFile[];
  build: BuildStats;
  /** Extra facts (image id, size...). */
  details?: Record<string, unknown>;
}

export type NewArtifact = Omit<StoredArtifact, 'schema' | 'files'>;

export class ArtifactStore {
  constructor(readonly paths: BuildCachePaths) {}

  async has(hash: string): Promise<boolean> {
    return fs.stat(this.paths.artifactMeta(hash)).then(
      () => true,
      () => false,
    );
  }

  async read(hash: string): Promise<StoredArtifact> {
    return JSON.parse(await fs.readFile(this.paths.artifactMeta(hash), 'utf8')) as StoredArtifact;
  }

  filePath(hash: string, file: string): string {
    return path.join(this.paths.artifact(hash), file);
  }

  /**
   * Copies `files` into a new artifact and publishes it under its hash. `describe` adds per-file
   * facts (an RPM's name and version) once the copy is in place.
   */
  async publish(meta: NewArtifact, files: readonly string[], describe?: (file: string) => Promise<Partial<ArtifactFile>>): Promise<StoredArtifact> {
    const final = this.paths.artifact(meta.hash);
    const staging = path.join(this.paths.artifacts, `.tmp-${meta.hash.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    await fs.mkdir(staging, { recursive: true });
    try {
      const entries: ArtifactFile[] = [];
      for (const src of [...files].sort()) {
        const name = path.basename(src);
        const dest = path.join(staging, name);
        await fs.copyFile(src, dest);
        const st = await fs.stat(dest);
        entries.push({ file: name, sha256: await sha256File(dest), size: st.size, ...(describe === undefined ? {} : await describe(dest)) });
      }
      const stored: StoredArtifact = { schema: 1, ...meta, files: entries };
      await writeFileAtomic(path.join(staging, 'artifact.json'), `${JSON.stringify(stored, null, 2)}\n`);
      await fs.rm(final, { recursive: true, force: true });
      await fs.rename(staging, final);
      return stored;
    } catch (err) {
      await fs.rm(staging, { recursive: true, force: true });
      throw err;
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the cache's lock (waiting for another build to finish, up to `waitMs`); a lock whose
 * process is gone is taken over. Returns the release function.
 */
export async function lockCache(lockFile: string, waitMs = 60 * 60_000, onWait?: (pid: number) => void): Promise<() => Promise<void>> {
  await fs.mkdir(path.dirname(lockFile), { recursive: true });
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    try {
      const h = await fs.open(lockFile, 'wx', 0o644);
      await h.writeFile(`${process.pid}\n`);
      await h.close();
      return async () => {
        await fs.rm(lockFile, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number.parseInt(await fs.readFile(lockFile, 'utf8').catch(() => ''), 10);
    const st = await fs.stat(lockFile).catch(() => undefined);
    // A file without a pid is being written right now, unless it has been like that for a while.
    const stale = Number.isFinite(holder) ? holder !== process.pid && !alive(holder) : st !== undefined && Date.now() - st.mtimeMs > 5000;
    if (stale) {
      await fs.rm(lockFile, { force: true });
      continue;
    }
    if (!told) onWait?.(holder);
    told = true;
    if (Date.now() > deadline) throw new ExitError(`the build cache is locked by process ${holder} (${lockFile})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
