import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// `npm pack` then `npx <tarball>` in an empty directory: what a user on a fresh host does.
// It packs a copy of the package with the dist/ that `npm test` built, without `prepack` (which
// would only build it again): packing in the checkout would rewrite the dist/ that the other
// tests are running.
describe('packed tarball', () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'ovn-deploy-pack-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('npx of the packed tarball prints --help with every command', () => {
    const repo = path.resolve(import.meta.dirname, '..');
    const copy = path.join(work, 'src-copy');
    mkdirSync(copy);
    for (const f of ['package.json', 'package-lock.json', 'README.md', 'dist', 'templates', 'scripts', 'specs', 'containers']) {
      cpSync(path.join(repo, f), path.join(copy, f), { recursive: true });
    }
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', work, '--loglevel=error'], { cwd: copy, stdio: 'pipe' });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const empty = path.join(work, 'empty');
    execFileSync('mkdir', ['-p', empty]);
    const help = execFileSync('npx', ['--yes', '--package', path.join(work, tarball!), 'ovn-deploy', '--help'], {
      cwd: empty,
      encoding: 'utf8',
      env: { ...process.env, npm_config_loglevel: 'error' },
      timeout: 240_000,
    });
    expect(help).toMatch(/^Usage: ovn-deploy/m);
    for (const cmd of ['pki', 'up', 'down', 'status', 'validate', 'init', 'schema']) {
      expect(help).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
    }
  });
});
