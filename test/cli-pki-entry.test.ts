/**
 * `ovn-deploy pki ...` loads the pki command alone (cli.ts), not every command's declarations:
 * the modules it loads, and that what a user sees is what the full program gives (help, usage
 * mistakes, exit codes). Runs the built dist/ (as users do): `npm test` builds first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../src/paths.js';

const cli = path.join(packageRoot, 'dist', 'cli.js');
const mainJs = path.join(packageRoot, 'dist', 'main.js');
const hasDist = existsSync(cli);
if (!hasDist) console.warn('cli-pki-entry tests skipped: dist/cli.js missing (run `npm run build`)');
const hook = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'module-log.mjs');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'od-cli-pki-entry-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Through cli.ts (the pki entry), with the module log. */
function viaCli(args: string[]): { status: number | null; stdout: string; stderr: string; modules: string[] } {
  const log = path.join(tmp, `modules-${Math.random().toString(36).slice(2)}.txt`);
  const r = spawnSync(process.execPath, ['--import', hook, cli, ...args], { encoding: 'utf8', env: { ...process.env, OVN_DEPLOY_MODULE_LOG: log } });
  const modules = readFileSync(log, 'utf8')
    .split('\n')
    .filter((u) => u.startsWith('file:'))
    .map((u) => path.relative(packageRoot, fileURLToPath(u)));
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, modules };
}

/** Through main() with every command registered, as before the pki entry existed. */
function viaMain(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const script = `const { main } = await import(${JSON.stringify(mainJs)}); process.exitCode = await main(['node', 'ovn-deploy', ...${JSON.stringify(args)}]);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!hasDist)('the pki entry of cli.ts', () => {
  it('loads the pki command and no other command, nor main.js', () => {
    const { status, modules } = viaCli(['pki', 'status', '--dir', path.join(tmp, 'none'), '--json']);
    expect(status).toBe(2); // no CA there
    expect(modules).toContain('dist/commands/pki.js');
    expect(modules).not.toContain('dist/main.js');
    expect(modules.filter((m) => /^dist\/commands\/[a-z-]+\.js$/.test(m) && !/\/(pki|commander|cli-io)\.js$/.test(m))).toEqual([]);
  });

  it('help, usage mistakes and refusals read and exit exactly as through the full program', () => {
    const cases = [
      ['pki', '--help'],
      ['pki', 'issue', '--help'],
      ['pki', 'sign-csr', '--help'],
      ['pki'],
      ['pki', 'bogus'],
      ['pki', 'issue', '--dir', path.join(tmp, 'none')],
      ['pki', 'issue', '--dir', path.join(tmp, 'none'), '--name', 'x', '--role', 'worker'],
      ['pki', 'revoke', '--dir', path.join(tmp, 'none'), '--name', 'x', '--reason', 'bored'],
    ];
    for (const args of cases) {
      const fast = viaCli(args);
      const full = viaMain(args);
      expect({ status: fast.status, stdout: fast.stdout, stderr: fast.stderr }, args.join(' ')).toEqual(full);
    }
  });

  it('other commands still go through main.js', () => {
    const { modules } = viaCli(['--version']);
    expect(modules).toContain('dist/main.js');
  });
});
