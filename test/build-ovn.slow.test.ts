/**
 * Real OVN RPM builds against the Open vSwitch build tree. OVN's source comes from OVN_SOURCE (a
 * git URL[#ref], a release tarball or a source directory), else from the OVN 23.03.1 archive in
 * shared/sources beside the checkout; the tests skip, loudly, only when neither exists. OVS comes
 * from OVS_SOURCE, else Debian's openvswitch-source (3.1.0, right for OVN 23.03 and 23.06).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRpms, type BuildRpmsResult } from '../src/packaging/rpm-pipeline.js';
import { buildCachePaths } from '../src/paths.js';
import { ZxRunner } from '../src/runner.js';
import { OVS_TARBALL, ovnSourceFor, persistentCcache, randomName, tmpDir } from './helpers/build-fixtures.js';

const OVN_SOURCE = ovnSourceFor('OVN build tests (test/build-ovn.slow.test.ts)');
const OVS_SOURCE = process.env.OVS_SOURCE ?? OVS_TARBALL;
const skip = OVN_SOURCE === undefined;
// A cold OVS + OVN build (empty ccache) on 2 shared cores takes well over the default 5 minutes.
const COLD_BUILD_MS = 30 * 60_000;
const runner = new ZxRunner();
let root: string;
let first: BuildRpmsResult;

const names = (r: BuildRpmsResult) => r.artifacts.flatMap((a) => a.files.map((f) => f.rpm?.name)).sort();

beforeAll(async () => {
  root = await tmpDir('build-ovn');
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe(`OVN RPMs from ${OVN_SOURCE ?? 'no OVN source'}`, () => {
  it.skipIf(skip)('builds ovn, ovn-central and ovn-host against the OVS build tree, compiling OVS once', async () => {
    const cache = path.join(root, 'cache');
    first = await buildRpms({ ovsSource: OVS_SOURCE, ovnSource: OVN_SOURCE as string, outDir: path.join(root, 'out'), cacheDir: cache, ccacheDir: persistentCcache, progress: 'silent' });
    for (const a of first.summary.artifacts) console.log(`${a.name} ${a.version}: ${(a.durationMs / 1000).toFixed(1)} s, ${a.compiled} compiled, ${a.ccacheHits} from ccache`);
    expect(names(first)).toEqual(expect.arrayContaining(['openvswitch', 'ovn', 'ovn-central', 'ovn-host']));
    const list = async (name: string) => {
      const f = first.artifacts.flatMap((a) => a.files).find((x) => x.rpm?.name === name);
      return (await runner.run(['rpm', '-qpl', path.join(root, 'out', f?.file ?? '')])).stdout.split('\n');
    };
    expect(await list('ovn-central')).toEqual(expect.arrayContaining(['/usr/bin/ovn-northd', '/usr/share/ovn/ovn-nb.ovsschema', '/usr/share/ovn/ovn-sb.ovsschema', '/usr/lib/systemd/system/ovn-northd.service']));
    expect(await list('ovn-host')).toEqual(expect.arrayContaining(['/usr/bin/ovn-controller', '/usr/lib/systemd/system/ovn-controller.service']));
    expect(await list('ovn')).toEqual(expect.arrayContaining(['/usr/bin/ovn-nbctl', '/usr/bin/ovn-sbctl', '/usr/share/ovn/scripts/ovn-ctl', '/etc/logrotate.d/ovn']));

    // OVN's source was fetched/bootstrapped while OVS compiled.
    if (first.plan.ovs.action !== 'reuse') {
      const step = (id: string) => first.summary.steps.find((x) => x.id === id);
      expect(step('ovn-prepare')?.startMs).toBeLessThan(step('ovs-build')?.endMs ?? 0);
    }

    // OVS was built once, by its own step; OVN's build used that tree and compiled no OVS source.
    const paths = buildCachePaths(cache);
    const stamp = JSON.parse(await fs.readFile(paths.ovsTreeStamp, 'utf8')) as { hash: string; tree: string };
    expect(stamp.hash).toBe(first.plan.ovs.hash);
    const ovnLog = await fs.readFile(paths.log(`ovn-${first.plan.ovn?.hash.slice(0, 12)}`), 'utf8');
    expect(ovnLog).toContain(`--with-ovs-source=${stamp.tree}`);
    expect(ovnLog).not.toMatch(/\b(vswitchd|ofproto)\/[\w-]+\.(c|o|lo)\b/);
    expect((await fs.readdir(path.join(paths.work('ovn'), 'BUILD'))).some((d) => d.startsWith('openvswitch'))).toBe(false);
  }, COLD_BUILD_MS);

  it.skipIf(skip)('an OVN-only change rebuilds OVN alone (one file compiled); unchanged inputs rebuild nothing', async () => {
    const cache = path.join(root, 'cache');
    // A directory copy of the OVN source that was just built (the prepared or original tarball).
    const ovnId = first.artifacts.find((a) => a.name === 'ovn')?.source as { kind: string; path?: string };
    const tarballs = (await fs.readdir(path.join(cache, 'sources')).catch(() => [] as string[])).map((d) => path.join(cache, 'sources', d));
    let tarball = ovnId.kind === 'tarball' ? (ovnId.path as string) : undefined;
    for (const d of tarballs) for (const f of await fs.readdir(d)) if (f.startsWith('ovn-') && f.endsWith('.tar')) tarball = path.join(d, f);
    const tree = path.join(root, 'ovn-tree');
    await fs.mkdir(tree, { recursive: true });
    if (ovnId.kind === 'directory') await runner.run(['cp', '-a', `${ovnId.path}/.`, tree]);
    else await runner.run(['tar', '-xf', tarball as string, '-C', tree, '--strip-components=1'], { timeoutMs: 120_000 });

    const opts = { ovsSource: OVS_SOURCE, ovnSource: tree, cacheDir: cache, ccacheDir: persistentCcache, progress: 'silent' as const };
    const copy = await buildRpms({ ...opts, outDir: path.join(root, 'out-2') });
    expect(copy.plan.ovs.action).toBe('reuse');
    const file = path.join(tree, 'utilities', 'ovn-nbctl.c');
    const text = await fs.readFile(file, 'utf8');
    // A new text every run: the persistent ccache must not already know the edited file.
    await fs.writeFile(file, text.replace('OVN northbound DB management utility', `OVN northbound DB management utility (one-line change ${randomName('')})`));
    expect(await fs.readFile(file, 'utf8')).not.toBe(text);
    const changed = await buildRpms({ ...opts, outDir: path.join(root, 'out-3') });
    const ovn = changed.summary.artifacts.find((a) => a.name === 'ovn');
    console.log(`OVN one-line change: ${((ovn?.durationMs ?? 0) / 1000).toFixed(1)} s, compiled ${JSON.stringify(changed.artifacts.find((a) => a.name === 'ovn')?.build.compiledFiles)}`);
    expect(changed.plan.ovs.action).toBe('reuse');
    expect(changed.summary.artifacts.find((a) => a.name === 'openvswitch')?.cached).toBe(true);
    expect(changed.artifacts.find((a) => a.name === 'ovn')?.build.compiledFiles).toEqual(['utilities/ovn-nbctl.c']);

    const again = await buildRpms({ ...opts, outDir: path.join(root, 'out-3') });
    expect(again.summary.artifacts.map((a) => a.cached)).toEqual([true, true]);
  }, COLD_BUILD_MS);
});
