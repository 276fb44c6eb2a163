/**
 * Every rendered unit and drop-in passes `systemd-analyze verify` (real systemd, offline: it only
 * loads the files, it starts nothing). Each host's units are verified together so that their
 * Requires=/After= resolve; drop-ins are verified on the distribution unit they extend.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderSite } from '../src/render/index.js';
import { fixtureInventory, fixtureOptions, fixturePki } from './helpers/render-fixture.js';
import { bundleSource } from '../src/paths.js';

const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
if (!analyze) process.stderr.write('render-systemd: systemd-analyze is not installed; skipping unit verification\n');

const inv = fixtureInventory();
const site = renderSite(inv, fixturePki(), fixtureOptions());
const tmp = mkdtempSync(path.join(os.tmpdir(), 'ovn-deploy-units-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The host's files under /etc/systemd/system, written into `dir` in the same layout. */
function unitsOf(host: string, dir: string): { units: string[]; dropIns: string[] } {
  const prefix = `${host}/${bundleSource('/etc/systemd/system/')}`;
  const units: string[] = [];
  const dropIns: string[] = [];
  for (const [rel, f] of site) {
    if (!rel.startsWith(prefix)) continue;
    const name = decodeURIComponent(rel.slice(prefix.length));
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), f.content);
    if (name.endsWith('.service')) units.push(name);
    else dropIns.push(name.split('/')[0]!.replace(/\.d$/, ''));
  }
  return { units: units.sort(), dropIns: dropIns.sort() };
}

/** stdout+stderr of a verify run; systemd prints unknown keys and bad values but still exits 0. */
function verify(dir: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...args], {
    cwd: dir,
    env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:`, SYSTEMD_LOG_LEVEL: 'notice' },
    encoding: 'utf8',
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

describe.each(inv.hosts.map((h) => h.name))('systemd units of %s', (host) => {
  const dir = path.join(tmp, host);
  mkdirSync(dir, { recursive: true });
  const { units, dropIns } = unitsOf(host, dir);

  it.skipIf(!analyze)('verify without a warning', () => {
    expect(units.length).toBeGreaterThan(0);
    const r = verify(dir, units.map((u) => path.join(dir, u)));
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  // Only the distribution units installed on this machine can be loaded with their drop-in.
  const installed = dropIns.filter((u) => existsSync(path.join('/lib/systemd/system', u)));
  it.skipIf(!analyze || installed.length === 0)('drop-ins load on the distribution units without a warning', () => {
    const r = verify(dir, installed);
    expect(r.output.split('\n').filter((l) => l.includes(dir))).toEqual([]);
    expect(r.status).toBe(0);
    // The drop-ins are really loaded: a bad key in one is reported with its path.
    const bogus = path.join(dir, `${installed[0]!}.d`, 'zz-check.conf');
    writeFileSync(bogus, '[Unit]\nNoSuchKey=1\n');
    try {
      expect(verify(dir, [installed[0]!]).output).toContain(`${bogus}:2: Unknown key`);
    } finally {
      rmSync(bogus);
    }
  });

  it.skipIf(!analyze)('catches a broken unit (the check can fail)', () => {
    const broken = path.join(dir, 'ovn-deploy-broken-check.service');
    writeFileSync(broken, '[Service]\nExecStart=/nonexistent/daemon\nRestart=sometimes\n');
    try {
      const r = verify(dir, [broken]);
      expect(r.output).toMatch(/Restart|nonexistent/);
    } finally {
      rmSync(broken);
    }
  });
});
