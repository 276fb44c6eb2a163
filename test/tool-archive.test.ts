import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildToolArchive, installToolCommand, productionDependencyDirs, type ToolArchive } from '../src/deploy/tool-archive.js';
import { packageRoot } from '../src/paths.js';

const hasDist = existsSync(path.join(packageRoot, 'dist', 'cli.js'));
if (!hasDist) console.warn('tool-archive tests skipped: dist/cli.js missing (run `npm run build`)');

describe.skipIf(!hasDist)('tool archive', () => {
  let tmp: string;
  let archive: ToolArchive;
  let listing: string[];

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'od-tool-test-'));
    const t = Date.now();
    archive = await buildToolArchive({ cacheDir: path.join(tmp, 'cache') });
    console.log(`tool archive ${archive.id}: built in ${Date.now() - t} ms`);
    listing = execFileSync('tar', ['-tzf', archive.file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).split('\n');
  }, 60_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('contains dist/cli.js, templates and the production dependencies', () => {
    expect(listing).toContain('dist/cli.js');
    expect(listing).toContain('package.json');
    expect(listing.some((f) => f.startsWith('templates/'))).toBe(true);
    const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies)) expect(listing, dep).toContain(`node_modules/${dep}/package.json`);
  });

  it('contains no devDependency', () => {
    for (const dev of ['vitest', 'typescript', 'eslint', '@eslint/js', 'typescript-eslint', '@types/node']) {
      expect(listing.some((f) => f.startsWith(`node_modules/${dev}/`)), dev).toBe(false);
    }
    expect(productionDependencyDirs(packageRoot).some((d) => /node_modules\/(vitest|typescript|eslint)$/.test(d))).toBe(false);
  });

  it('is content-addressed and cached', async () => {
    const again = await buildToolArchive({ cacheDir: path.join(tmp, 'cache') });
    expect(again).toEqual(archive);
    expect(archive.id).toMatch(/^\d+\.\d+\.\d+.*-[0-9a-f]{16}$/);
  });

  it('runs from an extracted copy: node dist/cli.js --version', () => {
    const dir = path.join(tmp, 'x');
    execFileSync('mkdir', ['-p', dir]);
    execFileSync('tar', ['-xzf', archive.file, '-C', dir]);
    const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
    // Run outside the checkout so nothing can resolve from the source tree's node_modules.
    const out = execFileSync(process.execPath, [path.join(dir, 'dist', 'cli.js'), '--version'], { encoding: 'utf8', cwd: tmp });
    expect(out.trim()).toBe(pkg.version);
  });

  it('remote commands pass the id and dir as arguments, never interpolated', () => {
    const argv = installToolCommand('0.1.0-0123456789abcdef', 'activate', '/opt/ovn-deploy');
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv.slice(-2)).toEqual(['/opt/ovn-deploy', '0.1.0-0123456789abcdef']);
    expect(() => installToolCommand('x; rm -rf /', 'check')).toThrow(/bad tool id/);
  });
});
