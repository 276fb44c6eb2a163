/**
 * `ovn-deploy build all`: the RPMs into OUT/rpms (signed, with their dnf repository, when a key is
 * given), then the role images from them into OUT/images, and one OUT/build-summary.json for a CI
 * pipeline to read: every artifact with its files' sha256, inputs, versions (image labels in the
 * images' details) and the signing key. A failing step still writes that summary (ok: false, the
 * step, its log and the log's tail) before the error leaves with a non-zero exit code.
 */
import { promises as fs } from 'node:fs';
import { buildOutputPaths } from '../paths.js';
import { buildImages, type BuildImagesOptions, type BuildImagesResult } from './image-pipeline.js';
import type { BuildManifest, BuildSummary } from './manifest.js';
import { buildRpms, failureOf, writeSummary, type BuildRpmsOptions, type BuildRpmsResult } from './rpm-pipeline.js';
import { withManifestFacts } from './summary.js';

export interface BuildAllOptions {
  outDir: string;
  rpms: Omit<BuildRpmsOptions, 'outDir' | 'command'>;
  images: Omit<BuildImagesOptions, 'rpmsDir' | 'outDir'>;
}

export interface BuildAllResult {
  rpms: BuildRpmsResult;
  images: BuildImagesResult;
  summary: BuildSummary;
}

async function readManifest(file: string): Promise<BuildManifest | undefined> {
  return fs.readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as BuildManifest,
    () => undefined,
  );
}

async function readSummary(dir: string): Promise<BuildSummary | undefined> {
  return fs.readFile(buildOutputPaths(dir).summary, 'utf8').then(
    (t) => JSON.parse(t) as BuildSummary,
    () => undefined,
  );
}

export async function buildAll(opts: BuildAllOptions): Promise<BuildAllResult> {
  const started = Date.now();
  const dirs = buildOutputPaths(opts.outDir);
  const summary: BuildSummary = { ok: false, command: 'build all', durationMs: 0, outDir: dirs.dir, artifacts: [], steps: [], notes: [] };
  let rpms: BuildRpmsResult | undefined;
  try {
    rpms = await buildRpms({ ...opts.rpms, outDir: dirs.rpmsDir, command: 'build all (rpms)' });
    summary.artifacts.push(...rpms.summary.artifacts.map((a) => ({ ...a, ...(a.outputs === undefined ? {} : { outputs: a.outputs.map((o) => ({ ...o, path: `rpms/${o.path}` })) }) })));
    summary.steps.push(...rpms.summary.steps);
    summary.notes.push(...rpms.summary.notes);
    if (rpms.summary.signing !== undefined) summary.signing = rpms.summary.signing;
    const images = await buildImages({ ...opts.images, rpmsDir: dirs.rpmsDir, outDir: dirs.imagesDir });
    summary.artifacts.push(...withManifestFacts(images.summary.artifacts, await readManifest(images.manifestPath), 'images'));
    summary.steps.push(...images.summary.steps);
    summary.notes.push(...images.summary.notes);
    summary.ok = true;
    summary.durationMs = Date.now() - started;
    await writeSummary(dirs.dir, summary);
    return { rpms, images, summary };
  } catch (err) {
    // The failing pipeline's own summary names the exact step (and its log's tail).
    const inner = await readSummary(rpms === undefined ? dirs.rpmsDir : dirs.imagesDir);
    summary.failure = inner?.failure ?? failureOf(rpms === undefined ? 'Build the RPMs' : 'Build the images', err);
    summary.durationMs = Date.now() - started;
    await writeSummary(dirs.dir, summary).catch(() => undefined);
    throw err;
  }
}
