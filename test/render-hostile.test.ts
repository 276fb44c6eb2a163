/**
 * `render --out` owns only what it wrote (issue #12, item 1): it keeps a record of its files in
 * --out, removes only files of that record it no longer renders, never follows a symlink, never
 * replaces a file it did not write, and refuses a non-empty directory it did not create. Every
 * refusal is exit 2 with nothing written or removed.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { initPki } from '../src/pki/index.js';
import { bundleSource } from '../src/paths.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { expectRefused, snapshot } from './helpers/refusals.js';
import { renderFixtureDir, renderFixtureSite } from './helpers/render-fixture.js';

let dir: string;
let pkiDir: string;
const secretFile = path.join(renderFixtureDir, 'metadata-secret');

const render = (site: string, out: string, ...extra: string[]): Promise<CliResult> =>
  runCli(['render', '--inventory', site, '--out', out, '--pki', pkiDir, '--metadata-secret-file', secretFile, ...extra]);

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** The fixture site with `edit` applied, written next to the other test files. */
async function siteVariant(name: string, edit: (site: { hosts: { name: string; roles: string[] }[] }) => void): Promise<string> {
  const site = parse(await readFile(renderFixtureSite, 'utf8')) as { hosts: { name: string; roles: string[] }[] };
  edit(site);
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(file, stringify(site));
  return file;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-render-hostile-'));
  pkiDir = path.join(dir, 'pki');
  // render signs every manifest with the site CA key: a real PKI.
  await initPki(pkiDir, { keyBits: 2048, commonName: 'render-hostile' });
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('render --out owns only what it wrote', () => {
  it('a file someone put beside a bundle stays, however often render runs', async () => {
    const out = path.join(dir, 'notes');
    expect((await render(renderFixtureSite, out)).code).toBe(0);
    const notes = path.join(out, 'central1', 'notes.txt');
    await writeFile(notes, 'mine\n');
    const again = await render(renderFixtureSite, out, '--json');
    expect(again.code, again.stderr).toBe(0);
    const summary = JSON.parse(again.stdout) as { hosts: { host: string; removed: string[] }[] };
    expect(summary.hosts.flatMap((h) => h.removed)).toEqual([]);
    expect(await readFile(notes, 'utf8')).toBe('mine\n');
  });

  it('removes the files it wrote and no longer renders, and the bundle of a host that left the site', async () => {
    const out = path.join(dir, 'shrink');
    expect((await render(renderFixtureSite, out)).code).toBe(0);
    // worker1 loses the metadata agent and worker3 leaves the site.
    const smaller = await siteVariant('smaller', (s) => {
      s.hosts = s.hosts.filter((h) => h.name !== 'worker3');
      const w1 = s.hosts.find((h) => h.name === 'worker1');
      if (w1 !== undefined) w1.roles = ['worker'];
    });
    const mine = path.join(out, 'worker1', 'mine.txt');
    await writeFile(mine, 'mine\n');
    const r = await render(smaller, out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { hosts: { host: string; removed: string[] }[]; removedBundles: string[] };
    const removed = summary.hosts.find((h) => h.host === 'worker1')?.removed ?? [];
    expect(removed.length).toBeGreaterThan(0);
    expect(removed.every((f) => f.includes('metadata'))).toBe(true);
    const left = await readdir(path.join(out, 'worker1', 'files'));
    expect(left.length).toBeGreaterThan(0);
    expect(left.filter((f) => `files/${f}`.startsWith(bundleSource('/etc/ovn-deploy/metadata-agent/')))).toEqual([]);
    expect(summary.removedBundles).toEqual(['worker3']);
    expect(await exists(path.join(out, 'worker3'))).toBe(false);
    expect(await readFile(mine, 'utf8')).toBe('mine\n');
  });

  it('refuses a non-empty directory it did not create (hosts named etc and home into a system-like tree)', async () => {
    const out = path.join(dir, 'root-like');
    await mkdir(path.join(out, 'etc', 'ssh'), { recursive: true });
    await mkdir(path.join(out, 'home'), { recursive: true });
    await writeFile(path.join(out, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
    await writeFile(path.join(out, 'etc', 'ssh', 'ssh_host_key'), 'KEY\n');
    const site = await siteVariant('etc-home', (s) => {
      const [a, b] = s.hosts.filter((h) => h.name === 'worker2' || h.name === 'worker3');
      if (a !== undefined) a.name = 'etc';
      if (b !== undefined) b.name = 'home';
    });
    const before = await snapshot(out);
    expectRefused(await render(site, out), /--out: .*root-like.*not empty.*not written by render/);
    expect(await snapshot(out)).toEqual(before);
  });

  it('never follows a symlink inside --out: a bundle directory pointing elsewhere is refused and the target untouched', async () => {
    const out = path.join(dir, 'linked');
    expect((await render(renderFixtureSite, out)).code).toBe(0);
    const elsewhere = path.join(dir, 'elsewhere');
    await mkdir(elsewhere);
    await writeFile(path.join(elsewhere, 'precious'), 'do not delete\n');
    await rm(path.join(out, 'central1'), { recursive: true });
    await symlink(elsewhere, path.join(out, 'central1'));
    const before = await snapshot(elsewhere);
    expectRefused(await render(renderFixtureSite, out), /central1.*symbolic link/);
    expect(await snapshot(elsewhere)).toEqual(before);
  });

  it('never replaces a file it did not write: a foreign file where a bundle file goes is refused', async () => {
    const out = path.join(dir, 'foreign');
    expect((await render(renderFixtureSite, out)).code).toBe(0);
    // A host joins whose bundle directory someone already filled by hand.
    const bigger = await siteVariant('bigger', (s) => {
      s.hosts.push({ name: 'worker4', addresses: ['192.0.2.24'], roles: ['worker'], encap: { type: 'geneve', ip: '198.51.100.24' } } as { name: string; roles: string[] });
    });
    await mkdir(path.join(out, 'worker4'), { recursive: true });
    await writeFile(path.join(out, 'worker4', 'manifest.json'), '{"hand": "made"}\n');
    const before = await snapshot(out);
    expectRefused(await render(bigger, out), /worker4\/manifest\.json.*not written by render/);
    expect(await snapshot(out)).toEqual(before);
  });

  it('--out naming a regular file is exit 2, not a stack trace', async () => {
    const file = path.join(dir, 'plain-file');
    await writeFile(file, 'x');
    expectRefused(await render(renderFixtureSite, file), /plain-file: --out: is not a directory/);
    expect(await readFile(file, 'utf8')).toBe('x');
  });
});
