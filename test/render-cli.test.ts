import { spawnSync } from 'node:child_process';
import { runCli, type CliResult } from './helpers/cli.js';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pkiPaths, bundleSource } from '../src/paths.js';
import { initPki } from '../src/pki/index.js';
import { renderFixtureDir, renderFixtureSite } from './helpers/render-fixture.js';

async function cli(...args: string[]): Promise<CliResult> {
  return runCli(args);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

let dir: string;
let pkiDir: string;
const secretFile = path.join(renderFixtureDir, 'metadata-secret');

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-render-cli-'));
  // render ships the PKI's public half and signs each manifest with the CA key: a real PKI.
  pkiDir = path.join(dir, 'pki');
  await initPki(pkiDir, { keyBits: 2048, commonName: 'render-cli' });
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('ovn-deploy render', () => {
  it('writes one bundle per host, then nothing on a second run', async () => {
    const out = path.join(dir, 'out1');
    const args = ['render', '--inventory', renderFixtureSite, '--out', out, '--pki', pkiDir, '--metadata-secret-file', secretFile];
    const first = await cli(...args);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^worker1: 28 written, 0 unchanged$/m);
    expect(first.stdout).toMatch(/rendered 6 host bundles into .* \(160 files written\)/);
    expect((await readdir(out)).sort()).toEqual(['.ovn-deploy-render.json', 'central1', 'central2', 'central3', 'worker1', 'worker2', 'worker3']);
    const secret = path.join(out, 'worker1', bundleSource('/etc/ovn-deploy/metadata-agent/metadata-secret.ini'));
    expect((await stat(secret)).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(out, 'worker1', 'manifest.json'))).mode & 0o777).toBe(0o644);
    const manifest = JSON.parse(await readFile(path.join(out, 'worker1', 'manifest.json'), 'utf8')) as { generator: string };
    expect(manifest.generator).toMatch(/^ovn-deploy \d+\.\d+\.\d+/);

    const second = await cli(...args, '--json');
    expect(second.code).toBe(0);
    const summary = JSON.parse(second.stdout) as { hosts: { host: string; written: string[]; unchanged: number; removed: string[] }[] };
    expect(summary.hosts.map((h) => h.written.length)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(summary.hosts.find((h) => h.host === 'worker1')?.unchanged).toBe(28);
  });

  it('leaves every file it did not write, even ones shaped like its own (see render-hostile.test.ts for what it removes)', async () => {
    const out = path.join(dir, 'out2');
    const args = ['render', '--inventory', renderFixtureSite, '--out', out, '--pki', pkiDir, '--metadata-secret-file', secretFile];
    expect((await cli(...args)).code).toBe(0);
    // A config a worker does not render, a stale-looking tree, and a bundle of a host that is not in the site.
    const stale = path.join(out, 'worker2', bundleSource('/etc/ovn-deploy/stunnel/stunnel-server.conf'));
    await writeFile(stale, 'old\n');
    const staleDir = path.join(out, 'worker2', 'files', 'etc', 'ovn-deploy', 'old', 'deeper');
    await mkdir(staleDir, { recursive: true });
    await writeFile(path.join(staleDir, 'x.conf'), 'old\n');
    await mkdir(path.join(out, 'retired'), { recursive: true });
    await writeFile(path.join(out, 'retired', 'manifest.json'), JSON.stringify({ format: 1, site: 'golden', host: 'retired' }));
    const r = await cli(...args, '--json');
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { hosts: { host: string; removed: string[] }[]; removedBundles: string[] };
    expect(summary.hosts.flatMap((h) => h.removed)).toEqual([]);
    expect(summary.removedBundles).toEqual([]);
    for (const f of [stale, path.join(staleDir, 'x.conf'), path.join(out, 'retired', 'manifest.json')]) expect(await exists(f), f).toBe(true);
    expect(await exists(path.join(out, 'worker2', bundleSource('/etc/ovn-deploy/stunnel/stunnel-client.conf')))).toBe(true);
  });

  it('exits 2 and writes nothing when the metadata secret is missing', async () => {
    const out = path.join(dir, 'out3');
    const r = await cli('render', '--inventory', renderFixtureSite, '--out', out, '--pki', pkiDir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--metadata-secret-file: required: host worker1 has the metadata-agent role');
    expect(await exists(out)).toBe(false);
  });

  it('exits 2 naming the command to run when the PKI has no CA bundle or CRL', async () => {
    const empty = path.join(dir, 'empty-pki');
    const out = path.join(dir, 'out4');
    const r = await cli('render', '--inventory', renderFixtureSite, '--out', out, '--pki', empty, '--metadata-secret-file', secretFile);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${pkiPaths(empty).caBundle}: cannot read the CA bundle: no such file; run \`ovn-deploy pki init --dir ${empty}\` first`);
    expect(r.stderr).toContain(`${pkiPaths(empty).crl}: cannot read the CRL: no such file; run \`ovn-deploy pki crl --dir ${empty}\` to sign one`);
    expect(await exists(out)).toBe(false);
  });

  it('a first render killed while it wrote its first record left only that record\'s staging (dead pid): the next render takes --out; anything else beside it, or in it, and --out is refused untouched', async () => {
    const dead = spawnSync('true').pid;
    const args = (out: string) => ['render', '--inventory', renderFixtureSite, '--out', out, '--pki', pkiDir, '--metadata-secret-file', secretFile];
    const killed = async (name: string, extra: (out: string, staging: string) => Promise<void> = async () => {}) => {
      const out = path.join(dir, name);
      const staging = path.join(out, `.render-staging-${dead}-record`);
      await mkdir(staging, { recursive: true });
      await writeFile(path.join(staging, '..ovn-deploy-render.json.0123456789ab.tmp'), '{"format": 1, "files": [');
      await extra(out, staging);
      return { out, staging };
    };
    const ok = await killed('killed-first-record');
    const r = await cli(...args(ok.out));
    expect(r.code, r.stderr).toBe(0);
    expect(await exists(ok.staging)).toBe(false);
    expect((await readdir(ok.out)).sort()).toEqual(expect.arrayContaining(['.ovn-deploy-render.json', 'central1']));

    const beside = await killed('killed-beside', (out) => writeFile(path.join(out, 'notes.txt'), 'mine\n'));
    expect((await cli(...args(beside.out))).code).toBe(2);
    expect((await readdir(beside.out)).sort()).toEqual(['.render-staging-' + String(dead) + '-record', 'notes.txt']);

    const inside = await killed('killed-inside', (_out, staging) => writeFile(path.join(staging, 'theirs'), 'x'));
    expect((await cli(...args(inside.out))).code).toBe(2);
    expect((await readdir(inside.staging)).sort()).toEqual(['..ovn-deploy-render.json.0123456789ab.tmp', 'theirs']);
  });
});
