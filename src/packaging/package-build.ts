/**
 * One rpmbuild: lays out the package's _topdir (sources, spec extras), runs rpmbuild with the
 * reproducibility macros and SOURCE_DATE_EPOCH, and publishes the RPMs as a cache artifact.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { BuildCachePaths } from '../paths.js';
import { specFiles } from '../paths.js';
import type { Runner } from '../runner.js';
import { ccacheEnv, parseStatsLog, type CcacheSetup } from './ccache.js';
import type { PlannedArtifact } from './plan.js';
import type { PreparedSource } from './prepare-source.js';
import { REPRODUCIBLE_DEFINES, RPMBUILD_TIMEOUT_MS, RpmQuery, rpmbuildArgv } from './rpm.js';
import type { ResolvedSource } from './sources.js';
import { appendLog, runLogged } from './step-log.js';
import type { ArtifactStore, BuildStats, StoredArtifact } from './store.js';

export interface PackageBuildEnv {
  runner: Runner;
  paths: BuildCachePaths;
  store: ArtifactStore;
  rpmbuild: string;
  nodeps: boolean;
  jobs: number;
  ccache?: CcacheSetup;
  debuginfo: boolean;
}

export interface PackageBuildRequest {
  planned: PlannedArtifact;
  src: ResolvedSource;
  prepared: PreparedSource;
  sourceDateEpoch: number;
  /** Spec-specific defines (OVN: where the OVS build tree is). */
  defines?: Record<string, string>;
  /** false: only (re)create the build tree; the RPMs are already in the cache. */
  publish: boolean;
  step: string;
  log: string;
}

export interface PackageBuildResult {
  artifact?: StoredArtifact;
  stats: BuildStats;
  /** The top folder of the build tree under BUILD/ (OVS: what OVN compiles against). */
  buildTree: string;
}

/** "Wed Mar 13 2024": the %changelog date format. */
export function changelogDate(epochSec: number): string {
  const d = new Date(epochSec * 1000);
  const wd = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()];
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  return `${wd} ${mon} ${String(d.getUTCDate()).padStart(2, '0')} ${d.getUTCFullYear()}`;
}

/** The --define set for one package (pure). */
export function packageDefines(planned: PlannedArtifact, prepared: PreparedSource, epoch: number, jobs: number, extra: Record<string, string> = {}): Record<string, string> {
  const suffix = planned.inputs.source.releaseSuffix;
  return {
    ...REPRODUCIBLE_DEFINES,
    upstream_version: planned.inputs.source.version,
    build_number: String(planned.inputs.options.buildNumber),
    ...(suffix === '' ? {} : { release_suffix: suffix }),
    source_topdir: prepared.topdir,
    source_tarball: path.basename(prepared.tarball),
    changelog_date: changelogDate(epoch),
    _smp_mflags: `-j${jobs}`,
    ...extra,
  };
}

async function findRpms(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await visit(p);
      else if (e.name.endsWith('.rpm')) out.push(p);
    }
  };
  await visit(dir);
  return out.sort();
}

/**
 * Where %setup unpacked the source: BUILD/TOPDIR with rpm <= 4.19, BUILD/NAME-VERSION-build/TOPDIR
 * with rpm 4.20's per-package build directories.
 */
async function findBuildTree(buildDir: string, topdir: string): Promise<string> {
  const direct = path.join(buildDir, topdir);
  if (await fs.stat(path.join(direct, 'config.status')).then(() => true, () => false)) return direct;
  for (const d of await fs.readdir(buildDir).catch(() => [] as string[])) {
    const nested = path.join(buildDir, d, topdir);
    if (await fs.stat(path.join(nested, 'config.status')).then(() => true, () => false)) return nested;
  }
  return direct;
}

/** Copies (or hard-links) `from` to `to`. */
async function place(from: string, to: string): Promise<void> {
  await fs.rm(to, { force: true });
  await fs.link(from, to).catch(() => fs.copyFile(from, to));
}

export async function buildPackage(req: PackageBuildRequest, env: PackageBuildEnv): Promise<PackageBuildResult> {
  const name = req.planned.name;
  const topdir = env.paths.work(name);
  const started = Date.now();
  // A fresh tree every time: rpm's %setup would remove it anyway, and stale RPMS must not be collected.
  for (const d of ['BUILD', 'BUILDROOT', 'RPMS', 'SOURCES', 'SPECS', 'SRPMS']) await fs.rm(path.join(topdir, d), { recursive: true, force: true });
  await fs.mkdir(path.join(topdir, 'SOURCES'), { recursive: true });
  await place(req.prepared.tarball, path.join(topdir, 'SOURCES', path.basename(req.prepared.tarball)));
  const spec = specFiles(name);
  for (const f of await fs.readdir(spec.sourcesDir).catch(() => [] as string[])) {
    await fs.copyFile(path.join(spec.sourcesDir, f), path.join(topdir, 'SOURCES', f));
  }
  const statsLog = path.join(env.paths.logs, `${name}-${req.planned.hash.slice(0, 12)}.ccache-stats`);
  await fs.rm(statsLog, { force: true });
  await fs.mkdir(env.paths.logs, { recursive: true });

  const argv = rpmbuildArgv({
    rpmbuild: env.rpmbuild,
    spec: spec.spec,
    topdir,
    nodeps: env.nodeps,
    defines: packageDefines(req.planned, req.prepared, req.sourceDateEpoch, env.jobs, req.defines),
    ...(env.debuginfo ? { with: ['debuginfo'] } : {}),
  });
  const runEnv: Record<string, string | undefined> = {
    SOURCE_DATE_EPOCH: String(req.sourceDateEpoch),
    TZ: 'UTC',
    LC_ALL: 'C',
    ...(env.ccache === undefined ? { CCACHE_DISABLE: '1' } : ccacheEnv(env.ccache, statsLog, process.env.PATH)),
  };
  await appendLog(req.log, `# ${name}: inputs hash ${req.planned.hash}\n`);
  await runLogged(env.runner, argv, { step: req.step, log: req.log, env: runEnv, cwd: topdir, timeoutMs: RPMBUILD_TIMEOUT_MS });

  const stats: BuildStats = { durationMs: Date.now() - started };
  if (env.ccache !== undefined) {
    const parsed = parseStatsLog(await fs.readFile(statsLog, 'utf8').catch(() => ''));
    stats.compiled = parsed.misses;
    stats.ccacheHits = parsed.hits;
    stats.compiledFiles = parsed.compiledFiles.slice(0, 50);
  }
  const buildTree = await findBuildTree(path.join(topdir, 'BUILD'), req.prepared.topdir);
  if (!req.publish) return { stats, buildTree };

  const rpms = await findRpms(path.join(topdir, 'RPMS'));
  const query = new RpmQuery(env.runner);
  const artifact = await env.store.publish(
    {
      hash: req.planned.hash,
      name,
      kind: 'rpms',
      version: req.planned.inputs.source.version,
      release: req.planned.release,
      sourceDateEpoch: req.sourceDateEpoch,
      inputs: req.planned.inputs,
      source: { argument: req.src.spec.display, ...req.src.identity },
      build: stats,
    },
    rpms,
    async (file) => ({ rpm: await query.info(file) }),
  );
  return { artifact, stats, buildTree };
}
