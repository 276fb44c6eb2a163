/**
 * The RPM build plan, pure: from the inputs (source content, spec, options, builder) to the hash
 * that names each artifact, and from what the cache holds to what must be built. Nothing here
 * touches the disk or runs a program; `rpm-pipeline.ts` executes the plan.
 */
import type { BuilderIdentity } from './builder.js';
import { hashOf } from './hash.js';
import type { ResolvedSource } from './sources.js';

/** Bump when the build steps change what they produce for the same inputs. */
export const RECIPE_VERSION = 1;

export interface SourceInputs {
  /** What the content is: `git:<commit>`, `sha256:<tarball digest>` or `tree:<digest>`. */
  content: string;
  version: string;
  /** Part of Release for untagged git snapshots, e.g. `.git1a2b3c4d`. */
  releaseSuffix: string;
  /** autotools versions when configure is generated from the source, else null. */
  bootstrap: string | null;
}

export function sourceInputs(src: ResolvedSource, bootstrapIdentity: string | undefined): SourceInputs {
  const id = src.identity;
  const content = id.kind === 'git' ? `git:${id.commit}` : id.kind === 'tarball' ? `sha256:${id.sha256}` : `tree:${id.treeSha256}`;
  const releaseSuffix = id.kind === 'git' && !id.tagged ? `.git${id.commit.slice(0, 10)}` : '';
  return { content, version: src.version, releaseSuffix, bootstrap: src.needsBootstrap ? (bootstrapIdentity ?? 'unknown') : null };
}

/** Options that change what gets built (jobs, ccache and paths do not, so they are not here). */
export interface OutputOptions {
  buildNumber: number;
  debuginfo: boolean;
  /** An explicit --source-date-epoch; otherwise the source's own date is used. */
  sourceDateEpoch?: number;
}

export interface RpmPlanInput {
  ovs: SourceInputs;
  ovn?: SourceInputs;
  /** Digest of each spec and its extra sources. */
  specs: { openvswitch: string; ovn?: string };
  options: OutputOptions;
  builder: BuilderIdentity;
}

export type RpmArtifactName = 'openvswitch' | 'ovn';

export interface ArtifactInputs {
  recipe: number;
  artifact: RpmArtifactName;
  source: SourceInputs;
  spec: string;
  options: OutputOptions;
  builder: BuilderIdentity;
  /** Hashes of the artifacts this one is built against. */
  dependsOn: Partial<Record<RpmArtifactName, string>>;
}

export interface PlannedArtifact {
  name: RpmArtifactName;
  hash: string;
  inputs: ArtifactInputs;
  release: string;
  /**
   * reuse: in the cache, nothing to do. build: run rpmbuild and publish. tree: in the cache, but
   * OVN needs its build tree and the one on disk is from other inputs: rebuild it, publish nothing.
   */
  action: 'reuse' | 'build' | 'tree';
}

export interface RpmPlan {
  ovs: PlannedArtifact;
  ovn?: PlannedArtifact;
}

export interface CacheState {
  has(hash: string): boolean;
  /** The artifact hash whose build tree is at work/openvswitch, if any. */
  ovsTree?: string;
}

export function artifactInputs(name: RpmArtifactName, source: SourceInputs, spec: string, input: RpmPlanInput, dependsOn: ArtifactInputs['dependsOn']): ArtifactInputs {
  return { recipe: RECIPE_VERSION, artifact: name, source, spec, options: input.options, builder: input.builder, dependsOn };
}

export function planRpms(input: RpmPlanInput, cache: CacheState): RpmPlan {
  const ovsInputs = artifactInputs('openvswitch', input.ovs, input.specs.openvswitch, input, {});
  const ovsHash = hashOf(ovsInputs);
  const ovs: PlannedArtifact = {
    name: 'openvswitch',
    hash: ovsHash,
    inputs: ovsInputs,
    release: `${input.options.buildNumber}${input.ovs.releaseSuffix}`,
    action: cache.has(ovsHash) ? 'reuse' : 'build',
  };
  if (input.ovn === undefined) return { ovs };
  if (input.specs.ovn === undefined) throw new Error('planRpms: OVN source without an OVN spec digest');
  // OVN links OVS's static libraries: a different OVS is a different OVN artifact.
  const ovnInputs = artifactInputs('ovn', input.ovn, input.specs.ovn, input, { openvswitch: ovsHash });
  const ovnHash = hashOf(ovnInputs);
  const ovn: PlannedArtifact = {
    name: 'ovn',
    hash: ovnHash,
    inputs: ovnInputs,
    release: `${input.options.buildNumber}${input.ovn.releaseSuffix}`,
    action: cache.has(ovnHash) ? 'reuse' : 'build',
  };
  if (ovn.action === 'build' && ovs.action === 'reuse' && cache.ovsTree !== ovsHash) ovs.action = 'tree';
  return { ovs, ovn };
}

/** Which steps will compile, for the summary and `--dry-run`. */
export function describePlan(plan: RpmPlan): string[] {
  const line = (a: PlannedArtifact) =>
    `${a.name} ${a.inputs.source.version}-${a.release} [${a.hash.slice(0, 12)}]: ${a.action === 'reuse' ? 'cached' : a.action === 'tree' ? 'cached; rebuild OVS build tree for OVN' : 'build'}`;
  return [plan.ovs, ...(plan.ovn === undefined ? [] : [plan.ovn])].map(line);
}
