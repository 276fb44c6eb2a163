import { runCli, type CliResult } from './helpers/cli.js';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { exampleSiteYaml, parseInventory } from '../src/inventory/index.js';

/** Runs the CLI in-process and captures what it writes. */
async function cli(...args: string[]): Promise<CliResult> {
  return runCli(args);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-inv-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const BAD_SITE = [
  'hosts:',
  '  - name: central1',
  '    addresses: [192.0.2.10, 300.1.1.1]',
  '    roles: [central]',
  '  - name: worker1',
  '    addresses: [192.0.2.21]',
  '    roles: [worker, router]',
  '',
].join('\n');

describe('ovn-deploy validate', () => {
  it('prints a summary and exits 0 for a good file', async () => {
    const file = path.join(dir, 'good.yaml');
    await writeFile(file, exampleSiteYaml());
    const r = await cli('validate', file);
    expect(r).toEqual({ code: 0, stdout: `${file}: valid: site lab1, 3 centrals, 2 workers, 1 metadata agent\n`, stderr: '' });
  });

  it('prints every problem on stderr and exits 2 for a bad file', async () => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, BAD_SITE);
    const r = await cli('validate', file);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toEqual([
      `${file}: hosts[0].addresses[1]: not an IPv4 or IPv6 address: "300.1.1.1" (line 3)`,
      `${file}: hosts[1].encap.ip: required for a worker (line 5)`,
      `${file}: hosts[1].roles[1]: expected one of central, worker, metadata-agent, cms, got "router" (line 7)`,
      `ovn-deploy: ${file} is not valid: 3 errors`,
      '',
    ]);
  });

  it('prints warnings of a valid file on stderr', async () => {
    const file = path.join(dir, 'two-centrals.yaml');
    await writeFile(file, 'hosts:\n  - {name: a, addresses: [192.0.2.1], roles: [central]}\n  - {name: b, addresses: [192.0.2.2], roles: [central]}\n');
    const r = await cli('validate', file);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`${file}: warning: 2 central hosts: RAFT needs an odd number for a useful quorum (3 or 5)\n`);
    expect(r.stdout).toBe(`${file}: valid: site ovn, 2 centrals, 0 workers, 0 metadata agents\n`);
  });

  it('prints a JSON report with --json', async () => {
    const file = path.join(dir, 'bad-json.yaml');
    await writeFile(file, BAD_SITE);
    const r = await cli('validate', '--json', file);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({
      ok: false,
      errors: [
        { path: 'hosts[0].addresses[1]', message: 'not an IPv4 or IPv6 address: "300.1.1.1"', line: 3 },
        { path: 'hosts[1].encap.ip', message: 'required for a worker', line: 5 },
        { path: 'hosts[1].roles[1]', message: 'expected one of central, worker, metadata-agent, cms, got "router"', line: 7 },
      ],
      warnings: [],
    });

    const good = path.join(dir, 'good-json.yaml');
    await writeFile(good, exampleSiteYaml());
    const ok = await cli('validate', '--json', good);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ ok: true, errors: [], warnings: [] });
  });

  it('names a file it cannot read and exits 2', async () => {
    const file = path.join(dir, 'nope.yaml');
    const r = await cli('validate', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: cannot read the site file: no such file\n`);
  });
});

describe('ovn-deploy init', () => {
  it('writes the example, which validates', async () => {
    const file = path.join(dir, 'init', 'site.yaml');
    const r = await cli('init', '--out', file);
    expect(r.code).toBe(0);
    const text = await readFile(file, 'utf8');
    expect(text).toBe(exampleSiteYaml());
    expect(parseInventory(text, file).warnings).toEqual([]);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    expect((await cli('validate', file)).code).toBe(0);
  });

  it('refuses to overwrite an existing file without --force', async () => {
    const file = path.join(dir, 'mine.yaml');
    await writeFile(file, 'my own site\n');
    const r = await cli('init', '--out', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`ovn-deploy: ${file}: already exists; use --force to overwrite it\n`);
    expect(await readFile(file, 'utf8')).toBe('my own site\n');

    const forced = await cli('init', '--out', file, '--force');
    expect(forced.code).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(exampleSiteYaml());
  });
});

describe('ovn-deploy init (default file)', () => {
  const cwd = process.cwd();
  afterEach(() => {
    process.chdir(cwd);
  });

  it('writes ./site.yaml without --out and refuses a directory even with --force', async () => {
    const here = await mkdtemp(path.join(dir, 'cwd-'));
    process.chdir(here);
    const r = await cli('init');
    expect(r).toEqual({ code: 0, stdout: 'wrote site.yaml; edit it, then check it with: ovn-deploy validate site.yaml\n', stderr: '' });
    expect(await readFile(path.join(here, 'site.yaml'), 'utf8')).toBe(exampleSiteYaml());

    const d = await cli('init', '--out', here, '--force');
    expect(d.code).toBe(2);
    expect(d.stderr).toBe(`ovn-deploy: ${here}: is a directory; give the file to write with --out\n`);
  });
});

describe('ovn-deploy schema', () => {
  it('prints the JSON Schema', async () => {
    const r = await cli('schema');
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { $schema: string; properties: Record<string, unknown> };
    expect(schema.$schema).toMatch(/json-schema\.org/);
    expect(Object.keys(schema.properties)).toEqual(['site', 'tls', 'ports', 'loopbackPorts', 'certificates', 'hosts', 'metadataAgent']);
  });
});
