/**
 * Fixtures of the build tests: tiny OVS/OVN-shaped source trees (only what the resolver reads:
 * configure.ac, a marker file; no OVS or OVN code), git repositories made of them, a runner that
 * records what a real build ran, podman settings that work on this machine (runc, cgroupfs, a
 * private store), the persistent caches under the checkout's gitignored .cache/, and the one place
 * that finds OVN's source (OVN_SOURCE, else shared/sources beside the checkout).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkoutCacheDir, packageRoot } from '../../src/paths.js';
import { ZxRunner, type RunOptions, type RunResult, type Runner } from '../../src/runner.js';

export const OVS_TARBALL = '/usr/src/openvswitch/openvswitch.tar.gz';
/** Shared by every build test and the bench: a warm ccache keeps reruns short. */
export const persistentCcache = path.join(checkoutCacheDir, 'ccache');
/** Artifacts and base images the image tests reuse between runs. */
export const persistentBuildCache = path.join(checkoutCacheDir, 'build-test');
/**
 * The LTS pair's artifacts (OVS 3.3.8 + OVN 24.03.9), shared by every test that builds it. Apart
 * from persistentBuildCache because a cache keeps one OVS build tree: an OVS 3.1 build there
 * would replace the 3.3.8 tree, and the next OVN 24.03 change would compile OVS 3.3.8 again.
 */
export const persistentLtsBuildCache = path.join(checkoutCacheDir, 'build-test-lts');

const runner = new ZxRunner();

export async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

export async function tmpDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `ovn-deploy-${prefix}-`));
}

export function randomName(prefix: string): string {
  return `${prefix}${randomBytes(3).toString('hex')}`;
}

/** Records every command a real build runs (to prove that no compiler ran). */
export class TeeRunner implements Runner {
  readonly calls: string[][] = [];
  constructor(private readonly inner: Runner = new ZxRunner()) {}
  async run(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    this.calls.push([...argv]);
    return this.inner.run(argv, opts);
  }
  /** Program names run, with `sh -c 'exec "$@"' sh PROG` unwrapped. */
  programs(): string[] {
    return this.calls.map((a) => (a[0] === 'sh' && a[1] === '-c' && a[3] === 'sh' ? (a[4] ?? '') : (a[0] ?? ''))).map((p) => path.basename(p));
  }
}

async function write(file: string, content: string, mode = 0o644): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content, { mode });
}

/** A tree the resolver takes for Open vSwitch VERSION (configure.ac, vswitchd/bridge.c, configure). */
export async function fakeOvsTree(dir: string, version: string, withConfigure = true): Promise<string> {
  await write(path.join(dir, 'configure.ac'), `AC_INIT(openvswitch, ${version}, bugs@openvswitch.org)\n`);
  await write(path.join(dir, 'vswitchd', 'bridge.c'), '/* fixture */\n');
  if (withConfigure) await write(path.join(dir, 'configure'), '#!/bin/sh\nexit 0\n', 0o755);
  return dir;
}

/** A tree the resolver takes for OVN VERSION; `ovsSubmodule` adds a populated ovs/ of that version. */
export async function fakeOvnTree(dir: string, version: string, ovsSubmodule?: string): Promise<string> {
  await write(path.join(dir, 'configure.ac'), `AC_INIT(ovn, ${version}, bugs@openvswitch.org)\n`);
  await write(path.join(dir, 'controller', 'ovn-controller.c'), '/* fixture */\n');
  await write(path.join(dir, 'configure'), '#!/bin/sh\nexit 0\n', 0o755);
  if (ovsSubmodule !== undefined) await fakeOvsTree(path.join(dir, 'ovs'), ovsSubmodule);
  return dir;
}

export async function git(cwd: string, args: string[]): Promise<string> {
  const r = await runner.run(['git', ...args], {
    cwd,
    timeoutMs: 30_000,
    env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.invalid', GIT_AUTHOR_DATE: '@1700000000 +0000', GIT_COMMITTER_DATE: '@1700000000 +0000' },
  });
  return r.stdout.trim();
}

/** Commits everything in `dir` (a new repository) and tags it; returns the commit id. */
export async function commitAll(dir: string, tag?: string): Promise<string> {
  if (!(await exists(path.join(dir, '.git')))) await git(dir, ['init', '-q', '-b', 'main']);
  await git(dir, ['add', '-A']);
  await git(dir, ['commit', '-q', '-m', 'fixture']);
  if (tag !== undefined) await git(dir, ['tag', tag]);
  return git(dir, ['rev-parse', 'HEAD']);
}

/** podman settings this machine needs (runc, cgroupfs) and a private image store under `dir`. */
export async function podmanEnv(dir: string): Promise<Record<string, string>> {
  await fs.mkdir(dir, { recursive: true });
  const conf = path.join(dir, 'containers.conf');
  const storage = path.join(dir, 'storage.conf');
  await fs.writeFile(
    conf,
    '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n',
  );
  await fs.writeFile(storage, `[storage]\ndriver = "overlay"\ngraphroot = "${path.join(dir, 'graph')}"\nrunroot = "${path.join(dir, 'run')}"\n`);
  return { CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storage };
}

/**
 * Upstream release archives provided beside the project (shared/sources next to the checkout, in
 * CI too, read-only there): read in place, never copied into the repository.
 */
export const SHARED_SOURCES = path.resolve(packageRoot, '..', 'shared', 'sources');
/** OVN 23.03.1: it builds against Debian's openvswitch-source (OVS 3.1). */
export const SHARED_OVN_ARCHIVE = path.join(SHARED_SOURCES, 'ovn-23.03.1.tar.xz');
/** The current LTS pair: OVN 24.03.9, whose ovs submodule pins OVS 3.3.8. */
export const SHARED_LTS_OVS_ARCHIVE = path.join(SHARED_SOURCES, 'openvswitch-3.3.8.tar.xz');
export const SHARED_LTS_OVN_ARCHIVE = path.join(SHARED_SOURCES, 'ovn-24.03.9.tar.xz');

function warnSkipped(who: string, what: string, variable: string, shared: string): void {
  const bar = '!'.repeat(100);
  console.warn(
    `${bar}\nSKIPPED: ${who}: no ${what} source. ${variable} is not set and ${shared} does not exist; set ${variable} to a git URL[#ref], release tarball or source directory, or put shared/sources/${path.basename(shared)} beside the checkout.\n${bar}`,
  );
}

/** `variable` from the environment when set, else `shared` when it exists, else undefined (and a loud warning naming both). */
export function sourceFor(who: string, what: string, variable: string, shared: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env[variable];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (existsSync(shared)) return shared;
  warnSkipped(who, what, variable, shared);
  return undefined;
}

/**
 * The OVN source of every test that builds OVN 23.03 against Debian's OVS: OVN_SOURCE when set,
 * else the shared archive. Undefined (and a loud warning naming both places) only when neither
 * exists; `who` names the test.
 */
export function ovnSourceFor(who: string, env: NodeJS.ProcessEnv = process.env, shared = SHARED_OVN_ARCHIVE): string | undefined {
  return sourceFor(who, 'OVN', 'OVN_SOURCE', shared, env);
}

export interface SourcePair {
  ovs: string;
  ovn: string;
}

/**
 * The LTS pair (OVS 3.3.8 + OVN 24.03.9): each from OVS_SOURCE / OVN_SOURCE when set, else from
 * the shared archive; undefined (a warning naming each missing one) when either has neither.
 */
export function ltsSourcesFor(who: string, env: NodeJS.ProcessEnv = process.env, shared = { ovs: SHARED_LTS_OVS_ARCHIVE, ovn: SHARED_LTS_OVN_ARCHIVE }): SourcePair | undefined {
  const ovs = sourceFor(who, 'Open vSwitch 3.3', 'OVS_SOURCE', shared.ovs, env);
  const ovn = sourceFor(who, 'OVN 24.03', 'OVN_SOURCE', shared.ovn, env);
  return ovs === undefined || ovn === undefined ? undefined : { ovs, ovn };
}

/** Mount points at or under `dir`, deepest first (from this process's mount table). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const table = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const unescape = (p: string) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const points = table.split('\n').map((l) => unescape(l.split(' ')[4] ?? ''));
  return points.filter((p) => p === dir || p.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}

/**
 * Removes a private podman store made by podmanEnv(dir) and only that: the named containers, every
 * image in that store (nothing else can use it), then the overlay mounts podman left under `dir`.
 * Never `podman system reset`/`prune`: they also delete machine-wide networks and settings.
 */
export async function removePrivatePodmanStore(dir: string, env: Record<string, string>, containers: string[]): Promise<void> {
  if (env.CONTAINERS_STORAGE_CONF !== path.join(dir, 'storage.conf')) throw new Error(`not a private store made by podmanEnv(${dir})`);
  const podman = (args: string[]) => runner.run(['podman', ...args], { env, allowFailure: true, timeoutMs: 120_000 });
  for (const c of containers) await podman(['rm', '-f', '-t', '2', c]);
  const images = (await podman(['images', '-a', '--format', '{{.ID}}'])).stdout.split('\n').filter((l) => /^[0-9a-f]+$/.test(l));
  if (images.length > 0) await podman(['rmi', '-f', ...new Set(images)]);
  for (const m of await mountsUnder(dir)) await runner.run(['umount', m], { allowFailure: true, timeoutMs: 30_000 });
  await fs.rm(dir, { recursive: true, force: true });
}
