/**
 * A minimal Debian base image for hosts without a registry: `mmdebstrap --variant=minbase` plus
 * the runtime libraries our RPMs link against and rpm (to install them). The rootfs tarball is
 * cached under the hash of its inputs (suite, packages, apt sources, mmdebstrap version, arch).
 * In production the base is an EL/Fedora image from a registry instead.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildCachePaths, defaultBuildCacheDir } from '../paths.js';
import { ZxRunner, type Runner } from '../runner.js';
import { hashOf, sha256 } from './hash.js';
import { requireTools } from './preflight.js';
import { runLogged } from './step-log.js';

import { DEFAULT_BASE_PACKAGES } from './roles.js';

export { DEFAULT_BASE_PACKAGES };
const MMDEBSTRAP_TIMEOUT_MS = 30 * 60_000;

export interface BaseImageOptions {
  out: string;
  suite?: string;
  packages?: readonly string[];
  cacheDir?: string;
  runner?: Runner;
}

export interface BaseImageResult {
  out: string;
  hash: string;
  cached: boolean;
  sizeBytes: number;
}

/** The apt sources mmdebstrap will use (it reads this machine's apt configuration). */
async function aptSourcesDigest(): Promise<string> {
  const parts: string[] = [];
  for (const f of ['/etc/apt/sources.list']) parts.push(await fs.readFile(f, 'utf8').catch(() => ''));
  const dir = '/etc/apt/sources.list.d';
  for (const f of (await fs.readdir(dir).catch(() => [] as string[])).sort()) {
    if (f.endsWith('.list') || f.endsWith('.sources')) parts.push(`${f}\n${await fs.readFile(path.join(dir, f), 'utf8').catch(() => '')}`);
  }
  return sha256(parts.join('\n'));
}

export async function baseImageHash(suite: string, packages: readonly string[], runner: Runner): Promise<string> {
  const v = await runner.run(['mmdebstrap', '--version'], { timeoutMs: 30_000, allowFailure: true, mutates: false });
  return hashOf({ kind: 'debian-minbase', suite, packages: [...packages].sort(), mmdebstrap: v.stdout.trim(), apt: await aptSourcesDigest(), arch: os.machine() });
}

export async function buildBaseImage(opts: BaseImageOptions): Promise<BaseImageResult> {
  requireTools(['mmdebstrap']);
  const runner = opts.runner ?? new ZxRunner();
  const paths = buildCachePaths(opts.cacheDir ?? defaultBuildCacheDir());
  const suite = opts.suite ?? 'bookworm';
  const packages = opts.packages ?? DEFAULT_BASE_PACKAGES;
  const hash = await baseImageHash(suite, packages, runner);
  const cachedFile = paths.baseImage(hash);
  let cached = true;
  if (!(await fs.stat(cachedFile).then(() => true, () => false))) {
    cached = false;
    await fs.mkdir(path.dirname(cachedFile), { recursive: true });
    const tmp = `${cachedFile}.tmp-${randomBytes(4).toString('hex')}.tar`;
    try {
      await runLogged(runner, ['mmdebstrap', '--variant=minbase', `--include=${packages.join(',')}`, suite, tmp], {
        step: 'Build the base image (mmdebstrap)',
        log: paths.log(`base-image-${hash.slice(0, 12)}`),
        timeoutMs: MMDEBSTRAP_TIMEOUT_MS,
      });
      await fs.rename(tmp, cachedFile);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }
  const out = path.resolve(opts.out);
  if (out !== cachedFile) {
    await fs.mkdir(path.dirname(out), { recursive: true });
    await fs.copyFile(cachedFile, `${out}.tmp`);
    await fs.rename(`${out}.tmp`, out);
  }
  return { out, hash, cached, sizeBytes: (await fs.stat(out)).size };
}
