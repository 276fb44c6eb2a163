/**
 * Start-up cost: `--version`, `--help` and every command's help are answered by commander and the
 * command declarations alone. A resolve hook records every module the built CLI loads; the test
 * fails when a static import pulls a heavy library (or a whole command implementation) onto the
 * start-up path. Runs the built dist/ (as users do): `npm test` builds first.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../src/paths.js';

const cli = path.join(packageRoot, 'dist', 'cli.js');
const hasDist = existsSync(cli);
if (!hasDist) console.warn('cli-startup tests skipped: dist/cli.js missing (run `npm run build`)');
const hook = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'module-log.mjs');
/** What only the commands that use them may load. */
const HEAVY = ['listr2', 'zx', 'node-forge', '@peculiar/x509', 'handlebars', 'zod', 'yaml'];

const tmp = mkdtempSync(path.join(os.tmpdir(), 'od-cli-startup-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let runs = 0;

/** Runs node with the hook; returns stdout and the modules it loaded (paths relative to the package). */
function traced(args: string[]): { stdout: string; modules: string[] } {
  const log = path.join(tmp, `modules-${++runs}.txt`);
  const stdout = execFileSync(process.execPath, ['--import', hook, ...args], {
    encoding: 'utf8',
    env: { ...process.env, OVN_DEPLOY_MODULE_LOG: log },
    maxBuffer: 16 << 20,
  });
  const modules = readFileSync(log, 'utf8')
    .split('\n')
    .filter((u) => u.startsWith('file:'))
    .map((u) => path.relative(packageRoot, fileURLToPath(u)));
  return { stdout, modules: [...new Set(modules)] };
}

function heavyIn(modules: string[]): string[] {
  return HEAVY.filter((pkg) => modules.some((m) => m.startsWith(`node_modules/${pkg}/`)));
}

describe.skipIf(!hasDist)('CLI start-up loads commander and the declarations only', () => {
  it('--version', () => {
    const { stdout, modules } = traced([cli, '--version']);
    expect(stdout.trim()).toBe(JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).version);
    expect(heavyIn(modules)).toEqual([]);
    // Our own modules: the entry, main, the registry, the command declarations and the few constant
    // modules their help text names (roles, limits, exit codes), nothing that does the work.
    const allowed = /^dist\/((cli|main|program|errors|version|paths|fsx|packages)\.js|commands\/[a-z-]+\.js|packaging\/(preflight|roles)\.js|ui\/ci\.js|deploy\/cli-options\.js|pki\/types\.js|sandbox\/naming\.js)$/;
    expect(modules.filter((m) => m.startsWith('dist/') && !allowed.test(m))).toEqual([]);
  });

  it('--help lists every command and loads no heavy module', () => {
    const { stdout, modules } = traced([cli, '--help']);
    for (const name of ['up', 'apply', 'status', 'deploy', 'central', 'down', 'certs', 'pki', 'build', 'init', 'validate', 'schema', 'render']) {
      expect(stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    }
    expect(heavyIn(modules)).toEqual([]);
  });

  it("every command's and subcommand's help is complete without loading its implementation", () => {
    // One process prints the help of every command (as `ovn-deploy X Y --help` would).
    const script = `
      const { buildProgram } = await import(${JSON.stringify(path.join(packageRoot, 'dist', 'main.js'))});
      const walk = (cmd, names) => {
        const here = [...names, cmd.name()];
        process.stdout.write('### ' + here.join(' ') + '\\n' + cmd.helpInformation());
        for (const sub of cmd.commands) walk(sub, here);
      };
      walk(await buildProgram(), []);`;
    const { stdout, modules } = traced(['--input-type=module', '-e', script]);
    expect(heavyIn(modules)).toEqual([]);
    const sections = stdout.split('### ').filter((s) => s !== '');
    expect(sections.length).toBeGreaterThanOrEqual(33);
    const help = (name: string) => (sections.find((s) => s.startsWith(`${name}\n`)) ?? '').replace(/\s+/g, ' ');
    expect(help('ovn-deploy pki sign-csr')).toContain('--csr <files...>');
    expect(help('ovn-deploy pki sign-csr')).toContain('--out-dir <dir>');
    expect(help('ovn-deploy build base-image')).toContain('default rpm,libssl3');
    expect(help('ovn-deploy up')).toMatch(/--workers <n> number of workers \(1-16\)/);
    expect(help('ovn-deploy certs revoke')).toContain('keyCompromise');
  });

  it('render loads no certificate library: the CA key and the CRL are read with node:crypto and asn1js (node-forge and @peculiar/x509 cost ~250 ms to load)', () => {
    const pkiDir = path.join(tmp, 'render-pki');
    execFileSync(process.execPath, [cli, 'pki', 'init', '--dir', pkiDir, '--key-bits', '2048', '--cn', 'startup'], { stdio: 'ignore' });
    const inv = path.join(tmp, 'render-site.yaml');
    writeFileSync(inv, 'site: startup\nhosts:\n  - { name: central1, addresses: [192.0.2.1], roles: [central] }\n  - { name: worker1, addresses: [192.0.2.2], roles: [worker], encap: { type: geneve, ip: 192.0.2.2 } }\n');
    const { stdout, modules } = traced([cli, 'render', '--inventory', inv, '--out', path.join(tmp, 'render-out'), '--pki', pkiDir, '--json']);
    expect((JSON.parse(stdout) as { hosts: unknown[] }).hosts).toHaveLength(2);
    expect(heavyIn(modules)).toEqual(['handlebars', 'zod', 'yaml']);
  });
});
