/**
 * The pure parts of `ovn-deploy build`: source arguments, versions and the OVS/OVN rule, the
 * input hashes and what they decide, rpmbuild's command line, parsers of tool output, manifests
 * and the image plan.
 */
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import type { BuilderIdentity } from '../src/packaging/builder.js';
import { parseStatsLog } from '../src/packaging/ccache.js';
import { parseLsRemote, resolveRef, submoduleUrl, suggestRefs } from '../src/packaging/git.js';
import { planImages, type AvailableRpm } from '../src/packaging/image-plan.js';
import { renderManifest } from '../src/packaging/manifest.js';
import { changelogDate, packageDefines } from '../src/packaging/package-build.js';
import { planRpms, type RpmPlanInput, type SourceInputs } from '../src/packaging/plan.js';
import { missingToolsMessage, requireTools, EXIT_MISSING_TOOL, BUILD_TOOLS } from '../src/packaging/preflight.js';
import { rolesWithPackages } from '../src/packaging/roles.js';
import { REPRODUCIBLE_DEFINES, rpmbuildArgv } from '../src/packaging/rpm.js';
import { parseSourceArg } from '../src/packaging/source-spec.js';
import type { StoredArtifact } from '../src/packaging/store.js';
import { parseTarListing, tarTopDir } from '../src/packaging/tar.js';
import { compareVersions, minimumFromPin, ovsRequirement, ovsTooOld, parseAcInit } from '../src/packaging/version.js';
import { ExitError } from '../src/errors.js';

describe('source arguments', () => {
  it('splits git URLs and refs, keeps local paths as paths', () => {
    expect(parseSourceArg('https://github.com/ovn-org/ovn.git#v24.03.1', '--ovn-source')).toMatchObject({ kind: 'git-url', url: 'https://github.com/ovn-org/ovn.git', ref: 'v24.03.1' });
    expect(parseSourceArg('git@github.com:openvswitch/ovs.git', '--ovs-source')).toMatchObject({ kind: 'git-url', url: 'git@github.com:openvswitch/ovs.git' });
    expect(parseSourceArg('file:///srv/ovs.git#branch-3.1', '--ovs-source')).toMatchObject({ kind: 'git-url', ref: 'branch-3.1' });
    expect(parseSourceArg('/srv/ovn#v23.03.1', '--ovn-source')).toMatchObject({ kind: 'path', path: '/srv/ovn', ref: 'v23.03.1' });
    const rel = parseSourceArg('ovs-3.1.0.tar.gz', '--ovs-source');
    expect(rel.kind).toBe('path');
    expect(rel.kind === 'path' && rel.path.startsWith('/')).toBe(true);
  });

  it('rejects an empty source and an empty ref, naming the flag', () => {
    for (const bad of ['', '   ', 'https://x/y.git#', '#v1']) {
      const err = (() => {
        try {
          parseSourceArg(bad, '--ovs-source');
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).problems[0]?.path).toBe('--ovs-source');
    }
  });
});

describe('versions', () => {
  it('reads AC_INIT with and without brackets', () => {
    expect(parseAcInit('AC_PREREQ(2.63)\nAC_INIT(openvswitch, 3.1.0, bugs@openvswitch.org)\n')).toEqual({ name: 'openvswitch', version: '3.1.0' });
    expect(parseAcInit('AC_INIT([ovn], [24.03.90], [bugs@openvswitch.org])')).toEqual({ name: 'ovn', version: '24.03.90' });
    expect(parseAcInit('no autoconf here')).toBeUndefined();
  });

  it('compares dotted versions numerically', () => {
    expect(compareVersions('3.10.0', '3.9.1')).toBe(1);
    expect(compareVersions('3.1', '3.1.0')).toBe(0);
    expect(compareVersions('2.17.90', '3.0.0')).toBe(-1);
  });

  it('turns a pinned submodule version into a minimum', () => {
    expect(minimumFromPin('3.1.1')).toBe('3.1.0');
    expect(minimumFromPin('3.3.90')).toBe('3.3.90');
  });

  it('knows what each OVN series needs and says why an OVS is too old', () => {
    expect(ovsRequirement('24.03.2')?.minimum).toBe('3.3.0');
    expect(ovsRequirement('23.03.1')?.minimum).toBe('3.1.0');
    expect(ovsRequirement('99.03.0')).toBeUndefined();
    expect(ovsTooOld('3.1.0', '23.03.1', ovsRequirement('23.03.1'))).toBeUndefined();
    const msg = ovsTooOld('3.1.0', '24.03.2', ovsRequirement('24.03.2'));
    expect(msg).toMatch(/Open vSwitch 3\.1\.0 is too old for OVN 24\.03\.2: it needs OVS >= 3\.3\.0/);
    // The submodule's own version wins over the table.
    expect(ovsTooOld('3.2.0', '24.03.0', ovsRequirement('24.03.0', '3.2.1'))).toBeUndefined();
  });
});

const builder: BuilderIdentity = { os: 'debian 12', arch: 'x86_64', rpmbuild: 'RPM version 4.18.0', cc: 'gcc 12.2.0' };
const src = (content: string, version: string): SourceInputs => ({ content, version, releaseSuffix: '', bootstrap: null });
const input = (over: Partial<RpmPlanInput> = {}): RpmPlanInput => ({
  ovs: src('sha256:aaa', '3.1.0'),
  ovn: src('git:bbb', '23.03.1'),
  specs: { openvswitch: 'spec-ovs-1', ovn: 'spec-ovn-1' },
  options: { buildNumber: 1, debuginfo: false },
  builder,
  ...over,
});
const none = { has: () => false };

describe('RPM plan', () => {
  it('names artifacts by their inputs: same inputs, same hashes', () => {
    const a = planRpms(input(), none);
    const b = planRpms(input(), none);
    expect(a.ovs.hash).toBe(b.ovs.hash);
    expect(a.ovn?.hash).toBe(b.ovn?.hash);
    expect(a.ovs.hash).not.toBe(a.ovn?.hash);
  });

  it('an OVS change renames OVS and OVN; an OVN change renames only OVN', () => {
    const base = planRpms(input(), none);
    const ovsChanged = planRpms(input({ ovs: src('sha256:ccc', '3.1.0') }), none);
    expect(ovsChanged.ovs.hash).not.toBe(base.ovs.hash);
    expect(ovsChanged.ovn?.hash).not.toBe(base.ovn?.hash);
    const ovnChanged = planRpms(input({ ovn: src('git:ddd', '23.03.1') }), none);
    expect(ovnChanged.ovs.hash).toBe(base.ovs.hash);
    expect(ovnChanged.ovn?.hash).not.toBe(base.ovn?.hash);
  });

  it('spec, options and builder are inputs too', () => {
    const base = planRpms(input(), none).ovs.hash;
    expect(planRpms(input({ specs: { openvswitch: 'spec-ovs-2', ovn: 'spec-ovn-1' } }), none).ovs.hash).not.toBe(base);
    expect(planRpms(input({ options: { buildNumber: 2, debuginfo: false } }), none).ovs.hash).not.toBe(base);
    expect(planRpms(input({ builder: { ...builder, cc: 'gcc 13.1.0' } }), none).ovs.hash).not.toBe(base);
  });

  it('builds only what the cache lacks, and rebuilds the OVS tree when OVN needs it', () => {
    const first = planRpms(input(), none);
    expect([first.ovs.action, first.ovn?.action]).toEqual(['build', 'build']);
    const all = new Set([first.ovs.hash, first.ovn?.hash ?? '']);
    expect([planRpms(input(), { has: (h) => all.has(h) }).ovs.action, planRpms(input(), { has: (h) => all.has(h) }).ovn?.action]).toEqual(['reuse', 'reuse']);
    const onlyOvs = { has: (h: string) => h === first.ovs.hash };
    expect(planRpms(input(), { ...onlyOvs, ovsTree: first.ovs.hash }).ovs.action).toBe('reuse');
    expect(planRpms(input(), { ...onlyOvs, ovsTree: 'another' }).ovs.action).toBe('tree');
  });

  it('puts the git snapshot into Release', () => {
    const p = planRpms(input({ ovs: { ...src('git:1234', '3.3.90'), releaseSuffix: '.git1234567890' }, options: { buildNumber: 7, debuginfo: false } }), none);
    expect(p.ovs.release).toBe('7.git1234567890');
  });
});

describe('rpmbuild command line', () => {
  it('carries the reproducibility macros and the package defines', () => {
    const planned = planRpms(input(), none).ovs;
    const defines = packageDefines(planned, { tarball: '/c/openvswitch.tar.gz', topdir: 'openvswitch' }, 1710342949, 2);
    const argv = rpmbuildArgv({ rpmbuild: 'rpmbuild', spec: '/p/specs/openvswitch.spec', topdir: '/c/work/openvswitch', defines, nodeps: true });
    expect(argv.slice(0, 4)).toEqual(['rpmbuild', '-bb', '--noclean', '--nodeps']);
    const joined = argv.join('\n');
    for (const [k, v] of Object.entries(REPRODUCIBLE_DEFINES)) expect(joined).toContain(`${k} ${v}`);
    expect(joined).toContain('_topdir /c/work/openvswitch');
    expect(joined).toContain('upstream_version 3.1.0');
    expect(joined).toContain('source_topdir openvswitch');
    expect(joined).toContain('source_tarball openvswitch.tar.gz');
    expect(joined).toContain('changelog_date Wed Mar 13 2024');
    expect(joined).toContain('_smp_mflags -j2');
    expect(argv.at(-1)).toBe('/p/specs/openvswitch.spec');
  });

  it('formats %changelog dates', () => {
    expect(changelogDate(0)).toBe('Thu Jan 01 1970');
    expect(changelogDate(1710342949)).toBe('Wed Mar 13 2024');
  });
});

describe('tool output parsers', () => {
  it('reads a tar listing, including tar padding after fractional seconds', () => {
    const members = parseTarListing(
      [
        'drwxr-xr-x buildd/buildd     0 2024-03-13 15:15:47.968663657 openvswitch/',
        '-rwxr-xr-x buildd/buildd 49482 2024-03-13 15:14:52.94129576  openvswitch/build-aux/config.guess',
        'lrwxrwxrwx root/root         0 2023-02-16 16:31:51 openvswitch/link -> NEWS',
      ].join('\n'),
    );
    expect(members.map((m) => m.name)).toEqual(['openvswitch/', 'openvswitch/build-aux/config.guess', 'openvswitch/link']);
    expect(members[0]?.mtimeSec).toBe(Date.UTC(2024, 2, 13, 15, 15, 47) / 1000);
    expect(tarTopDir(members)).toBe('openvswitch');
    expect(tarTopDir([...members, { name: 'other/x', type: 'file', mtimeSec: 0 }])).toBeUndefined();
  });

  it('resolves refs from ls-remote: peeled tags, branches, raw commits, suggestions', () => {
    const refs = parseLsRemote(
      [
        `${'a'.repeat(40)}\tHEAD`,
        `${'b'.repeat(40)}\trefs/heads/main`,
        `${'c'.repeat(40)}\trefs/tags/v23.03.1`,
        `${'d'.repeat(40)}\trefs/tags/v23.03.1^{}`,
        `${'e'.repeat(40)}\trefs/tags/v23.06.0`,
      ].join('\n'),
    );
    expect(resolveRef(refs, 'v23.03.1')).toEqual({ kind: 'ref', name: 'refs/tags/v23.03.1', sha: 'd'.repeat(40) });
    expect(resolveRef(refs, 'main')).toEqual({ kind: 'ref', name: 'refs/heads/main', sha: 'b'.repeat(40) });
    expect(resolveRef(refs, undefined)).toMatchObject({ kind: 'ref', sha: 'a'.repeat(40) });
    expect(resolveRef(refs, 'f'.repeat(40))).toEqual({ kind: 'commit', sha: 'f'.repeat(40) });
    expect(resolveRef(refs, 'v99')).toEqual({ kind: 'missing' });
    expect(suggestRefs(refs, 'v23.09.0')).toEqual(['v23.03.1', 'v23.06.0']);
  });

  it('finds a submodule URL in .gitmodules', () => {
    const gm = '[submodule "ovs"]\n\tpath = ovs\n\turl = https://github.com/openvswitch/ovs.git\n[submodule "x"]\n\turl = u\n\tpath = x\n';
    expect(submoduleUrl(gm, 'ovs')).toBe('https://github.com/openvswitch/ovs.git');
    expect(submoduleUrl(gm, 'x')).toBe('u');
    expect(submoduleUrl(gm, 'y')).toBeUndefined();
  });

  it('counts compilations in a ccache stats log, configure probes apart', () => {
    const s = parseStatsLog('# conftest.c\ncache_miss\n# lib/util.c\ndirect_cache_hit\n# utilities/ovs-vsctl.c\ncache_miss\ndirect_cache_miss\n# x.c\npreprocessed_cache_hit\n');
    expect(s).toEqual({ hits: 2, misses: 1, probes: 1, compiledFiles: ['utilities/ovs-vsctl.c'] });
  });
});

describe('missing tools', () => {
  it('names each missing tool with how to install it, exit code 69', () => {
    const probe = { exists: () => false, executable: () => false, pathDirs: ['/nonexistent'] };
    let err: unknown;
    try {
      requireTools(['rpmbuild', 'podman'], probe);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ExitError);
    expect((err as ExitError).exitCode).toBe(EXIT_MISSING_TOOL);
    expect((err as ExitError).message).toMatch(/rpmbuild \(for building RPMs\)/);
    expect((err as ExitError).message).toMatch(/podman/);
    expect(missingToolsMessage([BUILD_TOOLS.rpmbuild], 'fedora')).toContain('dnf install rpm-build');
    expect(missingToolsMessage([BUILD_TOOLS.rpmbuild], 'debian')).toContain('apt-get install rpm');
    expect(missingToolsMessage([BUILD_TOOLS.rpmbuild], undefined)).toContain('scripts/install-deps.sh build');
  });
});

const stored = (name: string, hash: string): StoredArtifact => ({
  schema: 1,
  hash,
  name,
  kind: 'rpms',
  version: '3.1.0',
  release: '1',
  inputs: { x: 1 },
  files: [{ file: `${name}-3.1.0-1.x86_64.rpm`, sha256: 'f'.repeat(64), size: 10 }],
  build: { durationMs: 1234, compiled: 5 },
});

describe('manifest', () => {
  it('lists files relative to the manifest with digests and inputs, not timings', () => {
    const m = renderManifest([stored('openvswitch', 'h1'), stored('ovn', 'h2')], (a) => (a.name === 'ovn' ? 'rpms' : ''), 'ovn-deploy test');
    expect(m.artifacts.map((a) => a.files[0]?.path)).toEqual(['openvswitch-3.1.0-1.x86_64.rpm', 'rpms/ovn-3.1.0-1.x86_64.rpm']);
    expect(m.artifacts[0]).toMatchObject({ name: 'openvswitch', hash: 'h1', version: '3.1.0', inputs: { x: 1 } });
    expect(JSON.stringify(m)).not.toContain('durationMs');
  });
});

describe('image plan', () => {
  const rpm = (name: string, sha: string, version = '23.03.1'): [string, AvailableRpm] => [name, { file: `/r/${name}.rpm`, sha256: sha, info: { name, version, release: '1', arch: 'x86_64' } }];
  const rpms = new Map([rpm('openvswitch', 'o1', '3.1.0'), rpm('ovn', 'n1'), rpm('ovn-central', 'c1'), rpm('ovn-host', 'h1')]);
  const base = { roles: ['ovn-central', 'ovn-controller'] as const, rpms, contextDigests: { 'ovn-central': 'ctx1', 'ovn-controller': 'ctx2' }, baseImageId: 'base1', engine: 'podman 4.3.1', tagPrefix: 'localhost/ovn-deploy' };

  it('tags by version and hashes only what each role installs', () => {
    const [central, controller] = planImages(base, () => false);
    expect(central?.tag).toBe('localhost/ovn-deploy/ovn-central:23.03.1-1');
    expect(central?.rpms.map((r) => r.info.name)).toEqual(['openvswitch', 'ovn', 'ovn-central']);
    // A new ovn-host RPM changes the controller image only.
    const changed = planImages({ ...base, rpms: new Map([...rpms, rpm('ovn-host', 'h2')]) }, () => false);
    expect(changed[0]?.hash).toBe(central?.hash);
    expect(changed[1]?.hash).not.toBe(controller?.hash);
    // So does another base image, for every role.
    expect(planImages({ ...base, baseImageId: 'base2' }, () => false)[0]?.hash).not.toBe(central?.hash);
    expect(planImages(base, (h) => h === central?.hash).map((p) => p.action)).toEqual(['reuse', 'build']);
  });

  it('builds by default the roles whose RPMs are all there (never the metadata agent)', () => {
    expect(rolesWithPackages(new Set(['openvswitch', 'python3-openvswitch']))).toEqual(['openvswitch']);
    expect(rolesWithPackages(new Set(['openvswitch', 'python3-openvswitch', 'ovn', 'ovn-central', 'ovn-host']))).toEqual(['openvswitch', 'ovn-central', 'ovn-controller']);
  });
});
