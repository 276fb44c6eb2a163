/**
 * `ovn-deploy pki ...` through main(): exit codes, output shape, --json, option validation, and
 * that no command ever prints key material.
 */
import { runCli, type CliResult } from './helpers/cli.js';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pkiPaths } from '../src/paths.js';
import { readIndex, type PkiStatusReport } from '../src/pki/index.js';
import { ZxRunner } from '../src/runner.js';

const runner = new ZxRunner();
const tag = Math.random().toString(36).slice(2, 8);
let root: string;
let dir: string;
/** Everything any command printed, checked for key material at the end. */
const transcript: string[] = [];

async function cli(...args: string[]): Promise<CliResult> {
  const r = await runCli(['pki', ...args]);
  transcript.push(r.stdout, r.stderr);
  return r;
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), `pki-cli-${tag}-`));
  dir = path.join(root, 'pki');
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('pki CLI', () => {
  it('refuses to issue before init: exit 2 with the command to run', async () => {
    const r = await cli('issue', '--dir', dir, '--name', 'x', '--role', 'worker');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`no CA in ${dir}: run \`ovn-deploy pki init --dir ${dir}\``);
  });

  it('init creates the CA, then keeps it', async () => {
    const first = await cli('init', '--dir', dir, '--key-bits', '2048', '--cn', `cli-${tag}`);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toContain(`created CA in ${dir}`);
    expect(first.stdout).toContain(pkiPaths(dir).caCert);
    const again = await cli('init', '--dir', dir, '--key-bits', '2048');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('kept');
  });

  it('issue prints paths, serial and notAfter, and writes a 0600 key', async () => {
    const r = await cli('issue', '--dir', dir, '--name', `central-${tag}`, '--role', 'central', '--san', '127.0.0.1', '--san', 'a.example,b.example', '--days', '90');
    expect(r.code).toBe(0);
    const serial = /serial ([0-9a-f]{32})/.exec(r.stdout)?.[1];
    expect(serial).toBeDefined();
    expect(r.stdout).toMatch(/valid until \d{4}-\d\d-\d\dT/);
    expect(r.stdout).toContain(pkiPaths(dir).cert(`central-${tag}`));
    expect(r.stdout).toContain(pkiPaths(dir).key(`central-${tag}`));
    expect(((await fs.stat(pkiPaths(dir).key(`central-${tag}`))).mode & 0o777).toString(8)).toBe('600');
    const t = (await runner.run(['openssl', 'x509', '-in', pkiPaths(dir).cert(`central-${tag}`), '-noout', '-text'])).stdout;
    expect(t).toContain('DNS:a.example');
    expect(t).toContain('DNS:b.example');
    expect(t).toContain('IP Address:127.0.0.1');
    expect((await readIndex(dir)).find((e) => e.serial === serial)?.role).toBe('central');
  });

  it('validates options: role, numbers, names and SANs give exit 2 naming the option', async () => {
    const cases: [string[], RegExp][] = [
      [['issue', '--dir', dir, '--name', 'x', '--role', 'router'], /--role: expected one of central, worker, metadata-agent/],
      [['issue', '--dir', dir, '--name', 'x', '--role', 'worker', '--days', '0'], /--days: must be a positive integer/],
      [['issue', '--dir', dir, '--name', 'x', '--role', 'worker', '--key-bits', 'many'], /--key-bits: must be a positive integer/],
      [['issue', '--dir', dir, '--name', 'x', '--role', 'worker', '--key-bits', '1024'], /--key-bits: RSA key size/],
      [['issue', '--dir', dir, '--name', '../x', '--role', 'worker'], /--name: invalid certificate name/],
      [['issue', '--dir', dir, '--name', 'x', '--role', 'worker', '--san', 'bad name'], /--san\[0\]: invalid subjectAltName/],
      [['status', '--dir', dir, '--renewal-days', '-3'], /--renewal-days: must be a positive integer/],
      [['crl', '--dir', dir, '--days', '1.5'], /--days: must be a positive integer/],
      [['revoke', '--dir', dir, '--name', 'x', '--reason', 'boredom'], /--reason: expected one of/],
      [['issue', '--dir', dir, '--role', 'worker'], /required option '--name <name>' not specified/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    expect((await readIndex(dir)).some((e) => e.name === 'x')).toBe(false);
  });

  it('sign-csr signs an openssl CSR, writes --out, and rejects garbage with exit 2 naming the file', async () => {
    const key = path.join(root, 'host.key');
    const csr = path.join(root, 'host.csr');
    await runner.run(['openssl', 'genrsa', '-out', key, '2048']);
    await runner.run(['openssl', 'req', '-new', '-key', key, '-subj', `/CN=chassis-${tag}`, '-out', csr]);
    const copy = path.join(root, 'out', 'host.crt');
    const r = await cli('sign-csr', '--dir', dir, '--csr', csr, '--role', 'worker', '--out', copy);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`signed chassis-${tag} (worker)`);
    expect(r.stdout).not.toContain('private key');
    expect(await fs.readFile(copy, 'utf8')).toBe(await fs.readFile(pkiPaths(dir).cert(`chassis-${tag}`), 'utf8'));
    const v = await runner.run(['openssl', 'verify', '-purpose', 'sslclient', '-CAfile', pkiPaths(dir).caCert, copy], { allowFailure: true });
    expect(v.exitCode).toBe(0);

    const junk = path.join(root, 'junk.csr');
    await fs.writeFile(junk, 'not a csr\n');
    const bad = await cli('sign-csr', '--dir', dir, '--csr', junk, '--role', 'worker');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(junk);
    const missing = await cli('sign-csr', '--dir', dir, '--csr', path.join(root, 'nope.csr'), '--role', 'worker');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.csr');
    // A private key given by mistake is refused without being echoed.
    const bad2 = await cli('sign-csr', '--dir', dir, '--csr', key, '--role', 'worker');
    expect(bad2.code).toBe(2);
  });

  it('sign-csr with several CSRs signs them as one batch: one index write, every certificate in it, copies in --out-dir', async () => {
    const names = [0, 1, 2].map((i) => `batch${i}-${tag}`);
    const csrs = await Promise.all(
      names.map(async (n) => {
        const csr = path.join(root, `${n}.csr`);
        await runner.run(['openssl', 'req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(root, `${n}.key`), '-subj', `/CN=${n}`, '-out', csr]);
        return csr;
      }),
    );
    // Its own PKI directory: the status test below counts the shared one's certificates.
    const dir = path.join(root, 'batch-pki');
    expect((await cli('init', '--dir', dir, '--key-bits', '2048')).code).toBe(0);
    const before = (await readIndex(dir)).length;
    const indexBefore = await fs.stat(pkiPaths(dir).index);
    const outDir = path.join(root, 'batch-out');
    const r = await cli('sign-csr', '--dir', dir, '--role', 'worker', '--csr', ...csrs, '--out-dir', outDir);
    expect(r.code).toBe(0);
    for (const n of names) expect(r.stdout).toContain(`signed ${n} (worker)`);
    const index = await readIndex(dir);
    expect(index.length).toBe(before + 3);
    for (const n of names) {
      const entry = index.find((e) => e.name === n && e.status === 'valid');
      expect(entry, n).toBeDefined();
      const copy = await fs.readFile(path.join(outDir, `${n}.crt`), 'utf8');
      expect(copy).toBe(await fs.readFile(pkiPaths(dir).cert(n), 'utf8'));
      const serial = (await runner.run(['openssl', 'x509', '-noout', '-serial', '-in', pkiPaths(dir).cert(n)])).stdout.trim().split('=')[1]?.toLowerCase();
      expect(serial?.replace(/^0+/, '')).toBe(entry?.serial.replace(/^0+/, ''));
    }
    expect((await fs.stat(pkiPaths(dir).index)).ino).not.toBe(indexBefore.ino);

    // Per-CSR options make no sense for a batch; a bad CSR among good ones signs none of them.
    const named = await cli('sign-csr', '--dir', dir, '--role', 'worker', '--csr', ...csrs, '--name', 'x');
    expect(named.code).toBe(2);
    expect(named.stderr).toContain('--name: applies to one CSR only');
    const junk = path.join(root, 'batch-junk.csr');
    await fs.writeFile(junk, 'not a csr\n');
    const mixed = await cli('sign-csr', '--dir', dir, '--role', 'worker', '--csr', csrs[0] as string, junk);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain(junk);
    const twice = await cli('sign-csr', '--dir', dir, '--role', 'worker', '--csr', csrs[0] as string, csrs[0] as string);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('one certificate per name in a batch');
    expect((await readIndex(dir)).length).toBe(before + 3);
  });

  it('revoke and crl re-sign the CRL; status shows it', async () => {
    await cli('issue', '--dir', dir, '--name', `gone-${tag}`, '--role', 'metadata-agent');
    const r = await cli('revoke', '--dir', dir, '--name', `gone-${tag}`);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`revoked gone-${tag} \\(metadata-agent\\): serial [0-9a-f]{32}`));
    expect(r.stdout).toContain('1 revoked');
    const again = await cli('revoke', '--dir', dir, '--name', `gone-${tag}`);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing left to revoke');
    const unknown = await cli('revoke', '--dir', dir, '--name', `never-${tag}`);
    expect(unknown.code).toBe(2);
    const c = await cli('crl', '--dir', dir, '--days', '5');
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/CRL re-signed: .*crl\.pem/);
    expect(c.stdout).toMatch(/1 revoked, next update/);
  });

  it('status prints an aligned table and warnings on stderr; --json prints the report', async () => {
    const r = await cli('status', '--dir', dir);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^NAME\s+ROLE\s+HOST\s+SERIAL\s+NOT-AFTER\s+DAYS\s+STATUS$/);
    const col = (lines[0] ?? '').indexOf('SERIAL');
    const rows = lines.slice(1).filter((l) => /[0-9a-f]{32}/.test(l));
    expect(rows.length).toBe(4); // CA, central, chassis, revoked metadata agent
    for (const l of rows) expect(l.slice(col, col + 32)).toMatch(/^[0-9a-f]{32}$/);
    expect(r.stdout).toMatch(new RegExp(`gone-${tag}\\s+metadata-agent.*revoked`));
    // The CRL was re-signed for 5 days: inside the 7-day warning.
    expect(r.stderr).toMatch(/warning: the CRL's next update is due in 4 day/);
    // 90 days, renewal window 100 days: due.
    const due = await cli('status', '--dir', dir, '--renewal-days', '100');
    expect(due.stdout).toMatch(new RegExp(`central-${tag}.*valid, renew`));
    expect(due.stderr).toContain(`certificate central-${tag} (central`);

    const j = await cli('status', '--dir', dir, '--json');
    expect(j.code).toBe(0);
    const report = JSON.parse(j.stdout) as PkiStatusReport;
    expect(report.rows[0]?.role).toBe('ca');
    expect(report.rows.map((x) => x.name)).toEqual(expect.arrayContaining([`central-${tag}`, `chassis-${tag}`, `gone-${tag}`]));
    expect(report.crl?.revoked).toBe(1);
    expect(report.warnings.length).toBeGreaterThan(0);
  });

  it('status on a directory without a CA: exit 2', async () => {
    const r = await cli('status', '--dir', path.join(root, 'nothing'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no CA in');
  });

  it('never printed key material', () => {
    expect(transcript.join('').length).toBeGreaterThan(0);
    expect(transcript.join('')).not.toContain('PRIVATE KEY');
  });
});
