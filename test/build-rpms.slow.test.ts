/**
 * Real Open vSwitch RPM builds from Debian's openvswitch-source (offline): inspect the packages
 * (rpm -qpl/-qpR/-qpi), install them into a scratch root and run the binaries, rpmlint, no rebuild
 * for unchanged inputs, identical payloads from two builds, a one-line change that recompiles
 * one file, and CI mode's report of a failing step. One cold build is shared by the file; the
 * ccache is the checkout's persistent .cache/ccache so reruns stay short.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpmQuery, type RpmFileInfo } from '../src/packaging/rpm.js';
import { buildRpms, type BuildRpmsResult } from '../src/packaging/rpm-pipeline.js';
import { main } from '../src/main.js';
import { ZxRunner } from '../src/runner.js';
import { OVS_TARBALL, TeeRunner, fakeOvsTree, persistentCcache, randomName, tmpDir } from './helpers/build-fixtures.js';

const runner = new ZxRunner();
const rpmq = new RpmQuery(runner);
let root: string;
let cold: BuildRpmsResult;
const outA = () => path.join(root, 'out-a');

const rpmFile = (r: BuildRpmsResult, name: string): string => {
  const a = r.artifacts.flatMap((x) => x.files).find((f) => f.rpm?.name === name);
  if (a === undefined) throw new Error(`no ${name} RPM`);
  return a.file;
};

async function payload(file: string): Promise<Map<string, RpmFileInfo>> {
  return new Map((await rpmq.files(file)).map((f) => [f.path, f]));
}

/**
 * Imports ovs.db.idl from `site` and nowhere else: -I ignores PYTHON* variables and the user site,
 * -S skips site.py (so no dist-packages); prints ovs.__file__ and ovs.version.VERSION.
 */
async function importOvsOnlyFrom(site: string): Promise<{ code: number; out: string }> {
  const code = 'import sys; sys.path[:0] = [sys.argv[1]]; import ovs.db.idl, ovs.version; print(ovs.__file__); print(ovs.version.VERSION)';
  const r = await runner.run(['/usr/bin/python3', '-I', '-S', '-c', code, site], { allowFailure: true, timeoutMs: 30_000 });
  return { code: r.exitCode, out: `${r.stdout}${r.stderr}` };
}

async function q(args: string[]): Promise<string> {
  return (await runner.run(['rpm', '-qp', '--nosignature', ...args], { timeoutMs: 60_000 })).stdout;
}

beforeAll(async () => {
  root = await tmpDir('build-rpms');
  await fs.mkdir(persistentCcache, { recursive: true });
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe("OVS RPMs from Debian's openvswitch-source", () => {
  it('builds openvswitch, -devel, python3-openvswitch and -test', async () => {
    cold = await buildRpms({ ovsSource: OVS_TARBALL, outDir: outA(), cacheDir: path.join(root, 'cache-a'), ccacheDir: persistentCcache, progress: 'silent' });
    const a = cold.summary.artifacts[0];
    console.log(`first OVS build (empty artifact cache; ccache as left by earlier runs): ${((a?.durationMs ?? 0) / 1000).toFixed(1)} s, ${a?.compiled} compiled, ${a?.ccacheHits} from ccache`);
    const names = cold.artifacts.flatMap((x) => x.files.map((f) => f.rpm?.name)).sort();
    expect(names).toEqual(['openvswitch', 'openvswitch-devel', 'openvswitch-test', 'python3-openvswitch']);
    for (const f of cold.artifacts[0]?.files ?? []) expect(await fs.stat(path.join(outA(), f.file))).toBeTruthy();
    const manifest = JSON.parse(await fs.readFile(path.join(outA(), 'build-manifest.json'), 'utf8')) as { artifacts: { hash: string; version: string; files: { path: string; sha256: string }[] }[] };
    expect(manifest.artifacts[0]).toMatchObject({ hash: cold.plan.ovs.hash, version: '3.1.0' });
    expect(manifest.artifacts[0]?.files.map((f) => f.sha256)).toEqual(cold.artifacts[0]?.files.map((f) => f.sha256));
  });

  it('has the files, dependencies and header an operator expects (rpm -qpl, -qpR, -qpi)', async () => {
    const main = path.join(outA(), rpmFile(cold, 'openvswitch'));
    const files = (await q(['-l', main])).split('\n');
    for (const f of ['/usr/sbin/ovsdb-server', '/usr/sbin/ovs-vswitchd', '/usr/bin/ovs-vsctl', '/usr/share/openvswitch/vswitch.ovsschema', '/usr/lib/systemd/system/ovsdb-server.service', '/usr/lib/systemd/system/ovs-vswitchd.service', '/usr/lib/systemd/system/openvswitch.service', '/etc/logrotate.d/openvswitch', '/usr/lib/sysusers.d/openvswitch.conf', '/var/lib/openvswitch', '/var/log/openvswitch', '/run/openvswitch']) {
      expect(files).toContain(f);
    }
    // Python modules and tools are in their own packages, headers in -devel.
    expect(files.some((f) => f.includes('site-packages') || f.startsWith('/usr/include'))).toBe(false);
    const flags = await q(['--qf', '[%{FILENAMES} %{FILEFLAGS:fflags} %{FILEUSERNAME}\n]', main]);
    expect(flags).toMatch(/^\/etc\/sysconfig\/openvswitch c*n/m);
    expect(flags).toMatch(/^\/etc\/logrotate\.d\/openvswitch c*n/m);
    expect(flags).toMatch(/^\/run\/openvswitch g openvswitch$/m);

    const requires = (await q(['-R', main])).split('\n').map((l) => l.trim());
    expect(requires).toEqual(expect.arrayContaining(['libssl.so.3()(64bit)', 'libcap-ng.so.0()(64bit)', 'libunbound.so.8()(64bit)', 'logrotate', 'shadow-utils', '/bin/sh']));
    expect((await q(['-R', path.join(outA(), rpmFile(cold, 'openvswitch-devel'))])).split('\n')).toContain('openvswitch(x86-64) = 3.1.0-1');
    expect(await q(['-R', path.join(outA(), rpmFile(cold, 'python3-openvswitch'))])).toMatch(/python\(abi\)|python3/);

    const info = await q(['-i', main]);
    expect(info).toMatch(/^Name\s*: openvswitch$/m);
    expect(info).toMatch(/^Version\s*: 3\.1\.0$/m);
    expect(info).toMatch(/^Release\s*: 1$/m);
    expect(info).toMatch(/^License\s*: Apache-2\.0 AND LGPL-2\.1-only AND SISSL$/m);
    expect(info).toMatch(/^Build Host\s*: ovn-deploy\.localdomain$/m);
    expect(Number(await q(['--qf', '%{BUILDTIME}', main]))).toBe(cold.artifacts[0]?.sourceDateEpoch);
    // The users and groups the daemons run as are created at install time.
    expect(await q(['--scripts', main])).toMatch(/preinstall scriptlet[\s\S]*groupadd -r openvswitch[\s\S]*useradd -r -g openvswitch/);
  });

  it('installs with rpm --root into a scratch root, whose binaries run', async () => {
    const scratch = path.join(root, 'scratch-root');
    await fs.mkdir(scratch, { recursive: true });
    await runner.run(['rpm', '--root', scratch, '--initdb'], { timeoutMs: 60_000 });
    // --noscripts: the scratch root has no shell for the %pre user creation.
    const rpms = (cold.artifacts[0]?.files ?? []).map((f) => path.join(outA(), f.file));
    await runner.run(['rpm', '-ivh', '--nodeps', '--noscripts', '--root', scratch, ...rpms], { timeoutMs: 120_000 });
    expect((await runner.run(['rpm', '--root', scratch, '-qa'], { timeoutMs: 60_000 })).stdout.split('\n').filter((l) => l !== '').sort()).toHaveLength(4);
    const bin = (p: string) => path.join(scratch, p);
    expect((await runner.run([bin('/usr/bin/ovs-vsctl'), '--version'])).stdout).toMatch(/ovs-vsctl \(Open vSwitch\) 3\.1\.0/);
    const db = path.join(root, 'conf.db');
    await runner.run([bin('/usr/bin/ovsdb-tool'), 'create', db, bin('/usr/share/openvswitch/vswitch.ovsschema')]);
    expect((await runner.run([bin('/usr/bin/ovsdb-tool'), 'db-name', db])).stdout.trim()).toBe('Open_vSwitch');
    // Stripped: no symbol table left in the payload's binaries.
    expect((await runner.run(['readelf', '-S', bin('/usr/sbin/ovsdb-server')])).stdout).not.toMatch(/\.symtab|\.debug_info/);
    // The host has Debian's python3-openvswitch (also 3.1.0): import from the scratch root alone.
    const pyDir = (await fs.readdir(bin('/usr/lib'))).find((d) => d.startsWith('python3'));
    expect(pyDir).toBeDefined();
    const site = bin(`/usr/lib/${pyDir as string}/site-packages`);
    const py = await importOvsOnlyFrom(site);
    expect(py.code, py.out).toBe(0);
    const [file, version] = py.out.trim().split('\n');
    expect(file?.startsWith(`${site}/ovs/`), file).toBe(true);
    expect(version).toBe('3.1.0');
    // The same check with a root that lacks the module fails: it cannot fall back on the host's.
    const empty = path.join(root, 'empty-site-packages');
    await fs.mkdir(empty, { recursive: true });
    const none = await importOvsOnlyFrom(empty);
    expect(none.code).not.toBe(0);
    expect(none.out).toMatch(/ModuleNotFoundError: No module named 'ovs'/);
  });

  it('rpmlint reports no errors but the known, justified ones', async () => {
    const rpms = (cold.artifacts[0]?.files ?? []).map((f) => path.join(outA(), f.file));
    const r = await runner.run(['rpmlint', ...rpms], { timeoutMs: 120_000, allowFailure: true });
    const errors = r.stdout.split('\n').filter((l) => / E: /.test(l));
    const justified = [
      // Signing is a release step with the distributor's key, not part of building.
      / E: no-signature$/,
      // brp-strip-static-archive strips the static libraries on purpose (-devel stays small).
      /openvswitch-devel\.x86_64: E: static-library-without-debuginfo /,
      // Upstream man page names with dots fool rpmlint's section check.
      /openvswitch\.x86_64: E: bad-manual-page-folder \/usr\/share\/man\/man5\/(ovs-vswitchd\.conf\.db|ovsdb\.local-config)\.5 /,
      // Private keys and logs: not world-readable on purpose.
      /openvswitch\.x86_64: E: non-standard-dir-perm \/var\/(lib\/openvswitch\/pki|log\/openvswitch) 750$/,
    ];
    const ours = errors.filter((l) => !justified.some((j) => j.test(l)));
    console.log(`rpmlint: ${errors.length} errors, all known (${[...new Set(errors.map((l) => / E: (\S+)/.exec(l)?.[1]))].join(', ')}); summary: ${r.stdout.trim().split('\n').at(-1)}`);
    expect(ours).toEqual([]);
  });

  it('a second build with unchanged inputs rebuilds nothing: no compiler, under 5 s', async () => {
    const tee = new TeeRunner();
    const started = Date.now();
    const again = await buildRpms({ ovsSource: OVS_TARBALL, outDir: outA(), cacheDir: path.join(root, 'cache-a'), ccacheDir: persistentCcache, progress: 'silent', runner: tee });
    const ms = Date.now() - started;
    console.log(`no-change rebuild: ${ms} ms; programs run: ${[...new Set(tee.programs())].join(' ')}`);
    expect(again.summary.artifacts.map((a) => [a.name, a.cached])).toEqual([['openvswitch', true]]);
    // The builder's identity is part of the input hash: `rpmbuild --version` and `gcc --version` are
    // the only calls of those programs; nothing compiles, configures or packages.
    for (const argv of tee.calls) {
      const prog = path.basename(argv[0] ?? '');
      if (prog === 'rpmbuild' || prog === 'gcc') expect(argv.slice(1)).toEqual(['--version']);
      else expect(['make', 'cc', 'ccache', 'configure', 'sh', 'podman']).not.toContain(prog);
    }
    expect(ms).toBeLessThan(5000);
    expect(again.artifacts[0]?.files.map((f) => f.sha256)).toEqual(cold.artifacts[0]?.files.map((f) => f.sha256));
    expect(again.output?.written).toEqual([]);
  });

  it('two builds of the same inputs (another place, no ccache) give identical payloads', async () => {
    const other = await buildRpms({
      ovsSource: OVS_TARBALL,
      outDir: path.join(root, 'out-b'),
      cacheDir: path.join(root, 'elsewhere', 'deeper', 'cache-b'),
      ccache: false,
      progress: 'silent',
    });
    expect(other.plan.ovs.hash).toBe(cold.plan.ovs.hash);
    expect(other.summary.artifacts[0]?.cached).toBe(false);
    for (const f of cold.artifacts[0]?.files ?? []) {
      const a = await payload(path.join(outA(), f.file));
      const b = await payload(path.join(root, 'out-b', f.file));
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [p, fa] of a) expect(b.get(p), p).toEqual(fa);
    }
    const same = (other.artifacts[0]?.files ?? []).filter((f, i) => f.sha256 === cold.artifacts[0]?.files[i]?.sha256).length;
    console.log(`reproducible: payload digests, modes and mtimes equal; ${same}/${other.artifacts[0]?.files.length} RPM files byte-identical`);
    expect(same).toBe(other.artifacts[0]?.files.length);
  });

  it('a one-line change recompiles one file and changes only that binary', async () => {
    const tree = path.join(root, 'ovs-tree');
    await fs.mkdir(tree, { recursive: true });
    await runner.run(['tar', '-xf', OVS_TARBALL, '-C', tree, '--strip-components=1'], { timeoutMs: 120_000 });
    const opts = { ovsSource: tree, cacheDir: path.join(root, 'cache-a'), ccacheDir: persistentCcache, progress: 'silent' as const };
    const before = await buildRpms({ ...opts, outDir: path.join(root, 'out-dir-1') });
    // Same content as the tarball: another artifact (a directory's digest), but nothing to compile.
    expect(before.summary.artifacts[0]).toMatchObject({ cached: false, compiled: 0 });

    const file = path.join(tree, 'utilities', 'ovs-vsctl.c');
    const text = await fs.readFile(file, 'utf8');
    expect(text).toContain('ovs-vswitchd management utility');
    // A new text every run: the persistent ccache must not already know the edited file.
    const mark = `one-line change ${randomName('')}`;
    await fs.writeFile(file, text.replace('ovs-vswitchd management utility', `ovs-vswitchd management utility (${mark})`));
    const after = await buildRpms({ ...opts, outDir: path.join(root, 'out-dir-2') });
    const a = after.summary.artifacts[0];
    console.log(`one-line change: ${((a?.durationMs ?? 0) / 1000).toFixed(1)} s (cold ${((cold.summary.artifacts[0]?.durationMs ?? 0) / 1000).toFixed(1)} s), compiled ${JSON.stringify(after.artifacts[0]?.build.compiledFiles)}`);
    expect(after.plan.ovs.hash).not.toBe(before.plan.ovs.hash);
    expect(after.artifacts[0]?.build.compiledFiles).toEqual(['utilities/ovs-vsctl.c']);

    for (const f of before.artifacts[0]?.files ?? []) {
      const name = f.rpm?.name as string;
      const pa = await payload(path.join(root, 'out-dir-1', f.file));
      const pb = await payload(path.join(root, 'out-dir-2', rpmFile(after, name)));
      const changed = [...pa.keys()].filter((p) => pb.has(p) && pb.get(p)?.digest !== pa.get(p)?.digest);
      const moved = [...new Set([...pa.keys(), ...pb.keys()])].filter((p) => !pa.has(p) || !pb.has(p));
      expect(changed, name).toEqual(name === 'openvswitch' ? ['/usr/bin/ovs-vsctl'] : []);
      // ovs-vsctl's new build id renames its /usr/lib/.build-id link; nothing else moves.
      for (const p of moved) expect(p, name).toMatch(/^\/usr\/lib\/\.build-id\//);
    }
    const scratch = path.join(root, 'scratch-2');
    await fs.mkdir(scratch, { recursive: true });
    await runner.run(['rpm', '--root', scratch, '--initdb'], { timeoutMs: 60_000 });
    await runner.run(['rpm', '-i', '--nodeps', '--noscripts', '--root', scratch, path.join(root, 'out-dir-2', rpmFile(after, 'openvswitch'))], { timeoutMs: 120_000 });
    expect((await runner.run([path.join(scratch, 'usr/bin/ovs-vsctl'), '--help'])).stdout).toContain(`management utility (${mark})`);
  });
});

describe('CI mode', () => {
  it("a failing step exits non-zero with the step's log tail and a summary saying so", async () => {
    const tree = await fakeOvsTree(path.join(root, 'broken-ovs'), '3.1.0');
    await fs.writeFile(path.join(tree, 'configure'), '#!/bin/sh\necho "configure: error: boom-7c1 cannot configure" >&2\nexit 1\n', { mode: 0o755 });
    const out = path.join(root, 'out-broken');
    const captured: string[] = [];
    const saved = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
    const capture = ((chunk: string | Uint8Array) => {
      captured.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    process.stdout.write = capture;
    process.stderr.write = capture;
    let code: number;
    try {
      code = await main(['node', 'ovn-deploy', 'build', 'rpms', '--ci', '--ovs-source', tree, '--out', out, '--cache-dir', path.join(root, 'cache-broken'), '--no-ccache']);
    } finally {
      process.stdout.write = saved.out;
      process.stderr.write = saved.err;
    }
    const text = captured.join('');
    expect(code).toBe(1);
    expect(text).toMatch(/build step "Build the Open vSwitch RPMs" failed: rpmbuild failed \(exit 1\)/);
    expect(text).toMatch(/full log: .*openvswitch-[0-9a-f]{12}\.log/);
    expect(text).toMatch(/--- last lines of the log ---[\s\S]*boom-7c1 cannot configure/);
    // No escape codes or spinners in CI mode.
    expect(text).not.toContain('\u001b[?25l');
    const summary = JSON.parse(await fs.readFile(path.join(out, 'build-summary.json'), 'utf8')) as { ok: boolean; failure: { step: string; logTail: string } };
    expect(summary.ok).toBe(false);
    expect(summary.failure.step).toBe('Build the Open vSwitch RPMs');
    expect(summary.failure.logTail).toContain('boom-7c1');
  });
});
