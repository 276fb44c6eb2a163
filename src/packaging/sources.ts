/**
 * Resolves a source argument to what names its content (git commit, tarball digest or tree
 * digest), its version (AC_INIT), its SOURCE_DATE_EPOCH, and for OVN the OVS its `ovs` submodule
 * pins. Bad sources end in an InputError naming the flag; nothing is built or written except the
 * git cache.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import type { BuildCachePaths } from '../paths.js';
import type { Runner } from '../runner.js';
import { Git, resolveRef, submoduleUrl, suggestRefs } from './git.js';
import { hashTree, sha256, sha256File, treeEntry, walkTree, type TreeEntry } from './hash.js';
import { classifySource, parseSourceArg, type ProjectName, type SourceSpec } from './source-spec.js';
import { Tar, tarTopDir } from './tar.js';
import { parseAcInit } from './version.js';

export type SourceIdentity =
  | { kind: 'git'; url: string; ref?: string; commit: string; tagged: boolean }
  | { kind: 'tarball'; path: string; sha256: string }
  | { kind: 'directory'; path: string; treeSha256: string; files: number };

/** The OVS an OVN source's `ovs` submodule pins, as far as the source tells. */
export interface OvsPin {
  /** Pinned commit (git sources). */
  commit?: string;
  /** Submodule URL from .gitmodules. */
  url?: string;
  /** Version of the pinned OVS when its configure.ac is at hand. */
  version?: string;
  /** A populated submodule directory (OVN working tree). */
  dir?: string;
  /** The bundled ovs/ folder inside an OVN release tarball (member path). */
  tarballMember?: string;
}

export interface ResolvedSource {
  project: ProjectName;
  spec: SourceSpec;
  identity: SourceIdentity;
  version: string;
  sourceDateEpoch: number;
  /** Whether `configure` must be generated (./boot.sh) before rpmbuild. */
  needsBootstrap: boolean;
  /** Tarball sources: the top folder inside it. */
  topdir?: string;
  /** git sources: the bare cache repository holding the commit. */
  gitDir?: string;
  /** Directory sources: exactly the files hashed (and later packed). */
  files?: TreeEntry[];
  ovsPin?: OvsPin;
}

/** A file every real source tree of the project has; tells OVS and OVN apart from anything else. */
const MARKER: Record<ProjectName, string> = { openvswitch: 'vswitchd/bridge.c', ovn: 'controller/ovn-controller.c' };
const LABEL: Record<ProjectName, string> = { openvswitch: 'Open vSwitch', ovn: 'OVN' };

export interface ResolveContext {
  runner: Runner;
  paths: BuildCachePaths;
  flag: string;
}

function bad(ctx: ResolveContext, message: string): InputError {
  return new InputError([{ path: ctx.flag, message }]);
}

export async function resolveSourceArg(raw: string, project: ProjectName, ctx: ResolveContext): Promise<ResolvedSource> {
  return resolveSource(await classifySource(parseSourceArg(raw, ctx.flag), ctx.flag), project, ctx);
}

export async function resolveSource(spec: SourceSpec, project: ProjectName, ctx: ResolveContext): Promise<ResolvedSource> {
  switch (spec.kind) {
    case 'tarball':
      return resolveTarball(spec, project, ctx);
    case 'directory':
      return resolveDirectory(spec, project, ctx);
    case 'git':
      return resolveGit(spec, project, ctx);
  }
}

function checkProject(ctx: ResolveContext, project: ProjectName, where: string, configureAc: string | undefined, hasMarker: boolean): string {
  const init = configureAc === undefined ? undefined : parseAcInit(configureAc);
  if (init === undefined || !hasMarker) {
    const other: ProjectName = project === 'ovn' ? 'openvswitch' : 'ovn';
    const looksOther = init?.name === other;
    throw bad(
      ctx,
      looksOther
        ? `${where} is an ${LABEL[other]} source, not ${LABEL[project]}`
        : `${where} is not an ${LABEL[project]} source tree (no ${init === undefined ? 'configure.ac with AC_INIT' : MARKER[project]})`,
    );
  }
  if (init.name !== project) throw bad(ctx, `${where} is the source of '${init.name}', not ${LABEL[project]}`);
  return init.version;
}

async function resolveTarball(spec: Extract<SourceSpec, { kind: 'tarball' }>, project: ProjectName, ctx: ResolveContext): Promise<ResolvedSource> {
  const tar = new Tar(ctx.runner);
  const listing = await tar.list(spec.path);
  if (listing.error !== undefined) throw bad(ctx, `${spec.path} is not a readable tarball: ${listing.error}`);
  const topdir = tarTopDir(listing.members);
  if (topdir === undefined) throw bad(ctx, `${spec.path} has no single top-level folder (expected a release tarball like openvswitch-3.1.0/...)`);
  const names = new Set(listing.members.map((m) => m.name.replace(/^\.\//, '')));
  const configureAc = names.has(`${topdir}/configure.ac`) ? await tar.readMember(spec.path, `${topdir}/configure.ac`) : undefined;
  const version = checkProject(ctx, project, spec.path, configureAc, names.has(`${topdir}/${MARKER[project]}`));
  const resolved: ResolvedSource = {
    project,
    spec,
    identity: { kind: 'tarball', path: spec.path, sha256: await sha256File(spec.path) },
    version,
    sourceDateEpoch: newestMtime(listing.members),
    needsBootstrap: !names.has(`${topdir}/configure`),
    topdir,
  };
  if (project === 'ovn' && names.has(`${topdir}/ovs/${MARKER.openvswitch}`)) {
    const ovsAc = await tar.readMember(spec.path, `${topdir}/ovs/configure.ac`);
    const v = ovsAc === undefined ? undefined : parseAcInit(ovsAc)?.version;
    resolved.ovsPin = { tarballMember: `${topdir}/ovs`, ...(v === undefined ? {} : { version: v }) };
  }
  return resolved;
}

function newestMtime(members: readonly { mtimeSec: number }[]): number {
  return members.reduce((max, m) => Math.max(max, m.mtimeSec), 0);
}

/** Files of a working tree: git's view (tracked + untracked, not ignored) when it is a checkout. */
async function directoryFiles(dir: string, project: ProjectName, runner: Runner): Promise<TreeEntry[]> {
  const isCheckout = await fs.stat(path.join(dir, '.git')).then(
    () => true,
    () => false,
  );
  // OVN's ovs/ submodule is not part of OVN's build input: OVN compiles against our OVS tree.
  const skipTop = project === 'ovn' ? 'ovs/' : undefined;
  let entries: TreeEntry[];
  if (isCheckout) {
    const r = await runner.run(['git', '-C', dir, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      env: { GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' },
      timeoutMs: 60_000,
      mutates: false,
    });
    const rels = [...new Set(r.stdout.split('\0').filter((p) => p !== ''))];
    entries = [];
    for (const rel of rels) {
      const st = await fs.lstat(path.join(dir, rel)).catch(() => undefined);
      // Deleted-but-tracked files and submodule directories are not content.
      if (st === undefined || st.isDirectory()) continue;
      entries.push(await treeEntry(dir, rel));
    }
  } else {
    entries = await walkTree(dir, new Set(['.git', 'autom4te.cache']));
  }
  return skipTop === undefined ? entries : entries.filter((e) => !e.rel.startsWith(skipTop));
}

async function resolveDirectory(spec: Extract<SourceSpec, { kind: 'directory' }>, project: ProjectName, ctx: ResolveContext): Promise<ResolvedSource> {
  const read = (rel: string) => fs.readFile(path.join(spec.path, rel), 'utf8').catch(() => undefined);
  const exists = (rel: string) =>
    fs.stat(path.join(spec.path, rel)).then(
      () => true,
      () => false,
    );
  const version = checkProject(ctx, project, spec.path, await read('configure.ac'), await exists(MARKER[project]));
  const files = await directoryFiles(spec.path, project, ctx.runner);
  const resolved: ResolvedSource = {
    project,
    spec,
    identity: { kind: 'directory', path: spec.path, treeSha256: await hashTree(spec.path, files), files: files.length },
    version,
    sourceDateEpoch: files.reduce((max, f) => Math.max(max, f.mtimeSec), 0),
    needsBootstrap: !files.some((f) => f.rel === 'configure'),
    files,
  };
  if (project === 'ovn') resolved.ovsPin = await directoryOvsPin(spec.path, ctx);
  return resolved;
}

async function directoryOvsPin(dir: string, ctx: ResolveContext): Promise<OvsPin | undefined> {
  const sub = path.join(dir, 'ovs');
  const ac = await fs.readFile(path.join(sub, 'configure.ac'), 'utf8').catch(() => undefined);
  const populated = ac !== undefined && (await fs.stat(path.join(sub, MARKER.openvswitch)).then(() => true, () => false));
  const pin: OvsPin = {};
  if (populated) {
    pin.dir = sub;
    const v = parseAcInit(ac)?.version;
    if (v !== undefined) pin.version = v;
  }
  // An unpopulated submodule still names its commit in the checkout's index.
  const r = await ctx.runner.run(['git', '-C', dir, 'ls-tree', 'HEAD', 'ovs'], { env: { GIT_TERMINAL_PROMPT: '0' }, timeoutMs: 30_000, allowFailure: true, mutates: false });
  const m = /^160000 commit ([0-9a-f]{40})\t/.exec(r.stdout);
  if (m?.[1] !== undefined) pin.commit = m[1];
  const gm = await fs.readFile(path.join(dir, '.gitmodules'), 'utf8').catch(() => undefined);
  const url = gm === undefined ? undefined : submoduleUrl(gm, 'ovs');
  if (url !== undefined) pin.url = url;
  return Object.keys(pin).length === 0 ? undefined : pin;
}

/** The bare cache repository of a URL (one per URL, shared by every build using this cache). */
export function gitCacheDir(paths: BuildCachePaths, url: string): string {
  return paths.gitRepo(sha256(url).slice(0, 16));
}

async function resolveGit(spec: Extract<SourceSpec, { kind: 'git' }>, project: ProjectName, ctx: ResolveContext): Promise<ResolvedSource> {
  const git = new Git(ctx.runner, gitCacheDir(ctx.paths, spec.url));
  await git.ensureBare();
  let commit: string | undefined;
  let tagged = false;
  if (spec.ref !== undefined && /^[0-9a-f]{40}$/.test(spec.ref) && (await git.hasCommit(spec.ref))) {
    // A commit already fetched: no network needed.
    commit = spec.ref;
  } else {
    const remote = await git.lsRemote(spec.url);
    if (remote.error !== undefined) throw bad(ctx, `cannot read git repository ${spec.url}: ${remote.error}`);
    const res = resolveRef(remote.refs, spec.ref);
    if (res.kind === 'missing') {
      const near = suggestRefs(remote.refs, spec.ref ?? 'HEAD');
      throw bad(ctx, `ref '${spec.ref ?? 'HEAD'}' does not exist in ${spec.url}${near.length > 0 ? ` (some refs there: ${near.join(', ')})` : ''}`);
    }
    const fetched = await git.fetchCommit(spec.url, res.kind === 'ref' ? res.name : res.sha, res.sha);
    if (fetched.sha === undefined) throw bad(ctx, `cannot fetch ${spec.ref ?? 'HEAD'} from ${spec.url}: ${fetched.error ?? 'unknown error'}`);
    commit = fetched.sha;
    tagged = res.kind === 'ref' && res.name.startsWith('refs/tags/');
  }
  const where = `${spec.url}#${spec.ref ?? 'HEAD'}`;
  const configureAc = await git.show(commit, 'configure.ac');
  const markerPresent = (await git.show(commit, MARKER[project])) !== undefined;
  const version = checkProject(ctx, project, where, configureAc, markerPresent);
  const resolved: ResolvedSource = {
    project,
    spec,
    identity: { kind: 'git', url: spec.url, commit, tagged, ...(spec.ref === undefined ? {} : { ref: spec.ref }) },
    version,
    sourceDateEpoch: await git.commitTime(commit),
    needsBootstrap: (await git.show(commit, 'configure')) === undefined,
    gitDir: git.gitDir,
  };
  if (project === 'ovn') {
    const pinCommit = await git.submodulePin(commit, 'ovs');
    const gm = await git.show(commit, '.gitmodules');
    const url = gm === undefined ? undefined : submoduleUrl(gm, 'ovs');
    if (pinCommit !== undefined || url !== undefined) {
      resolved.ovsPin = { ...(pinCommit === undefined ? {} : { commit: pinCommit }), ...(url === undefined ? {} : { url }) };
    }
  }
  return resolved;
}

/** The version of the OVS commit an OVN git source pins, read from an OVS git source's cache. */
export async function pinnedVersionFromGit(ovs: ResolvedSource, pin: OvsPin, runner: Runner): Promise<string | undefined> {
  if (pin.commit === undefined || ovs.identity.kind !== 'git' || ovs.gitDir === undefined) return undefined;
  const git = new Git(runner, ovs.gitDir);
  if (!(await git.hasCommit(pin.commit))) {
    const f = await git.fetchCommit(ovs.identity.url, pin.commit, pin.commit);
    if (f.sha === undefined) return undefined;
  }
  const ac = await git.show(pin.commit, 'configure.ac');
  return ac === undefined ? undefined : parseAcInit(ac)?.version;
}

