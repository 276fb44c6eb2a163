/**
 * The test images' rootfs builder (test/helpers/rootfs.ts), with a shell command standing in for
 * mmdebstrap (mock: a real rootfs takes a minute): a background build and a file's own ensure
 * build once between them, the second waiting for the first; a failed build leaves neither the
 * tarball nor its partial file, and the next builder starts over.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureRootfs, startRootfs, type RootfsRecipe } from './helpers/rootfs.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A stand-in build: counts its runs, takes `ms`, then writes its output (the appended last argument). */
function recipe(dir: string, ms: number, fail = false): RootfsRecipe {
  const script = `echo run >> ${JSON.stringify(path.join(dir, 'runs'))}; sleep ${ms / 1000}; echo data > "$0"${fail ? '; exit 3' : ''}`;
  return { tar: path.join(dir, 'rootfs-x.tar'), argv: ['sh', '-c', script], timeoutMs: 30_000 };
}

describe('rootfs builder (shell stand-in for mmdebstrap)', () => {
  it('a background build and an ensure run the build once; the ensure waits for it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rootfs-lock-'));
    dirs.push(dir);
    const log = openSync(path.join(dir, 'log'), 'a');
    const bg = startRootfs(recipe(dir, 800), log);
    closeSync(log);
    await new Promise((r) => setTimeout(r, 200)); // the background builder holds the lock
    const t = Date.now();
    ensureRootfs(recipe(dir, 800));
    expect(Date.now() - t, 'ensure waited for the build in flight').toBeGreaterThan(300);
    expect(await bg.done).toBe(0);
    expect(readFileSync(path.join(dir, 'rootfs-x.tar'), 'utf8')).toBe('data\n');
    expect(readFileSync(path.join(dir, 'runs'), 'utf8')).toBe('run\n');
    ensureRootfs(recipe(dir, 0));
    expect(readFileSync(path.join(dir, 'runs'), 'utf8'), 'an existing tarball is not rebuilt').toBe('run\n');
  });

  it('a failed build leaves no tarball and no partial; the next one builds', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rootfs-lock-'));
    dirs.push(dir);
    expect(() => ensureRootfs(recipe(dir, 0, true))).toThrow(/rootfs-x\.tar.*failed \(3\)/);
    expect(readdirSync(dir).sort()).toEqual(['rootfs-x.tar.lock', 'runs']);
    ensureRootfs(recipe(dir, 0));
    expect(existsSync(path.join(dir, 'rootfs-x.tar'))).toBe(true);
    expect(readFileSync(path.join(dir, 'runs'), 'utf8')).toBe('run\nrun\n');
  });
});
