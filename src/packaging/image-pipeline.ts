/**
 * `ovn-deploy build images`: per-role container images from a directory of RPMs. Reads the RPMs,
 * makes the base image available (a registry or local image, or a rootfs tarball to import),
 * plans (hash per role), builds what is missing with podman (multi-stage, docker format so the
 * HEALTHCHECK stays), exports OCI archives and writes build-manifest.json.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import type { Probe } from '../packages.js';
import { buildCachePaths, containerRoleDir, containersDir, defaultBuildCacheDir, type BuildCachePaths } from '../paths.js';
import { ZxRunner, type Runner } from '../runner.js';
import { dagRunner, type Step } from '../ui/dag.js';
import type { ProgressMode } from '../ui/listr.js';
import { hashOf, sha256, sha256File } from './hash.js';
import { planImages, type AvailableRpm, type PlannedImage } from './image-plan.js';
import { tlsPolicyFiles } from './image-tls.js';
import type { BuildSummary } from './manifest.js';
import { writeOutputs } from './output.js';
import { Podman } from './podman.js';
import { requireTools } from './preflight.js';
import { RpmQuery } from './rpm.js';
import { missingPackages, ROLES, rolesWithPackages, type RoleName } from './roles.js';
import { recordFailures, writeFailedSummary, writeSummary } from './rpm-pipeline.js';
import { ArtifactStore, lockCache, type StoredArtifact } from './store.js';

export interface BuildImagesOptions {
  rpmsDir: string;
  /** An image reference (local or pullable), or a rootfs tarball to import. */
  baseImage: string;
  outDir: string;
  roles?: RoleName[];
  cacheDir?: string;
  tagPrefix?: string;
  runner?: Runner;
  /** Extra environment for podman (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF). */
  podmanEnv?: Record<string, string>;
  progress?: ProgressMode;
  probe?: Probe;
}

export interface BuiltImage {
  role: RoleName;
  hash: string;
  tag: string;
  cached: boolean;
  archive: string;
  sizeBytes: number;
  archiveBytes: number;
}

export interface BuildImagesResult {
  images: BuiltImage[];
  skipped: { role: RoleName; reason: string }[];
  baseImageId: string;
  manifestPath: string;
  summary: BuildSummary;
}

interface ImageCtx {
  opts: BuildImagesOptions;
  runner: Runner;
  podman: Podman;
  paths: BuildCachePaths;
  store: ArtifactStore;
  rpms: Map<string, AvailableRpm>;
  roles: RoleName[];
  skipped: { role: RoleName; reason: string }[];
  baseImageId?: string;
  plan: PlannedImage[];
  built: Map<RoleName, StoredArtifact>;
  cachedRoles: Set<RoleName>;
  failure?: BuildSummary['failure'];
}

async function readRpms(dir: string, runner: Runner): Promise<Map<string, AvailableRpm>> {
  const entries = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    throw new InputError([{ path: '--rpms', message: `cannot read ${dir}: ${err.code === 'ENOENT' ? 'no such directory' : err.message}` }]);
  });
  const query = new RpmQuery(runner);
  const found = new Map<string, AvailableRpm>();
  const problems: string[] = [];
  for (const f of entries.filter((e) => e.endsWith('.rpm')).sort()) {
    const file = path.join(dir, f);
    const info = await query.info(file);
    const prev = found.get(info.name);
    if (prev !== undefined) problems.push(`${info.name} twice: ${path.basename(prev.file)} and ${f}`);
    found.set(info.name, { file, sha256: await sha256File(file), info });
  }
  if (problems.length > 0) throw new InputError([{ path: '--rpms', message: `ambiguous RPMs in ${dir}: ${problems.join('; ')} (keep one version per package)` }]);
  return found;
}

/** Digest of the files that go into a role's build context (besides the RPMs). */
async function contextDigest(role: RoleName): Promise<string> {
  const parts: Record<string, string> = {};
  for (const dir of [containerRoleDir('common'), containerRoleDir(role)]) {
    for (const f of (await fs.readdir(dir)).sort()) parts[`${path.basename(dir)}/${f}`] = sha256(await fs.readFile(path.join(dir, f)));
  }
  // A policy change (src/stunnel/policy.ts) rebuilds the images that carry it.
  for (const [f, content] of tlsPolicyFiles()) parts[`generated/${f}`] = sha256(content);
  return hashOf(parts);
}

/** Makes the base image available locally and returns its id. */
async function baseImage(ctx: ImageCtx): Promise<string> {
  const ref = ctx.opts.baseImage;
  const st = await fs.stat(ref).catch(() => undefined);
  if (st?.isFile()) {
    const tag = `localhost/ovn-deploy-base:${(await sha256File(ref)).slice(0, 16)}`;
    if (!(await ctx.podman.imageExists(tag))) await ctx.podman.import(ref, tag);
    return ctx.podman.imageId(tag);
  }
  if (!(await ctx.podman.imageExists(ref))) {
    const r = await ctx.podman.pull(ref);
    if (r.exitCode !== 0) {
      throw new InputError([
        {
          path: '--base-image',
          message: `${ref} is neither a local image nor pullable (${r.stderr.trim().split('\n').pop() ?? ''}); without a registry, build one with \`ovn-deploy build base-image --out base.tar\` and pass that file`,
        },
      ]);
    }
  }
  return ctx.podman.imageId(ref);
}

async function buildOne(ctx: ImageCtx, p: PlannedImage): Promise<StoredArtifact> {
  const ctxDir = path.join(ctx.paths.tmp, `image-${p.role}-${randomBytes(4).toString('hex')}`);
  const log = ctx.paths.log(`image-${p.role}-${p.hash.slice(0, 12)}`);
  await fs.rm(log, { force: true });
  const started = Date.now();
  try {
    await fs.mkdir(path.join(ctxDir, 'rpms'), { recursive: true });
    for (const dir of [containerRoleDir('common'), containerRoleDir(p.role)]) {
      for (const f of await fs.readdir(dir)) await fs.copyFile(path.join(dir, f), path.join(ctxDir, f));
    }
    for (const [f, content] of tlsPolicyFiles()) await fs.writeFile(path.join(ctxDir, f), content);
    for (const r of p.rpms) await fs.copyFile(r.file, path.join(ctxDir, 'rpms', path.basename(r.file)));
    await ctx.podman.build({
      context: ctxDir,
      containerfile: path.join(ctxDir, 'Containerfile'),
      tag: p.tag,
      buildArgs: { BASE_IMAGE: ctx.baseImageId as string },
      labels: { 'io.ovn-deploy.inputs': p.hash, 'org.opencontainers.image.version': p.version },
      step: `Build the ${p.role} image`,
      log,
    });
    const archive = path.join(ctxDir, `${p.role}.oci.tar`);
    await ctx.podman.saveOciArchive(p.tag, archive);
    const sizeBytes = await ctx.podman.imageSize(p.tag);
    return await ctx.store.publish(
      {
        hash: p.hash,
        name: p.role,
        kind: 'image',
        version: p.version,
        inputs: p.inputs,
        build: { durationMs: Date.now() - started },
        details: { tag: p.tag, imageId: await ctx.podman.imageId(p.tag), sizeBytes, labels: await ctx.podman.imageLabels(p.tag), packages: p.rpms.map((r) => `${r.info.name}-${r.info.version}-${r.info.release}.${r.info.arch}`) },
      },
      [archive],
    );
  } finally {
    await fs.rm(ctxDir, { recursive: true, force: true });
  }
}

function imageSteps(): Step<ImageCtx>[] {
  return [
    {
      id: 'rpms',
      title: 'Read the RPMs',
      run: async (ctx) => {
        ctx.rpms = await readRpms(path.resolve(ctx.opts.rpmsDir), ctx.runner);
        const available = new Set(ctx.rpms.keys());
        if (ctx.opts.roles !== undefined) {
          const problems = ctx.opts.roles
            .map((r) => ({ r, missing: missingPackages(r, available) }))
            .filter((x) => x.missing.length > 0)
            .map((x) => ({ path: '--role', message: `${x.r} needs RPMs ${x.missing.join(', ')}, not in ${ctx.opts.rpmsDir}${x.missing.some((m) => m.startsWith('ovn')) ? ' (build them with `ovn-deploy build rpms --ovn-source ...`)' : ''}` }));
          if (problems.length > 0) throw new InputError(problems);
          ctx.roles = ctx.opts.roles;
        } else {
          ctx.roles = rolesWithPackages(available);
          for (const r of Object.keys(ROLES) as RoleName[]) {
            if (ctx.roles.includes(r)) continue;
            const missing = missingPackages(r, available);
            ctx.skipped.push({ role: r, reason: missing.length > 0 ? `no RPM for ${missing.join(', ')}` : 'only built when asked for (--role)' });
          }
          if (ctx.roles.length === 0) throw new InputError([{ path: '--rpms', message: `no role can be built from the RPMs in ${ctx.opts.rpmsDir} (found: ${[...available].join(', ') || 'none'})` }]);
        }
        return `RPMs: ${ctx.rpms.size} packages; roles: ${ctx.roles.join(', ')}`;
      },
    },
    {
      id: 'base',
      title: 'Base image',
      run: async (ctx) => {
        ctx.baseImageId = await baseImage(ctx);
        return `Base image ${ctx.opts.baseImage} (${ctx.baseImageId.slice(0, 12)})`;
      },
    },
    {
      id: 'plan',
      title: 'Plan: hash each role image, look in the cache',
      deps: ['rpms', 'base'],
      run: async (ctx) => {
        const digests: Partial<Record<RoleName, string>> = {};
        for (const r of ctx.roles) digests[r] = await contextDigest(r);
        const input = {
          roles: ctx.roles,
          rpms: ctx.rpms,
          contextDigests: digests,
          baseImageId: ctx.baseImageId as string,
          engine: `podman ${await ctx.podman.version()}`,
          tagPrefix: ctx.opts.tagPrefix ?? 'localhost/ovn-deploy',
        };
        const probe = planImages(input, () => false);
        const cached = new Set<string>();
        for (const p of probe) if (await ctx.store.has(p.hash)) cached.add(p.hash);
        ctx.plan = planImages(input, (h) => cached.has(h));
        const todo = ctx.plan.filter((p) => p.action === 'build').map((p) => p.role);
        return todo.length === 0 ? 'Plan: every image is in the cache' : `Plan: build ${todo.join(', ')}`;
      },
    },
    {
      id: 'images',
      title: 'Build the images',
      deps: ['plan'],
      run: async (ctx, task) => {
        for (const p of ctx.plan) {
          if (p.action === 'reuse') {
            ctx.built.set(p.role, await ctx.store.read(p.hash));
            ctx.cachedRoles.add(p.role);
            continue;
          }
          task.output = `${p.role}: podman build`;
          ctx.built.set(p.role, await buildOne(ctx, p));
        }
        return `Images: ${ctx.plan.map((p) => `${p.role} (${ctx.cachedRoles.has(p.role) ? 'cached' : 'built'})`).join(', ')}`;
      },
    },
  ];
}

export async function buildImages(opts: BuildImagesOptions): Promise<BuildImagesResult> {
  const started = Date.now();
  requireTools(['podman', 'rpm'], opts.probe);
  const runner = opts.runner ?? new ZxRunner();
  const paths = buildCachePaths(opts.cacheDir ?? defaultBuildCacheDir());
  await fs.access(containersDir);
  const ctx: ImageCtx = {
    opts,
    runner,
    podman: new Podman(runner, opts.podmanEnv ?? {}),
    paths,
    store: new ArtifactStore(paths),
    rpms: new Map(),
    roles: [],
    skipped: [],
    plan: [],
    built: new Map(),
    cachedRoles: new Set(),
  };
  const summary: BuildSummary = { ok: false, command: 'build images', durationMs: 0, outDir: path.resolve(opts.outDir), artifacts: [], steps: [], notes: [] };
  const steps = imageSteps();
  recordFailures(steps);
  const release = await lockCache(paths.lock);
  const dag = dagRunner(steps, ctx, opts.progress);
  try {
    await dag.run();
    const artifacts = ctx.plan.map((p) => ctx.built.get(p.role)).filter((a): a is StoredArtifact => a !== undefined);
    const output = await writeOutputs(opts.outDir, [{ subdir: '', artifacts }], ctx.store);
    const images: BuiltImage[] = ctx.plan.map((p) => {
      const a = ctx.built.get(p.role) as StoredArtifact;
      const file = a.files[0];
      return {
        role: p.role,
        hash: p.hash,
        tag: p.tag,
        cached: ctx.cachedRoles.has(p.role),
        archive: path.join(path.resolve(opts.outDir), file?.file ?? ''),
        sizeBytes: Number(a.details?.sizeBytes ?? 0),
        archiveBytes: file?.size ?? 0,
      };
    });
    summary.ok = true;
    summary.manifest = output.manifestPath;
    summary.artifacts = images.map((i) => ({ name: i.role, hash: i.hash, version: i.tag, cached: i.cached, action: i.cached ? 'reuse' : 'build', durationMs: ctx.built.get(i.role)?.build.durationMs ?? 0, files: [path.basename(i.archive)] }));
    summary.notes.push(...ctx.skipped.map((s) => `${s.role} skipped: ${s.reason}`));
    summary.notes.push('OCI archives carry no HEALTHCHECK (the OCI image config has none): apply the io.ovn-deploy.healthcheck label with --health-cmd, or use the docker-format image podman keeps locally');
    summary.steps = dag.timings;
    summary.durationMs = Date.now() - started;
    await writeSummary(opts.outDir, summary);
    return { images, skipped: ctx.skipped, baseImageId: ctx.baseImageId as string, manifestPath: output.manifestPath, summary };
  } catch (err) {
    await writeFailedSummary(opts.outDir, summary, { failure: ctx.failure, step: 'build images', err, timings: dag.timings, started });
    throw err;
  } finally {
    await release();
  }
}
