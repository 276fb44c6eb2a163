/**
 * A command line that names a command loads that command alone (main.ts), not every command's
 * declarations: the modules it loads, and that what a user sees is what the full program gives
 * (help, usage mistakes, exit codes). Runs the built dist/ (as users do): `npm test` builds first.
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
const programJs = path.join(packageRoot, 'dist', 'program.js');
const hasDist = existsSync(cli);
if (!hasDist) console.warn('cli-one-command tests skipped: dist/cli.js missing (run `npm run build`)');
const hook = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'module-log.mjs');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'od-cli-one-command-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Through cli.ts, with the module log. */
function viaCli(args: string[]): { status: number | null; stdout: string; stderr: string; modules: string[] } {
  const log = path.join(tmp, `modules-${Math.random().toString(36).slice(2)}.txt`);
  const r = spawnSync(process.execPath, ['--import', hook, cli, ...args], { encoding: 'utf8', env: { ...process.env, OVN_DEPLOY_MODULE_LOG: log } });
  const modules = readFileSync(log, 'utf8')
    .split('\n')
    .filter((u) => u.startsWith('file:'))
    .map((u) => path.relative(packageRoot, fileURLToPath(u)));
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, modules };
}

/** Through the program with every command declared, as before commands loaded one at a time. */
function viaFull(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const script = `const { buildProgram } = await import(${JSON.stringify(mainJs)}); const { runProgram } = await import(${JSON.stringify(programJs)}); process.exitCode = await runProgram(await buildProgram(), ['node', 'ovn-deploy', ...${JSON.stringify(args)}]);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Our command modules a run loaded (commander.ts and cli-io.ts are shared helpers). */
const commandModules = (modules: string[]): string[] => modules.filter((m) => /^dist\/commands\/[a-z-]+\.js$/.test(m) && !/\/(index|commander|cli-io)\.js$/.test(m));

describe.skipIf(!hasDist)('one command per command line (main.ts)', () => {
  it('pki and down load their own command and no other', () => {
    expect(commandModules(viaCli(['pki', 'status', '--dir', path.join(tmp, 'none'), '--json']).modules)).toEqual(['dist/commands/pki.js']);
    const down = viaCli(['down', '--dir', path.join(tmp, 'no-sandbox')]);
    expect(down.status, down.stderr).toBe(0);
    expect(commandModules(down.modules)).toEqual(['dist/commands/down.js']);
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
      ['down', '--help'],
      ['down', '--bogus'],
      ['down', 'extra'],
      ['down', '--version'],
      ['up', '--workers', '99'],
      ['status', '--help'],
      ['certs'],
      ['certs', 'rotate', '--help'],
      ['deploy', '--inventory', path.join(tmp, 'missing.yaml'), '--dry-run'],
      ['validate'],
    ];
    for (const args of cases) {
      const fast = viaCli(args);
      const full = viaFull(args);
      expect({ status: fast.status, stdout: fast.stdout, stderr: fast.stderr }, args.join(' ')).toEqual(full);
    }
  });

  it('no command, help and an unknown command get every command', () => {
    const every = ['up', 'apply', 'status', 'deploy', 'central', 'down', 'certs', 'backup', 'restore', 'pki', 'build', 'init', 'validate', 'schema', 'render', 'supervise'];
    for (const args of [['--version'], ['--help'], ['bogus'], ['help', 'down']]) {
      expect(commandModules(viaCli(args).modules), args.join(' ')).toEqual(expect.arrayContaining(every.map((c) => `dist/commands/${c}.js`)));
    }
  });
});
