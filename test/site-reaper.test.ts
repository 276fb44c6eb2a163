/**
 * The stale-site reaper (test/helpers/site-registry.ts) trusts only its own registry and only
 * test-site names. `destroy` is a recorder here (the real one deletes containers, netnses and
 * links as root): a record that reaches it is one the real reaper would act on. Directories are
 * real: a symlinked site directory must survive, and so must what it points to.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultSiteRegistryDir, ensureRegistryDir, processStart, reapStaleSites, saveRecord, type SiteRecord } from './helpers/site-registry.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('site-reaper.test.ts: the other-owner case needs root (chown) and is skipped');

let base: string;
let registry: string;
let siteDir: string;
const destroyed: SiteRecord[] = [];
const destroy = async (r: SiteRecord): Promise<void> => {
  destroyed.push(r);
};
const deadPid = (): number => spawnSync('true').pid as number;
const record = (prefix: string, over: Partial<SiteRecord> = {}): SiteRecord => ({
  prefix,
  pid: deadPid(),
  pidStart: '1',
  dir: siteDir,
  containers: [`${prefix}-central1`],
  netnses: [`${prefix}-central1`],
  links: [`${prefix}-m`, `${prefix}m0`],
  ...over,
});
const plant = (rec: unknown, name: string): void => writeFileSync(path.join(registry, name), JSON.stringify(rec));

beforeEach(() => {
  base = mkdtempSync(path.join(os.tmpdir(), 'site-reaper-test-'));
  registry = path.join(base, 'registry');
  siteDir = mkdtempSync(path.join(os.tmpdir(), 'odabcde-site-'));
  destroyed.length = 0;
});
afterEach(() => {
  rmSync(base, { recursive: true, force: true });
  rmSync(siteDir, { recursive: true, force: true });
});

describe('stale test-site reaper', () => {
  it('the real registry stays under os.tmpdir(); a new registry is created 0700', () => {
    expect(path.dirname(defaultSiteRegistryDir)).toBe(os.tmpdir());
    saveRecord(record('odabcde'), registry);
    expect(ensureRegistryDir(registry, false)).toBe(true);
    expect(existsSync(path.join(registry, 'odabcde.json'))).toBe(true);
  });

  it('reaps a dead creator\'s well-formed site, never a live one', async () => {
    saveRecord(record('odabcde'), registry);
    saveRecord(record('od12345', { pid: process.pid, pidStart: processStart(process.pid) ?? '', dir: path.join(os.tmpdir(), 'od12345-site-live') }), registry);
    const r = await reapStaleSites({ registryDir: registry, destroy });
    expect(r).toEqual({ reaped: ['odabcde'], refused: [] });
    expect(destroyed.map((d) => d.prefix)).toEqual(['odabcde']);
    expect(existsSync(path.join(registry, 'odabcde.json'))).toBe(false);
    expect(existsSync(path.join(registry, 'od12345.json'))).toBe(true);
  });

  it('refuses a registry with another mode, a symlinked one, or one owned by someone else (throws, reaps nothing)', async () => {
    mkdirSync(registry, { mode: 0o700 });
    plant(record('odabcde'), 'odabcde.json');
    chmodSync(registry, 0o755);
    await expect(reapStaleSites({ registryDir: registry, destroy })).rejects.toThrow(/mode 755, not 700/);
    expect(() => saveRecord(record('od12345'), registry)).toThrow(/mode 755/);
    chmodSync(registry, 0o700);

    const link = path.join(base, 'link');
    symlinkSync(registry, link);
    await expect(reapStaleSites({ registryDir: link, destroy })).rejects.toThrow(/is a symlink/);

    if (isRoot) {
      chownSync(registry, 65534, 65534);
      await expect(reapStaleSites({ registryDir: registry, destroy })).rejects.toThrow(/owned by uid 65534/);
      chownSync(registry, 0, 0);
    }
    expect(destroyed).toEqual([]);
    // The same registry, back to ours: now it is trusted.
    expect((await reapStaleSites({ registryDir: registry, destroy })).reaped).toEqual(['odabcde']);
  });

  it('refuses forged records: foreign prefix, foreign names, foreign or symlinked directory; nothing is destroyed', async () => {
    mkdirSync(registry, { mode: 0o700 });
    const victim = mkdtempSync(path.join(base, 'victim-'));
    writeFileSync(path.join(victim, 'precious'), 'not yours');
    const linkDir = path.join(os.tmpdir(), `odfffff-site-${path.basename(base).slice(-6)}`);
    symlinkSync(victim, linkDir);
    try {
      plant(record('eth', { links: ['eth0'] }), 'eth.json');
      plant(record('odabcde', { links: ['eth0'] }), 'odabcde.json');
      plant(record('od11111', { netnses: ['cni-1234'] }), 'od11111.json');
      plant(record('od22222', { containers: ['postgres'] }), 'od22222.json');
      plant(record('od33333', { dir: victim }), 'od33333.json');
      plant(record('od44444', { dir: '/etc' }), 'od44444.json');
      plant(record('odfffff', { dir: linkDir }), 'odfffff.json');
      plant(record('od55555'), 'od66666.json'); // file name and prefix disagree
      plant({ prefix: 'od77777' }, 'od77777.json');
      writeFileSync(path.join(registry, 'junk.json'), '{not json');
      const r = await reapStaleSites({ registryDir: registry, destroy });
      expect(destroyed).toEqual([]);
      expect(r.reaped).toEqual([]);
      expect(r.refused.map((x) => x.slice(0, x.indexOf(':'))).sort()).toEqual(
        ['eth', 'junk', 'od11111', 'od22222', 'od33333', 'od44444', 'od66666', 'od77777', 'odabcde', 'odfffff'].map((n) => `${n}.json`),
      );
      expect(r.refused.find((x) => x.startsWith('odabcde'))).toMatch(/without the prefix odabcde: eth0/);
      expect(r.refused.find((x) => x.startsWith('odfffff'))).toMatch(/is a symlink/);
      // Refused records stay (for a human to look at); the symlink target is intact.
      expect(existsSync(path.join(registry, 'odabcde.json'))).toBe(true);
      expect(existsSync(path.join(victim, 'precious'))).toBe(true);
    } finally {
      rmSync(linkDir, { force: true });
    }
  });
});
