/**
 * The current LTS pair, OVS 3.3.8 + OVN 24.03.9, built for real from the release archives (or
 * OVS_SOURCE / OVN_SOURCE). It lives in the persistent LTS cache every LTS test shares, so a CI
 * run compiles OVS 3.3.8 once whichever of them comes first; a developer's rerun reuses it.
 * The OVN 23.03.1 pair (against Debian's OVS 3.1 tree) is test/build-ovn.slow.test.ts.
 */
import { mkdirSync, promises as fs, realpathSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRpms, type BuildRpmsResult } from '../src/packaging/rpm-pipeline.js';
import { buildCachePaths } from '../src/paths.js';
import { ZxRunner } from '../src/runner.js';
import { TeeRunner, ltsSourcesFor, persistentCcache, persistentLtsBuildCache, randomName, tmpDir } from './helpers/build-fixtures.js';

const LTS = ltsSourcesFor('OVN LTS build tests (test/build-ovn-lts.slow.test.ts)');
const skip = LTS === undefined;
// Cold on 2 shared cores: OVS about 3 min, OVN 1.5 min (more under load).
const COLD_BUILD_MS = 30 * 60_000;
const runner = new ZxRunner();
mkdirSync(persistentLtsBuildCache, { recursive: true });
// The pipeline works in the cache's real path (.cache may be a link to a shared cache).
const paths = buildCachePaths(realpathSync(persistentLtsBuildCache));
let root: string;
let first: BuildRpmsResult;

const names = (r: BuildRpmsResult) => r.artifacts.flatMap((a) => a.files.map((f) => f.rpm?.name)).sort();
// Only OVS has these directories: a compile of one of their files is OVS being compiled.
const OVS_COMPILE = /\b(vswitchd|ofproto)\/[\w-]+\.(c|o|lo)\b/;

async function ovsTreeStamp(): Promise<{ hash: string; tree: string } | undefined> {
  return fs.readFile(paths.ovsTreeStamp, 'utf8').then(
    (t) => JSON.parse(t) as { hash: string; tree: string },
    () => undefined,
  );
}

/** The OVN build's log names the OVS tree it compiled against and shows no OVS compile. */
async function expectOvnBuiltAgainstTree(r: BuildRpmsResult): Promise<void> {
  const log = await fs.readFile(paths.log(`ovn-${r.plan.ovn?.hash.slice(0, 12)}`), 'utf8');
  expect(log).toContain(`--with-ovs-source=${path.join(paths.work('openvswitch'), 'BUILD', 'openvswitch-3.3.8')}`);
  expect(log).toMatch(/-c -o controller\/ovn-controller\.o|controller\/ovn-controller\.c/);
  expect(log).not.toMatch(OVS_COMPILE);
}

beforeAll(async () => {
  root = await tmpDir('build-ovn-lts');
  await fs.mkdir(persistentCcache, { recursive: true });
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe(`OVN LTS RPMs: ${LTS === undefined ? 'no sources' : `${path.basename(LTS.ovs)} + ${path.basename(LTS.ovn)}`}`, () => {
  it.skipIf(skip)('builds OVS 3.3.8 and OVN 24.03.9 (ovn, ovn-central, ovn-host); the OVN build compiles no OVS', async () => {
    const lts = LTS as { ovs: string; ovn: string };
    first = await buildRpms({ ovsSource: lts.ovs, ovnSource: lts.ovn, outDir: path.join(root, 'out'), cacheDir: persistentLtsBuildCache, ccacheDir: persistentCcache, progress: 'silent' });
    for (const a of first.summary.artifacts) console.log(`${a.name} ${a.version}: ${a.cached ? 'cached' : `${(a.durationMs / 1000).toFixed(1)} s, ${a.compiled} compiled, ${a.ccacheHits} from ccache`}`);
    expect(first.summary.artifacts.map((a) => [a.name, a.version])).toEqual([
      ['openvswitch', '3.3.8-1'],
      ['ovn', '24.03.9-1'],
    ]);
    expect(names(first)).toEqual(expect.arrayContaining(['openvswitch', 'ovn', 'ovn-central', 'ovn-host']));
    const file = (name: string) => path.join(root, 'out', first.artifacts.flatMap((a) => a.files).find((x) => x.rpm?.name === name)?.file ?? '');
    const requires = (await runner.run(['rpm', '-qpR', file('ovn')])).stdout;
    expect(requires).toMatch(/^openvswitch\b.*3\.3\.8/m);
    expect((await runner.run(['rpm', '-qpl', file('ovn-central')])).stdout.split('\n')).toEqual(expect.arrayContaining(['/usr/bin/ovn-northd', '/usr/share/ovn/ovn-nb.ovsschema']));
    expect((await runner.run(['rpm', '-qpl', file('ovn-host')])).stdout.split('\n')).toContain('/usr/bin/ovn-controller');
    // Built now or by an earlier run into this cache: the log of the artifact's own build.
    await expectOvnBuiltAgainstTree(first);
    if (first.plan.ovs.action === 'build') expect((await ovsTreeStamp())?.hash).toBe(first.plan.ovs.hash);
  }, COLD_BUILD_MS);

  it.skipIf(skip)('an OVN-only change rebuilds OVN alone against the OVS 3.3.8 tree; unchanged inputs compile nothing', async () => {
    const lts = LTS as { ovs: string; ovn: string };
    const tree = path.join(root, 'ovn-tree');
    await fs.mkdir(tree, { recursive: true });
    const ovnArg = lts.ovn;
    if ((await fs.stat(ovnArg)).isDirectory()) await runner.run(['cp', '-a', `${ovnArg}/.`, tree]);
    else await runner.run(['tar', '-xf', ovnArg, '-C', tree, '--strip-components=1'], { timeoutMs: 120_000 });
    const file = path.join(tree, 'utilities', 'ovn-nbctl.c');
    const text = await fs.readFile(file, 'utf8');
    // A new text every run: the persistent ccache must not already know the edited file.
    await fs.writeFile(file, text.replace('OVN northbound DB management utility', `OVN northbound DB management utility (one-line change ${randomName('')})`));
    expect(await fs.readFile(file, 'utf8')).not.toBe(text);

    const stamp = await ovsTreeStamp();
    const opts = { ovsSource: lts.ovs, ovnSource: tree, cacheDir: persistentLtsBuildCache, ccacheDir: persistentCcache, progress: 'silent' as const };
    const changed = await buildRpms({ ...opts, outDir: path.join(root, 'out-2') });
    const ovn = changed.summary.artifacts.find((a) => a.name === 'ovn');
    console.log(`OVN 24.03.9 one-line change: ${((ovn?.durationMs ?? 0) / 1000).toFixed(1)} s, OVS ${changed.plan.ovs.action}, compiled ${JSON.stringify(changed.artifacts.find((a) => a.name === 'ovn')?.build.compiledFiles)}`);
    expect(changed.plan.ovs.hash).toBe(first.plan.ovs.hash);
    // OVS is compiled again only when another build replaced its tree in this cache (nothing but
    // the LTS pair is built there, so in CI it is the tree the previous test left).
    expect(changed.plan.ovs.action).toBe(stamp?.hash === first.plan.ovs.hash ? 'reuse' : 'tree');
    expect(changed.summary.artifacts.find((a) => a.name === 'ovn')?.cached).toBe(false);
    expect(changed.artifacts.find((a) => a.name === 'ovn')?.build.compiledFiles).toEqual(['utilities/ovn-nbctl.c']);
    await expectOvnBuiltAgainstTree(changed);

    const tee = new TeeRunner();
    const again = await buildRpms({ ...opts, outDir: path.join(root, 'out-2'), runner: tee });
    expect(again.summary.artifacts.map((a) => [a.name, a.cached])).toEqual([
      ['openvswitch', true],
      ['ovn', true],
    ]);
    for (const call of tee.calls) {
      // Long commands run as `sh -c 'exec "$@" 2>&1' sh PROG ARGS...`.
      const argv = call[0] === 'sh' && call[1] === '-c' && call[3] === 'sh' ? call.slice(4) : call;
      const prog = path.basename(argv[0] ?? '');
      if (prog === 'rpmbuild' || prog === 'gcc') expect(argv.slice(1)).toEqual(['--version']);
      else expect(['make', 'cc', 'ccache', 'configure', 'boot.sh']).not.toContain(prog);
    }
    expect(again.output?.written).toEqual([]);
  }, COLD_BUILD_MS);
});
