/**
 * Turns a resolved source into the Source0 tarball rpmbuild unpacks: a release tarball that
 * already has `configure` is used as it is; git commits, directories and tarballs without
 * `configure` are copied to a scratch tree, bootstrapped (./boot.sh) and packed reproducibly.
 * Prepared tarballs are cached by content, so a rebuild reuses them.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fsx.js';
import type { BuildCachePaths } from '../paths.js';
import type { Runner } from '../runner.js';
import { Git } from './git.js';
import { hashOf, walkTree } from './hash.js';
import type { ResolvedSource } from './sources.js';
import { runLogged } from './step-log.js';
import { Tar } from './tar.js';

const BOOTSTRAP_TIMEOUT_MS = 20 * 60_000;

export interface PreparedSource {
  /** Absolute path of the tarball. */
  tarball: string;
  /** Top folder inside it (what %setup -n needs). */
  topdir: string;
}

export interface PrepareContext {
  runner: Runner;
  paths: BuildCachePaths;
  /** autoconf/automake/libtool versions: they shape the generated configure. */
  bootstrapIdentity?: string;
  step: string;
  log: string;
  env?: Record<string, string | undefined>;
}

/** What names a prepared tarball: the source content, plus the autotools when configure is generated. */
export function preparedKey(src: ResolvedSource, bootstrapIdentity: string | undefined): string {
  return hashOf({ layout: 1, identity: src.identity, bootstrap: src.needsBootstrap ? (bootstrapIdentity ?? 'unknown') : null }).slice(0, 32);
}

export async function prepareSource(src: ResolvedSource, ctx: PrepareContext): Promise<PreparedSource> {
  if (src.identity.kind === 'tarball' && !src.needsBootstrap && src.topdir !== undefined) {
    return { tarball: src.identity.path, topdir: src.topdir };
  }
  const dir = ctx.paths.preparedSource(preparedKey(src, ctx.bootstrapIdentity));
  const meta = path.join(dir, 'prepared.json');
  const existing = await fs.readFile(meta, 'utf8').then((t) => JSON.parse(t) as { file: string; topdir: string }, () => undefined);
  if (existing !== undefined) return { tarball: path.join(dir, existing.file), topdir: existing.topdir };

  const topdir = `${src.project}-${src.version}`;
  const scratch = path.join(ctx.paths.tmp, `prep-${randomBytes(6).toString('hex')}`);
  const tree = path.join(scratch, topdir);
  await fs.mkdir(scratch, { recursive: true });
  try {
    await materialize(src, scratch, topdir, ctx);
    if (src.needsBootstrap) {
      await runLogged(ctx.runner, ['sh', './boot.sh'], { step: ctx.step, log: ctx.log, cwd: tree, timeoutMs: BOOTSTRAP_TIMEOUT_MS, ...(ctx.env === undefined ? {} : { env: ctx.env }) });
    }
    const files = await walkTree(tree, new Set(['.git', 'autom4te.cache']));
    const file = `${topdir}.tar`;
    const staging = `${dir}.tmp-${randomBytes(4).toString('hex')}`;
    await fs.mkdir(staging, { recursive: true });
    await new Tar(ctx.runner).createDeterministic(
      path.join(staging, file),
      scratch,
      files.map((f) => `${topdir}/${f.rel}`),
      src.sourceDateEpoch,
    );
    await writeFileAtomic(path.join(staging, 'prepared.json'), `${JSON.stringify({ file, topdir }, null, 2)}\n`);
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(staging, dir);
    return { tarball: path.join(dir, file), topdir };
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** Puts the source's files under scratch/topdir. */
async function materialize(src: ResolvedSource, scratch: string, topdir: string, ctx: PrepareContext): Promise<void> {
  const tree = path.join(scratch, topdir);
  const id = src.identity;
  if (id.kind === 'git') {
    const archive = path.join(scratch, 'archive.tar');
    await new Git(ctx.runner, src.gitDir as string).archive(id.commit, topdir, archive);
    await new Tar(ctx.runner).extract(archive, scratch);
    await fs.rm(archive);
    return;
  }
  if (id.kind === 'tarball') {
    await new Tar(ctx.runner).extract(id.path, scratch);
    if (src.topdir !== undefined && src.topdir !== topdir) await fs.rename(path.join(scratch, src.topdir), tree);
    return;
  }
  // A directory: exactly the files that were hashed, timestamps kept (make compares them).
  for (const f of src.files ?? []) {
    const from = path.join(id.path, f.rel);
    const to = path.join(tree, f.rel);
    await fs.mkdir(path.dirname(to), { recursive: true });
    if (f.kind === 'symlink') await fs.symlink(await fs.readlink(from), to);
    else {
      await fs.copyFile(from, to);
      const st = await fs.stat(from);
      await fs.chmod(to, st.mode & 0o7777);
      await fs.utimes(to, st.atime, st.mtime);
    }
  }
}
