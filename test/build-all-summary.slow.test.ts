/**
 * `build all --ci` as a CI pipeline runs it: OUT/build-summary.json lists every artifact (RPMs and
 * images) with each file's sha256 as it lies in OUT, the inputs, versions and the signing key; a
 * failing step exits non-zero with that step's log tail on stderr and a summary saying so. The
 * success case uses the LTS pair from the persistent cache (built once per CI run), a key made
 * here, the cached base image and one role image in a private podman store.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBaseImage } from '../src/packaging/base-image.js';
import type { BuildSummary } from '../src/packaging/manifest.js';
import { ZxRunner } from '../src/runner.js';
import { fakeOvsTree, ltsSourcesFor, persistentBuildCache, persistentCcache, persistentLtsBuildCache, podmanEnv, randomName, removePrivatePodmanStore, tmpDir } from './helpers/build-fixtures.js';
import { runCli, type CliResult } from './helpers/cli.js';

const LTS = ltsSourcesFor('build all summary tests (test/build-all-summary.slow.test.ts)');
const BUILD_MS = 30 * 60_000;
const runner = new ZxRunner();
let root: string;
let env: Record<string, string> | undefined;

const sha256 = async (f: string) => createHash('sha256').update(await fs.readFile(f)).digest('hex');

async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

beforeAll(async () => {
  root = await tmpDir('build-all');
});

afterAll(async () => {
  if (env !== undefined) await removePrivatePodmanStore(path.join(root, 'podman'), env, []);
  await runner.run(['gpgconf', '--homedir', path.join(root, 'g'), '--kill', 'gpg-agent'], { allowFailure: true, timeoutMs: 30_000 });
  await fs.rm(root, { recursive: true, force: true });
});

describe('build all --ci', () => {
  it("a failing step exits 1 with that step's log tail on stderr and OUT/build-summary.json saying so", async () => {
    const tree = await fakeOvsTree(path.join(root, 'broken-ovs'), '3.1.0');
    const marker = `boom-${randomName('')}`;
    await fs.writeFile(path.join(tree, 'configure'), `#!/bin/sh\necho "configure: error: ${marker} cannot configure" >&2\nexit 1\n`, { mode: 0o755 });
    const out = path.join(root, 'out-broken');
    const r = await runCli(['build', 'all', '--ci', '--ovs-source', tree, '--base-image', 'localhost/never-used:1', '--out', out, '--cache-dir', path.join(root, 'cache-broken'), '--no-ccache']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/build step "Build the Open vSwitch RPMs" failed: rpmbuild failed \(exit 1\)/);
    expect(r.stderr).toMatch(new RegExp(`--- last lines of the log ---[\\s\\S]*${marker} cannot configure`));
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    const summary = JSON.parse(await fs.readFile(path.join(out, 'build-summary.json'), 'utf8')) as BuildSummary;
    expect(summary).toMatchObject({ ok: false, command: 'build all', outDir: out, failure: { step: 'Build the Open vSwitch RPMs' } });
    expect(summary.failure?.logTail).toContain(marker);
    expect(summary.failure?.log).toMatch(/openvswitch-[0-9a-f]{12}\.log$/);
  }, 120_000);

  it.skipIf(LTS === undefined)('lists every RPM and image with its sha256 in OUT, its inputs and versions, and the signing key', async () => {
    const lts = LTS as { ovs: string; ovn: string };
    const home = path.join(root, 'g');
    await fs.mkdir(home, { mode: 0o700 });
    const gpg = (args: string[]) => runner.run(['gpg', '--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { timeoutMs: 120_000 });
    await gpg(['--quick-gen-key', 'ovn-deploy build-all test <build-all@example.invalid>', 'rsa2048', 'sign', '1d']);
    const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec((await gpg(['--with-colons', '--list-secret-keys'])).stdout)?.[1] as string;
    const key = path.join(root, 'key.asc');
    await fs.writeFile(key, (await gpg(['--armor', '--export-secret-keys', fingerprint])).stdout, { mode: 0o600 });
    // The base image the image tests use (cached by its inputs; no build tree involved).
    const base = await buildBaseImage({ out: path.join(root, 'base.tar'), cacheDir: persistentBuildCache });
    env = await podmanEnv(path.join(root, 'podman'));
    const out = path.join(root, 'out');
    const args = ['build', 'all', '--ci', '--ovs-source', lts.ovs, '--ovn-source', lts.ovn, '--base-image', base.out, '--role', 'ovn-controller', '--out', out, '--cache-dir', persistentLtsBuildCache, '--ccache-dir', persistentCcache, '--sign-key', key];
    const r: CliResult = await withEnv(env, () => runCli(args));
    expect(r.code, r.stderr).toBe(0);

    const summary = JSON.parse(await fs.readFile(path.join(out, 'build-summary.json'), 'utf8')) as BuildSummary;
    expect(summary).toMatchObject({ ok: true, command: 'build all', outDir: out, signing: { fingerprint, repository: path.join(out, 'rpms') } });
    expect(summary.artifacts.map((a) => [a.name, a.version])).toEqual([
      ['openvswitch', '3.3.8-1'],
      ['ovn', '24.03.9-1'],
      ['ovn-controller', expect.stringMatching(/24\.03\.9-1/)],
    ]);
    const rpms = (await fs.readdir(path.join(out, 'rpms'))).filter((f) => f.endsWith('.rpm')).sort();
    const images = (await fs.readdir(path.join(out, 'images'))).filter((f) => f.endsWith('.tar')).sort();
    const listed = summary.artifacts.flatMap((a) => a.outputs ?? []);
    expect(listed.map((o) => o.path).sort()).toEqual([...rpms.map((f) => `rpms/${f}`), ...images.map((f) => `images/${f}`)].sort());
    for (const o of listed) expect(o.sha256, o.path).toBe(await sha256(path.join(out, o.path)));
    for (const a of summary.artifacts) expect(a.inputs, a.name).toBeDefined();
    expect(summary.artifacts.slice(0, 2).map((a) => a.signedBy)).toEqual([fingerprint, fingerprint]);
    // The image's labels as podman reports them: the Containerfile's and the build's own.
    const labels = (summary.artifacts[2]?.details as { labels?: Record<string, string> } | undefined)?.labels ?? {};
    expect(labels).toMatchObject({ 'io.ovn-deploy.role': 'ovn-controller', 'io.ovn-deploy.healthcheck': expect.any(String), 'org.opencontainers.image.version': '24.03.9-1' });
    expect(labels['io.ovn-deploy.inputs']).toBe(summary.artifacts[2]?.hash);
    // The image was built from the signed RPMs (their digests are among its inputs).
    expect(JSON.stringify(summary.artifacts[2]?.inputs)).toContain(listed.find((o) => o.path.startsWith('rpms/ovn-host-'))?.sha256 as string);
  }, BUILD_MS);
});
