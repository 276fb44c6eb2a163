/**
 * build-manifest.json: every artifact of a build with its files' sha256, the inputs that named it
 * and the versions. Pure rendering from stored artifacts, so the same inputs give the same
 * manifest whether the artifacts were built now or taken from the cache (timings and cache hits
 * go to build-summary.json instead).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../paths.js';
import type { ArtifactFile, StoredArtifact } from './store.js';

export interface ManifestFile extends ArtifactFile {
  /** Path relative to the manifest's directory. */
  path: string;
}

export interface ManifestArtifact {
  name: string;
  kind: StoredArtifact['kind'];
  hash: string;
  version: string;
  release?: string;
  sourceDateEpoch?: number;
  source?: unknown;
  inputs: unknown;
  details?: Record<string, unknown>;
  files: ManifestFile[];
}

export interface BuildManifest {
  schema: 1;
  generator: string;
  artifacts: ManifestArtifact[];
}

export function generatorName(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { name: string; version: string };
  return `${pkg.name} ${pkg.version}`;
}

/** `fileDir` is where the artifact's files sit, relative to the manifest's directory. */
export function renderManifest(artifacts: readonly StoredArtifact[], fileDir: (a: StoredArtifact) => string, generator = generatorName()): BuildManifest {
  return {
    schema: 1,
    generator,
    artifacts: artifacts.map((a) => ({
      name: a.name,
      kind: a.kind,
      hash: a.hash,
      version: a.version,
      ...(a.release === undefined ? {} : { release: a.release }),
      ...(a.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: a.sourceDateEpoch }),
      ...(a.source === undefined ? {} : { source: a.source }),
      inputs: a.inputs,
      ...(a.details === undefined ? {} : { details: a.details }),
      files: a.files.map((f) => ({ ...f, path: path.posix.join(fileDir(a), f.file) })),
    })),
  };
}

export interface SummaryArtifact {
  name: string;
  hash: string;
  version: string;
  /** Taken from the cache (nothing built). */
  cached: boolean;
  action: string;
  durationMs: number;
  compiled?: number;
  ccacheHits?: number;
  files: string[];
  /** Each file as published, with its digest (from the build manifest). */
  outputs?: { path: string; sha256: string; size: number }[];
  inputs?: unknown;
  source?: unknown;
  /** Fingerprint of the key the files are signed with. */
  signedBy?: string;
  details?: Record<string, unknown>;
}

export interface BuildSummary {
  ok: boolean;
  command: string;
  durationMs: number;
  outDir: string;
  manifest?: string;
  artifacts: SummaryArtifact[];
  steps: { id: string; startMs: number; endMs: number }[];
  failure?: { step: string; message: string; log?: string; logTail?: string };
  /** Set when the RPMs were signed: the key and the signed repository. */
  signing?: { fingerprint: string; uid: string; repository: string; repomdSignature: string; publicKey: string };
  notes: string[];
}
