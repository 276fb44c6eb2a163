/**
 * What build-summary.json says about each artifact besides timings: every published file with
 * its sha256, the inputs that named the artifact, where its source came from and, when signed,
 * the key's fingerprint. Taken from the build manifest, so the summary and the manifest agree.
 */
import type { BuildManifest, BuildSummary, SummaryArtifact } from './manifest.js';
import type { StoredArtifact } from './store.js';

type Facts = Pick<SummaryArtifact, 'outputs' | 'inputs' | 'source' | 'signedBy' | 'details'>;

function signatureOf(details: Record<string, unknown> | undefined): string | undefined {
  const sig = details?.signature as { fingerprint?: unknown } | undefined;
  return typeof sig?.fingerprint === 'string' ? sig.fingerprint : undefined;
}

/** The manifest's facts about the artifact `a` (matched by hash). */
export function summaryFacts(a: Pick<StoredArtifact, 'hash'> | undefined, manifest: BuildManifest | undefined): Facts {
  const m = a === undefined ? undefined : manifest?.artifacts.find((x) => x.hash === a.hash);
  if (m === undefined) return {};
  const signedBy = signatureOf(m.details);
  return {
    outputs: m.files.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size })),
    inputs: m.inputs,
    ...(m.source === undefined ? {} : { source: m.source }),
    ...(m.details === undefined ? {} : { details: m.details }),
    ...(signedBy === undefined ? {} : { signedBy }),
  };
}

/** Adds the manifest's facts to artifacts of a summary that has none (the image pipeline's). */
export function withManifestFacts(artifacts: readonly SummaryArtifact[], manifest: BuildManifest | undefined, prefix = ''): SummaryArtifact[] {
  return artifacts.map((s) => {
    if (s.outputs !== undefined) return s;
    const facts = summaryFacts(s, manifest);
    return { ...s, ...facts, ...(facts.outputs === undefined ? {} : { outputs: facts.outputs.map((o) => ({ ...o, path: prefix === '' ? o.path : `${prefix}/${o.path}` })) }) };
  });
}

export type { BuildSummary };
