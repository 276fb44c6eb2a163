/**
 * `ovn-deploy build rpms`: resolve the sources, plan (hash every input, look in the cache), then
 * build what is missing as a listr2 pipeline of steps with dependencies: OVN's source is fetched
 * and bootstrapped while OVS compiles, and OVN compiles against the OVS build tree (OVS is
 * compiled once). Finally the RPMs and build-manifest.json go to the output directory.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExitError, InputError } from '../errors.js';
import { writeFileAtomic } from '../fsx.js';
import { realProbe, type Probe } from '../packages.js';
import { buildCachePaths, buildOutputPaths, defaultBuildCacheDir, specFiles, type BuildCachePaths } from '../paths.js';
import { ZxRunner, type Runner } from '../runner.js';
import { dagRunner, type Step } from '../ui/dag.js';
import type { ProgressMode } from '../ui/listr.js';
import { autotoolsIdentity, builderIdentity, type BuilderIdentity } from './builder.js';
import { ensureMasquerade, type CcacheSetup } from './ccache.js';
import { hashOf, sha256 } from './hash.js';
import type { BuildSummary, SummaryArtifact } from './manifest.js';
import { writeOutputs, type OutputReport } from './output.js';
import { defaultOvsSpec } from './ovs-default.js';
import { buildPackage, type PackageBuildEnv } from './package-build.js';
import { describePlan, planRpms, sourceInputs, type OutputOptions, type PlannedArtifact, type RpmPlan } from './plan.js';
import { defaultNodeps, hasTool, requireTools, whichTool, type BuildTool } from './preflight.js';
import { prepareSource, type PreparedSource } from './prepare-source.js';
import { writeRepository } from './rpm-repo.js';
import { signedArtifact } from './sign-rpms.js';
import { openSigningKey, type SigningKey, type SigningKeyOptions } from './signing-key.js';
import { summaryFacts } from './summary.js';
import { classifySource, parseSourceArg, type SourceSpec } from './source-spec.js';
import { pinnedVersionFromGit, resolveSource, type ResolvedSource } from './sources.js';
import { StepFailed } from './step-log.js';
import { ArtifactStore, lockCache, type StoredArtifact } from './store.js';
import { ovsRequirement, ovsTooOld } from './version.js';

export interface BuildRpmsOptions {
  ovsSource?: string;
  ovnSource?: string;
  outDir: string;
  cacheDir?: string;
  buildNumber?: number;
  jobs?: number;
  /** Use ccache (default: when installed). */
  ccache?: boolean;
  ccacheDir?: string;
  debuginfo?: boolean;
  sourceDateEpoch?: number;
  nodeps?: boolean;
  rpmbuild?: string;
  /** Put the RPMs in this folder of outDir ('' = outDir itself). */
  rpmSubdir?: string;
  /** Resolve and plan only; build and write nothing. */
  planOnly?: boolean;
  runner?: Runner;
  progress?: ProgressMode;
  probe?: Probe;
  /** Label for the summary, e.g. "build rpms". */
  command?: string;
  /** Sign every RPM with this key and write a signed dnf repository beside them. */
  sign?: SigningKeyOptions;
}

export interface BuildRpmsResult {
  plan: RpmPlan;
  planLines: string[];
  artifacts: StoredArtifact[];
  output?: OutputReport;
  summary: BuildSummary;
}

interface RpmCtx {
  opts: BuildRpmsOptions;
  runner: Runner;
  paths: BuildCachePaths;
  store: ArtifactStore;
  ovsSpec?: SourceSpec;
  ovs?: ResolvedSource;
  ovn?: ResolvedSource;
  builder?: BuilderIdentity;
  autotools?: string;
  plan?: RpmPlan;
  prepared: { ovs?: PreparedSource; ovn?: PreparedSource };
  ovsTree?: string;
  built: Map<string, StoredArtifact>;
  stats: Map<string, SummaryArtifact>;
  failure?: BuildSummary['failure'];
}

/** Digest of a spec and the extra files it installs (units, logrotate...): part of every input hash. */
export async function specDigest(name: 'openvswitch' | 'ovn'): Promise<string> {
  const f = specFiles(name);
  const parts: Record<string, string> = { [`${name}.spec`]: sha256(await fs.readFile(f.spec)) };
  for (const e of (await fs.readdir(f.sourcesDir).catch(() => [] as string[])).sort()) {
    parts[`${name}/${e}`] = sha256(await fs.readFile(path.join(f.sourcesDir, e)));
  }
  return hashOf(parts);
}

function isGitArg(raw: string | undefined): boolean {
  if (raw === undefined) return false;
  try {
    const a = parseSourceArg(raw, '');
    return a.kind === 'git-url' || a.ref !== undefined;
  } catch {
    return false;
  }
}

function requiredTools(opts: BuildRpmsOptions): BuildTool[] {
  const tools: BuildTool[] = ['rpmbuild', 'rpm', 'tar', 'make', 'gcc'];
  // OVN given alone takes OVS from its submodule, which may be a git URL.
  if (isGitArg(opts.ovsSource) || isGitArg(opts.ovnSource) || (opts.ovnSource !== undefined && opts.ovsSource === undefined)) tools.push('git');
  if (opts.sign !== undefined) tools.push('gpg', 'gpgconf', 'rpmsign', 'createrepo_c');
  return tools;
}

function outputOptions(opts: BuildRpmsOptions): OutputOptions {
  return {
    buildNumber: opts.buildNumber ?? 1,
    debuginfo: opts.debuginfo ?? false,
    ...(opts.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: opts.sourceDateEpoch }),
  };
}

async function readTreeStamp(paths: BuildCachePaths): Promise<string | undefined> {
  const t = await fs.readFile(paths.ovsTreeStamp, 'utf8').catch(() => undefined);
  if (t === undefined) return undefined;
  const stamp = JSON.parse(t) as { hash: string; tree: string };
  const exists = await fs.stat(path.join(stamp.tree, 'config.status')).then(
    () => true,
    () => false,
  );
  return exists ? stamp.hash : undefined;
}

function rpmSteps(): Step<RpmCtx>[] {
  return [
    {
      id: 'ovn-source',
      title: 'Resolve the OVN source',
      run: async (ctx) => {
        if (ctx.opts.ovnSource === undefined) return 'OVN: not requested (no --ovn-source)';
        const spec = await classifySource(parseSourceArg(ctx.opts.ovnSource, '--ovn-source'), '--ovn-source');
        ctx.ovn = await resolveSource(spec, 'ovn', { runner: ctx.runner, paths: ctx.paths, flag: '--ovn-source' });
        return `OVN ${ctx.ovn.version} from ${describeIdentity(ctx.ovn)}`;
      },
    },
    {
      id: 'ovs-source',
      title: 'Resolve the Open vSwitch source',
      // OVS defaults come from OVN's submodule pin, so wait for OVN only when a default is needed.
      deps: [],
      run: async (ctx) => {
        ctx.ovs = await resolveSource(ctx.ovsSpec as SourceSpec, 'openvswitch', { runner: ctx.runner, paths: ctx.paths, flag: '--ovs-source' });
        return `Open vSwitch ${ctx.ovs.version} from ${describeIdentity(ctx.ovs)}`;
      },
    },
    {
      id: 'builder',
      title: 'Identify the builder (rpmbuild, compiler)',
      run: async (ctx) => {
        ctx.builder = await builderIdentity(ctx.runner, ctx.opts.rpmbuild ?? 'rpmbuild');
        return `Builder: ${ctx.builder.os} ${ctx.builder.arch}, ${ctx.builder.cc}`;
      },
    },
    {
      id: 'plan',
      title: 'Plan: hash the inputs, look in the cache',
      deps: ['ovs-source', 'ovn-source', 'builder'],
      run: async (ctx) => {
        const ovs = ctx.ovs as ResolvedSource;
        if (ctx.ovn !== undefined) await checkCompatibility(ovs, ctx.ovn, ctx.runner);
        if (ovs.needsBootstrap || ctx.ovn?.needsBootstrap) {
          requireTools(['autoreconf', 'automake', 'libtoolize'], ctx.opts.probe);
          ctx.autotools = await autotoolsIdentity(ctx.runner);
        }
        const cached = new Set<string>();
        const ovsIn = sourceInputs(ovs, ctx.autotools);
        const ovnIn = ctx.ovn === undefined ? undefined : sourceInputs(ctx.ovn, ctx.autotools);
        const input = {
          ovs: ovsIn,
          ...(ovnIn === undefined ? {} : { ovn: ovnIn }),
          specs: { openvswitch: await specDigest('openvswitch'), ...(ctx.ovn === undefined ? {} : { ovn: await specDigest('ovn') }) },
          options: outputOptions(ctx.opts),
          builder: ctx.builder as BuilderIdentity,
        };
        // Two passes: the plan names the hashes, then we ask the store about exactly those.
        const probe = planRpms(input, { has: () => false });
        for (const a of [probe.ovs, probe.ovn]) if (a !== undefined && (await ctx.store.has(a.hash))) cached.add(a.hash);
        const treeHash = await readTreeStamp(ctx.paths);
        ctx.plan = planRpms(input, { has: (h) => cached.has(h), ...(treeHash === undefined ? {} : { ovsTree: treeHash }) });
        const todo = [ctx.plan.ovs, ctx.plan.ovn].filter((a): a is PlannedArtifact => a !== undefined && a.action !== 'reuse');
        return todo.length === 0 ? 'Plan: every artifact is in the cache, nothing to build' : `Plan: build ${todo.map((a) => a.name).join(' and ')}`;
      },
    },
    {
      id: 'ovs-build',
      title: 'Build the Open vSwitch RPMs',
      deps: ['plan'],
      run: async (ctx, task) => {
        const plan = ctx.plan as RpmPlan;
        const a = plan.ovs;
        if (a.action === 'reuse') {
          ctx.built.set(a.name, await ctx.store.read(a.hash));
          record(ctx, a, true, 0);
          return `Open vSwitch RPMs: cached [${a.hash.slice(0, 12)}]`;
        }
        if (ctx.opts.planOnly) return 'Open vSwitch RPMs: would build (--plan)';
        const ovs = ctx.ovs as ResolvedSource;
        const log = ctx.paths.log(`openvswitch-${a.hash.slice(0, 12)}`);
        await fs.rm(log, { force: true });
        task.output = 'preparing the source';
        ctx.prepared.ovs = await prepareSource(ovs, { runner: ctx.runner, paths: ctx.paths, ...(ctx.autotools === undefined ? {} : { bootstrapIdentity: ctx.autotools }), step: 'Prepare the Open vSwitch source', log });
        // The tree on disk is about to be replaced: until this build succeeds it belongs to nobody.
        await fs.rm(ctx.paths.ovsTreeStamp, { force: true });
        task.output = `rpmbuild (log: ${log})`;
        const r = await buildPackage(
          {
            planned: a,
            src: ovs,
            prepared: ctx.prepared.ovs,
            sourceDateEpoch: ctx.opts.sourceDateEpoch ?? ovs.sourceDateEpoch,
            publish: a.action === 'build',
            step: 'Build the Open vSwitch RPMs',
            log,
          },
          await packageEnv(ctx),
        );
        await writeFileAtomic(ctx.paths.ovsTreeStamp, `${JSON.stringify({ hash: a.hash, tree: r.buildTree }, null, 2)}\n`);
        ctx.ovsTree = r.buildTree;
        ctx.built.set(a.name, r.artifact ?? (await ctx.store.read(a.hash)));
        record(ctx, a, false, r.stats.durationMs, r.stats.compiled, r.stats.ccacheHits);
        const compiled = r.stats.compiled === undefined ? '' : `, ${r.stats.compiled} compiled, ${r.stats.ccacheHits ?? 0} from ccache`;
        return a.action === 'tree'
          ? `Open vSwitch build tree rebuilt for OVN (${secs(r.stats.durationMs)}${compiled})`
          : `Open vSwitch RPMs built in ${secs(r.stats.durationMs)}${compiled}`;
      },
    },
    {
      id: 'ovn-prepare',
      title: 'Prepare the OVN source',
      deps: ['plan'],
      run: async (ctx) => {
        const a = ctx.plan?.ovn;
        if (a === undefined) return 'OVN source: none';
        if (a.action === 'reuse' || ctx.opts.planOnly) return 'OVN source: not needed (cached)';
        const log = ctx.paths.log(`ovn-${a.hash.slice(0, 12)}`);
        await fs.rm(log, { force: true });
        ctx.prepared.ovn = await prepareSource(ctx.ovn as ResolvedSource, {
          runner: ctx.runner,
          paths: ctx.paths,
          ...(ctx.autotools === undefined ? {} : { bootstrapIdentity: ctx.autotools }),
          step: 'Prepare the OVN source',
          log,
        });
        return `OVN source ready (${path.basename(ctx.prepared.ovn.tarball)})`;
      },
    },
    {
      id: 'ovn-build',
      title: 'Build the OVN RPMs (against the OVS build tree)',
      deps: ['ovs-build', 'ovn-prepare'],
      run: async (ctx, task) => {
        const a = ctx.plan?.ovn;
        if (a === undefined) return 'OVN RPMs: not requested';
        if (a.action === 'reuse') {
          ctx.built.set(a.name, await ctx.store.read(a.hash));
          record(ctx, a, true, 0);
          return `OVN RPMs: cached [${a.hash.slice(0, 12)}]`;
        }
        if (ctx.opts.planOnly) return 'OVN RPMs: would build (--plan)';
        const tree = ctx.ovsTree ?? (JSON.parse(await fs.readFile(ctx.paths.ovsTreeStamp, 'utf8')) as { tree: string }).tree;
        const ovn = ctx.ovn as ResolvedSource;
        const log = ctx.paths.log(`ovn-${a.hash.slice(0, 12)}`);
        task.output = `rpmbuild (log: ${log})`;
        const r = await buildPackage(
          {
            planned: a,
            src: ovn,
            prepared: ctx.prepared.ovn as PreparedSource,
            sourceDateEpoch: ctx.opts.sourceDateEpoch ?? ovn.sourceDateEpoch,
            defines: { ovs_srcdir: tree, ovs_version: (ctx.ovs as ResolvedSource).version },
            publish: true,
            step: 'Build the OVN RPMs',
            log,
          },
          await packageEnv(ctx),
        );
        ctx.built.set(a.name, r.artifact as StoredArtifact);
        record(ctx, a, false, r.stats.durationMs, r.stats.compiled, r.stats.ccacheHits);
        const compiled = r.stats.compiled === undefined ? '' : `, ${r.stats.compiled} compiled, ${r.stats.ccacheHits ?? 0} from ccache`;
        return `OVN RPMs built in ${secs(r.stats.durationMs)}${compiled}`;
      },
    },
  ];
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function describeIdentity(src: ResolvedSource): string {
  const id = src.identity;
  if (id.kind === 'git') return `${id.url} @ ${id.commit.slice(0, 12)}`;
  if (id.kind === 'tarball') return `${path.basename(id.path)} (sha256 ${id.sha256.slice(0, 12)})`;
  return `${id.path} (${id.files} files)`;
}

function record(ctx: RpmCtx, a: PlannedArtifact, cached: boolean, durationMs: number, compiled?: number, ccacheHits?: number): void {
  ctx.stats.set(a.name, {
    name: a.name,
    hash: a.hash,
    version: `${a.inputs.source.version}-${a.release}`,
    cached,
    action: a.action,
    durationMs,
    ...(compiled === undefined ? {} : { compiled }),
    ...(ccacheHits === undefined ? {} : { ccacheHits }),
    files: [],
  });
}

async function packageEnv(ctx: RpmCtx): Promise<PackageBuildEnv> {
  let ccache: CcacheSetup | undefined;
  const ccacheBinary = whichTool('ccache', ctx.opts.probe ?? realProbe());
  if ((ctx.opts.ccache ?? true) && ccacheBinary !== undefined) {
    ccache = { dir: path.resolve(ctx.opts.ccacheDir ?? ctx.paths.ccache), binDir: ctx.paths.ccacheBin, baseDir: ctx.paths.dir };
    await ensureMasquerade(ccache.binDir, ccacheBinary);
  }
  return {
    runner: ctx.runner,
    paths: ctx.paths,
    store: ctx.store,
    rpmbuild: ctx.opts.rpmbuild ?? 'rpmbuild',
    nodeps: ctx.opts.nodeps ?? defaultNodeps(),
    jobs: ctx.opts.jobs ?? os.availableParallelism(),
    debuginfo: ctx.opts.debuginfo ?? false,
    ...(ccache === undefined ? {} : { ccache }),
  };
}

/** OVN must not be built against an OVS older than the one its submodule pins. */
async function checkCompatibility(ovs: ResolvedSource, ovn: ResolvedSource, runner: Runner): Promise<void> {
  let pinned = ovn.ovsPin?.version;
  if (pinned === undefined && ovn.ovsPin !== undefined) pinned = await pinnedVersionFromGit(ovs, ovn.ovsPin, runner);
  const msg = ovsTooOld(ovs.version, ovn.version, ovsRequirement(ovn.version, pinned));
  if (msg !== undefined) throw new InputError([{ path: '--ovs-source', message: msg }]);
}

/** The OVS source spec: given, completed with OVN's pin, or taken from OVN's submodule. */
async function ovsSourceSpec(ctx: RpmCtx): Promise<SourceSpec> {
  if (ctx.opts.ovsSource !== undefined) {
    const spec = await classifySource(parseSourceArg(ctx.opts.ovsSource, '--ovs-source'), '--ovs-source');
    if (spec.kind === 'git' && spec.ref === undefined && ctx.ovn?.ovsPin?.commit !== undefined) return { ...spec, ref: ctx.ovn.ovsPin.commit };
    return spec;
  }
  if (ctx.ovn === undefined) throw new InputError([{ path: '--ovs-source', message: 'is required (a git URL[#ref], a release tarball or a source directory)' }]);
  return defaultOvsSpec(ctx.ovn, ctx.runner, ctx.paths);
}

export async function buildRpms(opts: BuildRpmsOptions): Promise<BuildRpmsResult> {
  const started = Date.now();
  if (opts.ovsSource === undefined && opts.ovnSource === undefined) {
    throw new InputError([{ path: '--ovs-source', message: 'is required (a git URL[#ref], a release tarball or a source directory); add --ovn-source to build OVN too' }]);
  }
  requireTools(requiredTools(opts), opts.probe);
  const runner = opts.runner ?? new ZxRunner();
  // A bad key, key id or passphrase is bad input: found before anything is built or written.
  const key = opts.sign === undefined ? undefined : await openSigningKey(opts.sign, runner);
  let paths: BuildCachePaths;
  let release: () => Promise<void>;
  try {
    paths = buildCachePaths(await realCacheDir(opts.cacheDir ?? defaultBuildCacheDir()));
    release = await lockCache(paths.lock);
  } catch (err) {
    await key?.dispose();
    throw err;
  }
  const ctx: RpmCtx = { opts, runner, paths, store: new ArtifactStore(paths), prepared: {}, built: new Map(), stats: new Map() };
  const summary: BuildSummary = {
    ok: false,
    command: opts.command ?? 'build rpms',
    durationMs: 0,
    outDir: path.resolve(opts.outDir),
    artifacts: [],
    steps: [],
    notes: [],
  };
  if (!(opts.ccache ?? true) || !hasTool('ccache', opts.probe)) summary.notes.push('ccache not used: every changed build compiles from scratch');
  const steps = rpmSteps();
  // OVS waits for OVN only when its defaults come from OVN's submodule.
  const needsOvn = opts.ovnSource !== undefined && (opts.ovsSource === undefined || isGitArg(opts.ovsSource));
  const ovsStep = steps.find((s) => s.id === 'ovs-source') as Step<RpmCtx>;
  ovsStep.deps = needsOvn ? ['ovn-source'] : [];
  const innerRun = ovsStep.run;
  ovsStep.run = async (c, t) => {
    c.ovsSpec = await ovsSourceSpec(c);
    return innerRun(c, t);
  };
  recordFailures(steps);
  const dag = dagRunner(steps, ctx, opts.progress);
  try {
    await dag.run();
    const plan = ctx.plan as RpmPlan;
    const artifacts = [plan.ovs, plan.ovn].filter((a): a is PlannedArtifact => a !== undefined).map((a) => ctx.built.get(a.name)).filter((a): a is StoredArtifact => a !== undefined);
    let output: OutputReport | undefined;
    let published = artifacts;
    if (!opts.planOnly) {
      if (key !== undefined) published = await signAll(ctx, artifacts, key);
      // The manifest names the sources as given this time (a cached artifact may have been built from another copy).
      const current = published.map((a) => ({ ...a, source: sourceDescription(a.name === 'ovn' ? ctx.ovn : ctx.ovs) ?? a.source }));
      output = await writeOutputs(opts.outDir, [{ subdir: opts.rpmSubdir ?? '', artifacts: current }], ctx.store);
      summary.manifest = output.manifestPath;
      if (key !== undefined) {
        const dir = path.join(path.resolve(opts.outDir), opts.rpmSubdir ?? '');
        const repo = await runRecorded(ctx, 'Write the signed dnf repository', () =>
          writeRepository(dir, published.flatMap((a) => a.files.map((f) => f.file)), key, runner, paths.log('repository')),
        );
        summary.signing = { fingerprint: key.fingerprint, uid: key.uid, repository: repo.dir, repomdSignature: repo.signature, publicKey: repo.publicKey };
      }
    }
    summary.ok = true;
    const byName = new Map(published.map((a) => [a.name, a]));
    summary.artifacts = [...ctx.stats.values()].map((s) => ({ ...s, ...summaryFacts(byName.get(s.name), output?.manifest), files: byName.get(s.name)?.files.map((f) => f.file) ?? [] }));
    summary.steps = dag.timings;
    summary.durationMs = Date.now() - started;
    if (!opts.planOnly) await writeSummary(opts.outDir, summary);
    return { plan, planLines: describePlan(plan), artifacts, ...(output === undefined ? {} : { output }), summary };
  } catch (err) {
    await writeFailedSummary(opts.outDir, summary, { failure: ctx.failure, step: 'build', err, timings: dag.timings, started });
    throw err;
  } finally {
    await release();
    await key?.dispose();
  }
}

/** Runs a step outside the DAG, noting its failure for the summary like the DAG's steps. */
async function runRecorded<T>(ctx: RpmCtx, title: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    ctx.failure ??= failureOf(title, err);
    throw err;
  }
}

async function signAll(ctx: RpmCtx, artifacts: readonly StoredArtifact[], key: SigningKey): Promise<StoredArtifact[]> {
  const signed: StoredArtifact[] = [];
  for (const a of artifacts) {
    signed.push(
      await runRecorded(ctx, `Sign the ${a.name} RPMs`, () => signedArtifact(a, { runner: ctx.runner, store: ctx.store, key, tmpDir: ctx.paths.tmp, log: ctx.paths.log(`sign-${a.hash.slice(0, 12)}`) })),
    );
  }
  return signed;
}

/**
 * The cache's real path: compiler command lines carry the work trees' paths (-I, prefix maps), so a
 * cache reached once through a symbolic link and once directly would share no ccache entry.
 */
async function realCacheDir(dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  return fs.realpath(dir);
}

function sourceDescription(src: ResolvedSource | undefined): unknown {
  return src === undefined ? undefined : { argument: src.spec.display, ...src.identity };
}

/** Makes each step note the first failure (step, message, log tail) in the context for the summary. */
export function recordFailures<Ctx extends { failure?: BuildSummary['failure'] }>(steps: Step<Ctx>[]): void {
  for (const s of steps) {
    const run = s.run;
    s.run = async (c, t) => {
      try {
        return await run(c, t);
      } catch (err) {
        c.failure ??= failureOf(s.title, err);
        throw err;
      }
    };
  }
}

export function failureOf(step: string, err: unknown): NonNullable<BuildSummary['failure']> {
  if (err instanceof StepFailed) {
    return { step: err.step, message: err.reason, ...(err.logFile === undefined ? {} : { log: err.logFile }), ...(err.logTail === undefined ? {} : { logTail: err.logTail }) };
  }
  return { step, message: err instanceof ExitError || err instanceof Error ? err.message : String(err) };
}

export async function writeSummary(outDir: string, summary: BuildSummary): Promise<void> {
  await writeFileAtomic(buildOutputPaths(outDir).summary, `${JSON.stringify(summary, null, 2)}\n`);
}

/**
 * The summary of a pipeline that failed: the failing step (its own, or `step` for an error outside
 * any step), the timings so far. Written on a best-effort basis: the caller rethrows the failure.
 */
export async function writeFailedSummary(outDir: string, summary: BuildSummary, o: { failure: BuildSummary['failure'] | undefined; step: string; err: unknown; timings: BuildSummary['steps']; started: number }): Promise<void> {
  summary.failure = o.failure ?? failureOf(o.step, o.err);
  summary.steps = o.timings;
  summary.durationMs = Date.now() - o.started;
  await writeSummary(outDir, summary).catch(() => undefined);
}
