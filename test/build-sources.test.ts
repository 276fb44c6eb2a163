/**
 * Source resolution with real git and tar on small fixture trees (shaped like OVS/OVN, holding
 * no OVS/OVN code), and the bad inputs a build must refuse before compiling anything: missing or
 * unreadable sources, a ref that does not exist, the wrong project, an OVS too old for the OVN,
 * and rpmbuild or podman not installed.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImages } from '../src/packaging/image-pipeline.js';
import { defaultOvsSpec } from '../src/packaging/ovs-default.js';
import { EXIT_MISSING_TOOL } from '../src/packaging/preflight.js';
import { buildRpms } from '../src/packaging/rpm-pipeline.js';
import { resolveSourceArg } from '../src/packaging/sources.js';
import { ExitError, InputError } from '../src/errors.js';
import { main } from '../src/main.js';
import { buildCachePaths } from '../src/paths.js';
import { ZxRunner } from '../src/runner.js';
import { commitAll, fakeOvnTree, fakeOvsTree, git, tmpDir } from './helpers/build-fixtures.js';

let root: string;
const runner = new ZxRunner();
let paths: ReturnType<typeof buildCachePaths>;
const ctx = (flag: string) => ({ runner, paths, flag });

async function problemOf(p: Promise<unknown>): Promise<{ path: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  const first = (err as InputError).problems[0];
  expect(first).toBeDefined();
  return first as { path: string; message: string };
}

beforeAll(async () => {
  root = await tmpDir('build-sources');
  paths = buildCachePaths(path.join(root, 'cache'));
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('directory sources', () => {
  it('read version, content digest and date; content changes the digest, a touch does not', async () => {
    const dir = await fakeOvsTree(path.join(root, 'ovs-dir'), '3.1.0');
    const a = await resolveSourceArg(dir, 'openvswitch', ctx('--ovs-source'));
    expect(a.version).toBe('3.1.0');
    expect(a.identity.kind).toBe('directory');
    expect(a.needsBootstrap).toBe(false);
    const when = new Date('2024-01-02T03:04:05Z');
    await fs.utimes(path.join(dir, 'vswitchd', 'bridge.c'), when, when);
    const touched = await resolveSourceArg(dir, 'openvswitch', ctx('--ovs-source'));
    expect(touched.identity).toEqual(a.identity);
    await fs.appendFile(path.join(dir, 'vswitchd', 'bridge.c'), '/* one more line */\n');
    const changed = await resolveSourceArg(dir, 'openvswitch', ctx('--ovs-source'));
    expect(changed.identity).not.toEqual(a.identity);
    expect(changed.sourceDateEpoch).toBeGreaterThan(when.getTime() / 1000);
  });

  it('refuse a tree of the other project, or of nothing', async () => {
    const ovn = await fakeOvnTree(path.join(root, 'ovn-as-ovs'), '23.03.1');
    expect((await problemOf(resolveSourceArg(ovn, 'openvswitch', ctx('--ovs-source')))).message).toMatch(/is an OVN source, not Open vSwitch/);
    const empty = path.join(root, 'empty');
    await fs.mkdir(empty, { recursive: true });
    const p = await problemOf(resolveSourceArg(empty, 'ovn', ctx('--ovn-source')));
    expect(p.path).toBe('--ovn-source');
    expect(p.message).toMatch(/is not an OVN source tree/);
  });

  it('take OVS from a populated ovs/ submodule of an OVN tree', async () => {
    const ovn = await resolveSourceArg(await fakeOvnTree(path.join(root, 'ovn-with-ovs'), '24.03.1', '3.3.1'), 'ovn', ctx('--ovn-source'));
    expect(ovn.ovsPin).toMatchObject({ version: '3.3.1' });
    const spec = await defaultOvsSpec(ovn, runner, paths);
    expect(spec).toMatchObject({ kind: 'directory', path: path.join(root, 'ovn-with-ovs', 'ovs') });
  });
});

describe('tarball sources', () => {
  it('read the top folder, version and the newest mtime', async () => {
    const src = await fakeOvsTree(path.join(root, 'tar-src', 'openvswitch-3.2.0'), '3.2.0');
    const when = new Date('2024-05-06T07:08:09Z');
    await fs.utimes(path.join(src, 'configure.ac'), when, when);
    const tarball = path.join(root, 'openvswitch-3.2.0.tar.gz');
    await runner.run(['tar', '-czf', tarball, '-C', path.join(root, 'tar-src'), 'openvswitch-3.2.0']);
    const r = await resolveSourceArg(tarball, 'openvswitch', ctx('--ovs-source'));
    expect(r).toMatchObject({ version: '3.2.0', topdir: 'openvswitch-3.2.0', needsBootstrap: false });
    expect(r.identity).toMatchObject({ kind: 'tarball' });
    expect(r.sourceDateEpoch).toBeGreaterThanOrEqual(when.getTime() / 1000);
  });

  it('refuse a missing file and a file that is not a tarball', async () => {
    const missing = await problemOf(resolveSourceArg(path.join(root, 'nope.tar.gz'), 'openvswitch', ctx('--ovs-source')));
    expect(missing).toMatchObject({ path: '--ovs-source' });
    expect(missing.message).toMatch(/nope\.tar\.gz does not exist \(expected a git URL\[#ref\], a release tarball or a source directory\)/);
    const garbage = path.join(root, 'garbage.tar.gz');
    await fs.writeFile(garbage, 'this is not a tarball\n');
    expect((await problemOf(resolveSourceArg(garbage, 'openvswitch', ctx('--ovs-source')))).message).toMatch(/garbage\.tar\.gz is not a readable tarball: .*tar archive/);
  });
});

describe('git sources', () => {
  let ovsRepo: string;
  let ovsCommit: string;

  beforeAll(async () => {
    ovsRepo = await fakeOvsTree(path.join(root, 'ovs-git'), '3.3.0', false);
    ovsCommit = await commitAll(ovsRepo, 'v3.3.0');
  });

  it('resolve a tag of a local repository, by path#ref and by file:// URL', async () => {
    for (const arg of [`${ovsRepo}#v3.3.0`, `file://${ovsRepo}#v3.3.0`]) {
      const r = await resolveSourceArg(arg, 'openvswitch', ctx('--ovs-source'));
      expect(r.identity).toMatchObject({ kind: 'git', commit: ovsCommit, tagged: true });
      expect(r).toMatchObject({ version: '3.3.0', needsBootstrap: true, sourceDateEpoch: 1700000000 });
    }
  });

  it('refuse a ref that does not exist, listing refs that do', async () => {
    const p = await problemOf(resolveSourceArg(`${ovsRepo}#v9.9.9`, 'openvswitch', ctx('--ovs-source')));
    expect(p.path).toBe('--ovs-source');
    expect(p.message).toMatch(/ref 'v9\.9\.9' does not exist in .*ovs-git \(some refs there: .*v3\.3\.0/);
  });

  it('refuse a repository that cannot be read', async () => {
    const p = await problemOf(resolveSourceArg(`file://${path.join(root, 'no-such-repo')}#main`, 'openvswitch', ctx('--ovs-source')));
    expect(p.message).toMatch(/cannot read git repository/);
  });

  it("an OVN checkout's ovs submodule pin becomes the default OVS (URL and commit)", async () => {
    const ovnRepo = await fakeOvnTree(path.join(root, 'ovn-git'), '24.03.0');
    await fs.writeFile(path.join(ovnRepo, '.gitmodules'), `[submodule "ovs"]\n\tpath = ovs\n\turl = ${ovsRepo}\n`);
    await git(ovnRepo, ['init', '-q', '-b', 'main']);
    await git(ovnRepo, ['update-index', '--add', '--cacheinfo', `160000,${ovsCommit},ovs`]);
    // An uninitialised submodule is an empty folder, as in a fresh clone.
    await fs.mkdir(path.join(ovnRepo, 'ovs'), { recursive: true });
    await commitAll(ovnRepo, 'v24.03.0');
    const ovn = await resolveSourceArg(`${ovnRepo}#v24.03.0`, 'ovn', ctx('--ovn-source'));
    expect(ovn.ovsPin).toEqual({ commit: ovsCommit, url: ovsRepo });
    expect(await defaultOvsSpec(ovn, runner, paths)).toMatchObject({ kind: 'git', url: ovsRepo, ref: ovsCommit });
  });
});

describe('builds refused before compiling', () => {
  it('an OVS too old for the OVN given (from the OVN tree’s ovs submodule)', async () => {
    const ovs = await fakeOvsTree(path.join(root, 'old-ovs'), '3.1.0');
    const ovn = await fakeOvnTree(path.join(root, 'new-ovn'), '24.03.1', '3.3.0');
    const err = await buildRpms({ ovsSource: ovs, ovnSource: ovn, outDir: path.join(root, 'out-old'), cacheDir: path.join(root, 'cache-old'), progress: 'silent' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toMatch(/--ovs-source: Open vSwitch 3\.1\.0 is too old for OVN 24\.03\.1: it needs OVS >= 3\.3\.0 \(its ovs submodule pins OVS 3\.3\.0\)/);
    const summary = JSON.parse(await fs.readFile(path.join(root, 'out-old', 'build-summary.json'), 'utf8')) as { ok: boolean; failure: { step: string } };
    expect(summary).toMatchObject({ ok: false, failure: { step: 'Plan: hash the inputs, look in the cache' } });
    expect(await fs.readdir(path.join(root, 'cache-old', 'artifacts')).catch(() => [])).toEqual([]);
  });

  it('an OVS too old for the OVN given (from the release table, no submodule)', async () => {
    const ovs = await fakeOvsTree(path.join(root, 'old-ovs2'), '3.2.0');
    const ovn = await fakeOvnTree(path.join(root, 'new-ovn2'), '25.03.0');
    const err = await buildRpms({ ovsSource: ovs, ovnSource: ovn, outDir: path.join(root, 'out-old2'), cacheDir: path.join(root, 'cache-old2'), progress: 'silent', planOnly: true }).catch((e: unknown) => e);
    expect((err as InputError).message).toMatch(/needs OVS >= 3\.5\.0 \(OVN 25\.03\.0's ovs submodule pins OVS 3\.5\.0\)/);
  });

  it('no source at all', async () => {
    const err = await buildRpms({ outDir: path.join(root, 'out-none'), cacheDir: path.join(root, 'cache-none'), progress: 'silent' }).catch((e: unknown) => e);
    expect((err as InputError).problems[0]).toMatchObject({ path: '--ovs-source' });
  });
});

describe('missing tools', () => {
  const noTools = { exists: () => false, executable: () => false, pathDirs: [] };

  it('no rpmbuild: exit 69 with how to install it', async () => {
    const err = await buildRpms({ ovsSource: root, outDir: path.join(root, 'o'), cacheDir: path.join(root, 'c'), probe: noTools, progress: 'silent' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExitError);
    expect((err as ExitError).exitCode).toBe(EXIT_MISSING_TOOL);
    expect((err as ExitError).message).toMatch(/rpmbuild \(for building RPMs\)[\s\S]*install with: apt-get install rpm/);
  });

  it('no podman: exit 69 with how to install it', async () => {
    const err = await buildImages({ rpmsDir: root, baseImage: 'x', outDir: path.join(root, 'o'), cacheDir: path.join(root, 'c'), probe: noTools, progress: 'silent' }).catch((e: unknown) => e);
    expect((err as ExitError).exitCode).toBe(EXIT_MISSING_TOOL);
    expect((err as ExitError).message).toMatch(/podman \(for building container images\)[\s\S]*apt-get install podman/);
  });

  it('the CLI says the same with a PATH that has no rpmbuild', async () => {
    const emptyPath = path.join(root, 'empty-path');
    await fs.mkdir(emptyPath, { recursive: true });
    const saved = process.env.PATH;
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.env.PATH = emptyPath;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      const code = await main(['node', 'ovn-deploy', 'build', 'rpms', '--ovs-source', root, '--out', path.join(root, 'cli-out'), '--cache-dir', path.join(root, 'cli-cache')]);
      expect(code).toBe(EXIT_MISSING_TOOL);
    } finally {
      process.env.PATH = saved;
      process.stderr.write = write;
    }
    expect(written.join('')).toMatch(/ovn-deploy: not installed:\n {2}rpmbuild \(for building RPMs\)/);
  });
});
