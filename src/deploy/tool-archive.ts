/**
 * The tool as `deploy` ships it to a host: a gzipped tar of the running package (package.json,
 * dist/, templates/, scripts/ and only the production dependencies from node_modules), named by
 * the hash of its contents so a host that already has this exact version is not sent it again.
 * On the host it lives in `/opt/ovn-deploy/<id>/`, with `current` (and `previous`) symlinks
 * swapped atomically, so `node /opt/ovn-deploy/current/dist/cli.js` always starts a complete tool.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { hostPaths, packageRoot, toolArchiveCacheDir } from '../paths.js';
import { ZxRunner, type Runner } from '../runner.js';
import type { Ssh } from '../tools/ssh.js';

/** Top-level entries of the package that the tool needs at run time (besides node_modules). */
export const TOOL_ENTRIES = ['package.json', 'dist', 'templates', 'scripts'] as const;

export interface ToolArchive {
  /** The .tar.gz in the local cache. */
  file: string;
  /** `<version>-<16 hex of sha256 of the contents>`: also the directory name on the host. */
  id: string;
}

export interface BuildToolArchiveOptions {
  /** Package to pack; default the running one. */
  root?: string;
  cacheDir?: string;
  runner?: Runner;
}

interface PackageJson {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

function readPackageJson(dir: string): PackageJson {
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/**
 * Directories (relative to root) of every package reachable from root's `dependencies`, resolved
 * the way Node does (nearest node_modules upwards, never above root). devDependencies are never
 * followed, so vitest, typescript and eslint stay out.
 */
export function productionDependencyDirs(root: string): string[] {
  const found = new Set<string>();
  const queue: string[] = [root];
  while (queue.length > 0) {
    const pkgDir = queue.shift() as string;
    const pj = readPackageJson(pkgDir);
    const deps = [
      ...Object.keys(pj.dependencies ?? {}).map((n) => ({ name: n, optional: false })),
      ...Object.keys(pj.optionalDependencies ?? {}).map((n) => ({ name: n, optional: true })),
    ];
    for (const dep of deps) {
      const dir = resolvePackageDir(root, pkgDir, dep.name);
      if (dir === undefined) {
        if (dep.optional) continue;
        throw new Error(`production dependency ${dep.name} of ${pj.name ?? pkgDir} is not installed (run npm ci)`);
      }
      const rel = path.relative(root, dir);
      if (found.has(rel)) continue;
      found.add(rel);
      queue.push(dir);
    }
  }
  // A package nested inside another one we ship comes along with it.
  const sorted = [...found].sort();
  return sorted.filter((d) => !sorted.some((o) => o !== d && d.startsWith(`${o}/`)));
}

function resolvePackageDir(root: string, fromDir: string, name: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === root || path.relative(root, dir).startsWith('..') || dir === path.dirname(dir)) return undefined;
  }
}

/** sha256 over every shipped file's relative path, executable bit and content (symlinks: target). */
function hashTree(root: string, entries: readonly string[]): string {
  const h = createHash('sha256');
  const walk = (rel: string): void => {
    const abs = path.join(root, rel);
    const st = lstatSync(abs);
    if (st.isSymbolicLink()) {
      h.update(`L ${rel} ${readlinkSync(abs)}\n`);
    } else if (st.isDirectory()) {
      for (const name of readdirSync(abs).sort()) walk(path.join(rel, name));
    } else if (st.isFile()) {
      h.update(`F ${rel} ${st.mode & 0o111 ? 'x' : '-'} ${st.size}\n`);
      h.update(readFileSync(abs));
    }
  };
  for (const e of entries) walk(e);
  return h.digest('hex');
}

/** Builds (or finds in the cache) the archive of the tool. Needs a built dist/ (`npm run build`). */
export async function buildToolArchive(opts: BuildToolArchiveOptions = {}): Promise<ToolArchive> {
  const root = opts.root ?? packageRoot;
  if (!existsSync(path.join(root, 'dist', 'cli.js'))) throw new Error(`${path.join(root, 'dist', 'cli.js')} is missing: run \`npm run build\` first`);
  const entries = [...TOOL_ENTRIES.filter((e) => existsSync(path.join(root, e))), ...productionDependencyDirs(root)];
  const version = readPackageJson(root).version ?? '0.0.0';
  const id = `${version}-${hashTree(root, entries).slice(0, 16)}`;
  const cacheDir = opts.cacheDir ?? toolArchiveCacheDir();
  const file = path.join(cacheDir, `${id}.tar.gz`);
  if (existsSync(file)) return { file, id };
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${file}.${process.pid}.partial`;
  try {
    await (opts.runner ?? new ZxRunner()).run(
      ['tar', '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-czf', tmp, '-C', root, '--', ...entries],
      { timeoutMs: 120_000, mutates: true },
    );
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
  return { file, id };
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Remote script: $1 = tool dir, $2 = id. Points `current` at $2 (the old target becomes
 * `previous`; each symlink replaced by rename, so it is never missing), keeps only those two
 * versions, and prints `previous=<old id>`.
 */
export const ACTIVATE_TOOL_SCRIPT = [
  'set -e',
  'base="$1"; id="$2"',
  'cur=$(readlink "$base/current" 2>/dev/null || true)',
  'if [ "$cur" != "$id" ]; then',
  '  if [ -n "$cur" ]; then ln -sfn "$cur" "$base/.previous.tmp"; mv -T "$base/.previous.tmp" "$base/previous"; fi',
  '  ln -sfn "$id" "$base/.current.tmp"; mv -T "$base/.current.tmp" "$base/current"',
  'fi',
  'prev=$(readlink "$base/previous" 2>/dev/null || true)',
  'for d in "$base"/*; do',
  '  n=$(basename "$d")',
  '  case "$n" in "$id"|"$prev"|current|previous) ;; *) [ -d "$d" ] && [ ! -L "$d" ] && rm -rf "$d" ;; esac',
  'done',
  'echo "previous=$prev"',
].join('\n');

/** Remote script: exits 0 printing `present` when $1/$2 is a complete unpacked tool, else `missing`. */
export const CHECK_TOOL_SCRIPT = 'if [ -f "$1/$2/.complete" ]; then echo present; else echo missing; fi';

/** Remote script: unpacks the archive on stdin into $1/$2 (via a partial dir, marked complete last). */
export const UNPACK_TOOL_SCRIPT = [
  'set -e',
  'base="$1"; id="$2"; tmp="$base/.$id.partial"',
  'mkdir -p "$base"',
  'rm -rf "$tmp"; mkdir "$tmp"',
  'tar -xzf - -C "$tmp" --no-same-owner',
  'touch "$tmp/.complete"',
  'rm -rf "$base/$id"',
  'mv "$tmp" "$base/$id"',
].join('\n');

/** The argv (for Ssh.run) of each remote step; exported so deploy can print or record them. */
export function installToolCommand(id: string, step: 'check' | 'unpack' | 'activate', toolDir = hostPaths().toolDir): string[] {
  if (!ID_RE.test(id)) throw new Error(`bad tool id: ${id}`);
  const script = step === 'check' ? CHECK_TOOL_SCRIPT : step === 'unpack' ? UNPACK_TOOL_SCRIPT : ACTIVATE_TOOL_SCRIPT;
  return ['sh', '-c', script, `ovn-deploy-tool-${step}`, toolDir, id];
}

export interface ShipToolResult {
  id: string;
  /** False when the host already had this version (nothing was sent). */
  shipped: boolean;
  /** The version `current` pointed to before (empty when none). */
  previous: string;
}

/** Ships the archive over ssh only if the host lacks this version, then makes it `current`. */
export async function shipTool(ssh: Ssh, archive: ToolArchive, opts: { toolDir?: string; timeoutMs?: number } = {}): Promise<ShipToolResult> {
  const toolDir = opts.toolDir ?? hostPaths().toolDir;
  const check = await ssh.run(installToolCommand(archive.id, 'check', toolDir), { timeoutMs: 30_000 });
  const shipped = check.stdout.trim() !== 'present';
  if (shipped) await ssh.run(installToolCommand(archive.id, 'unpack', toolDir), { inputFile: archive.file, timeoutMs: opts.timeoutMs ?? 300_000 });
  const act = await ssh.run(installToolCommand(archive.id, 'activate', toolDir), { timeoutMs: 30_000 });
  const previous = /previous=(.*)/.exec(act.stdout)?.[1]?.trim() ?? '';
  return { id: archive.id, shipped, previous };
}
