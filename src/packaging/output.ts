/**
 * The apply step of a build: places the artifacts' files in the output directory, removes files
 * a previous build's manifest listed there but this build does not produce, and writes
 * build-manifest.json. Unchanged files are left alone.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fsx.js';
import { buildOutputPaths } from '../paths.js';
import { sha256File } from './hash.js';
import { renderManifest, type BuildManifest } from './manifest.js';
import type { ArtifactStore, StoredArtifact } from './store.js';

export interface OutputGroup {
  /** Folder inside the output directory ('' for the top). */
  subdir: string;
  artifacts: StoredArtifact[];
}

export interface OutputReport {
  manifestPath: string;
  manifest: BuildManifest;
  written: string[];
  unchanged: string[];
  removed: string[];
}

async function readManifest(file: string): Promise<BuildManifest | undefined> {
  return fs.readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as BuildManifest,
    () => undefined,
  );
}

export async function writeOutputs(outDir: string, groups: readonly OutputGroup[], store: ArtifactStore): Promise<OutputReport> {
  const out = buildOutputPaths(outDir);
  await fs.mkdir(out.dir, { recursive: true });
  const subdirOf = new Map<string, string>();
  for (const g of groups) for (const a of g.artifacts) subdirOf.set(a.hash, g.subdir);
  const manifest = renderManifest(
    groups.flatMap((g) => g.artifacts),
    (a) => subdirOf.get(a.hash) ?? '',
  );
  const report: OutputReport = { manifestPath: out.manifest, manifest, written: [], unchanged: [], removed: [] };
  const wanted = new Set(manifest.artifacts.flatMap((a) => a.files.map((f) => f.path)));

  const previous = await readManifest(out.manifest);
  for (const rel of previous?.artifacts.flatMap((a) => a.files.map((f) => f.path)) ?? []) {
    // Only plain relative paths inside the output directory are ours to remove.
    if (wanted.has(rel) || path.isAbsolute(rel) || rel.split('/').includes('..')) continue;
    const p = path.join(out.dir, rel);
    if (await fs.rm(p).then(() => true, () => false)) report.removed.push(p);
  }
  for (const a of manifest.artifacts) {
    for (const f of a.files) {
      const dest = path.join(out.dir, f.path);
      const have = await sha256File(dest).catch(() => undefined);
      if (have === f.sha256) {
        report.unchanged.push(dest);
        continue;
      }
      await fs.mkdir(path.dirname(dest), { recursive: true });
      const tmp = `${dest}.tmp-${process.pid}`;
      await fs.copyFile(store.filePath(a.hash, f.file), tmp);
      await fs.rename(tmp, dest);
      report.written.push(dest);
    }
  }
  await writeFileAtomic(out.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
  return report;
}
