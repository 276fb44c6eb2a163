/**
 * The PKI as an attacker (or a careless operator) would use it (issue #12, items 2-5 and 7): it
 * never overwrites or deletes a key it did not just create, never lets a CSR take over another
 * name or role, never writes an output into its own directory, checks outputs before it signs, and
 * answers ordinary bad input with exit 2 and a message, never a stack trace. Each case checks
 * what is on disk afterwards, not only the exit code.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pkiPaths } from '../src/paths.js';
import { readIndex } from '../src/pki/index.js';
import { ZxRunner } from '../src/runner.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { expectRefused, snapshot } from './helpers/refusals.js';

const runner = new ZxRunner();
let root: string;
let dir: string;

const pki = (...args: string[]): Promise<CliResult> => runCli(['pki', ...args]);
const sha = async (file: string): Promise<string> => createHash('sha256').update(await fs.readFile(file)).digest('hex');

/** A key and CSR made the way a host makes them (openssl), with the given subject CN. */
async function csrFor(cn: string): Promise<string> {
  const key = path.join(root, `${cn}-${Math.random().toString(36).slice(2, 8)}.key`);
  const csr = `${key.slice(0, -4)}.csr`;
  await runner.run(['openssl', 'req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-subj', `/CN=${cn}`, '-out', csr]);
  return csr;
}

/** The PKI's files; its lock file comes and goes with every command (released just after a command returns). */
const pkiSnapshot = (d: string): Promise<Record<string, string>> => snapshot(d, ['.lock']);

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'pki-hostile-'));
  dir = path.join(root, 'pki');
  expect((await pki('init', '--dir', dir, '--key-bits', '2048', '--cn', 'hostile')).code).toBe(0);
  expect((await pki('issue', '--dir', dir, '--name', 'central1', '--role', 'central', '--san', '192.0.2.10')).code).toBe(0);
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('pki under hostile input', () => {
  it('2: a CSR naming an existing central cannot take it over as a worker; its key and certificate stay', async () => {
    const before = await pkiSnapshot(dir);
    const r = await pki('sign-csr', '--dir', dir, '--csr', await csrFor('central1'), '--role', 'worker');
    expectRefused(r, /central1.*already.*central/);
    expect(await pkiSnapshot(dir)).toEqual(before);
    // --name cannot be used to the same end.
    const byName = await pki('sign-csr', '--dir', dir, '--csr', await csrFor('innocent'), '--role', 'worker', '--name', 'central1');
    expectRefused(byName, /central1.*already.*central/);
    expect(await pkiSnapshot(dir)).toEqual(before);
  });

  it('2: a CSR cannot replace a certificate whose key this PKI holds (pki issue), not even for the same role', async () => {
    const before = await pkiSnapshot(dir);
    const r = await pki('sign-csr', '--dir', dir, '--csr', await csrFor('central1'), '--role', 'central');
    expectRefused(r, /central1.*key is kept in this PKI/);
    expect(await pkiSnapshot(dir)).toEqual(before);
  });

  it('2: renewal of a CSR-signed host for the same role still works (the host keeps its key)', async () => {
    expect((await pki('sign-csr', '--dir', dir, '--csr', await csrFor('chassis7'), '--role', 'worker')).code).toBe(0);
    const again = await pki('sign-csr', '--dir', dir, '--csr', await csrFor('chassis7'), '--role', 'worker');
    expect(again.code, again.stderr).toBe(0);
    const entries = (await readIndex(dir)).filter((e) => e.name === 'chassis7');
    expect(entries.map((e) => e.status).sort()).toEqual(['superseded', 'valid']);
    // ...but not as another role.
    expectRefused(await pki('sign-csr', '--dir', dir, '--csr', await csrFor('chassis7'), '--role', 'central'), /chassis7.*already.*worker/);
  });

  it('3: init keeps a CA key it finds without its certificate, and says so', async () => {
    const other = path.join(root, 'half');
    await fs.mkdir(path.join(other, 'ca'), { recursive: true });
    await fs.copyFile(pkiPaths(dir).caKey, pkiPaths(other).caKey);
    const before = await sha(pkiPaths(other).caKey);
    const r = await pki('init', '--dir', other, '--key-bits', '2048');
    expectRefused(r, /ca\.key.*without.*ca\.crt/);
    expect(await sha(pkiPaths(other).caKey)).toBe(before);
  });

  it('4: sign-csr --out never writes into the PKI directory, and refuses before it signs', async () => {
    const before = await pkiSnapshot(dir);
    const indexBefore = (await readIndex(dir)).length;
    for (const target of [pkiPaths(dir).caKey, pkiPaths(dir).key('central1'), path.join(dir, 'index.json'), path.join(dir, 'new.pem')]) {
      const r = await pki('sign-csr', '--dir', dir, '--csr', await csrFor('worker4'), '--role', 'worker', '--out', target);
      expectRefused(r, /--out: .*inside the PKI directory/);
    }
    expect(await pkiSnapshot(dir)).toEqual(before);
    expect((await readIndex(dir)).length).toBe(indexBefore);
  });

  it('4: sign-csr --out through a symlink into the PKI directory is refused too', async () => {
    const link = path.join(root, 'innocent-looking');
    await fs.symlink(path.join(dir, 'ca'), link);
    const before = await pkiSnapshot(dir);
    const r = await pki('sign-csr', '--dir', dir, '--csr', await csrFor('worker5'), '--role', 'worker', '--out', path.join(link, 'ca.key'));
    expectRefused(r, /--out: .*inside the PKI directory/);
    expect(await pkiSnapshot(dir)).toEqual(before);
  });

  it('5: a SAN with a zone ID or an IPv4-mapped IPv6 address is refused with exit 2, nothing issued', async () => {
    const indexBefore = (await readIndex(dir)).length;
    expectRefused(await pki('issue', '--dir', dir, '--name', 'w5', '--role', 'worker', '--san', 'fe80::1%eth0'), /--san\[0\]: .*zone/);
    expectRefused(await pki('issue', '--dir', dir, '--name', 'w6', '--role', 'worker', '--san', '::ffff:1.2.3.4'), /--san\[0\]: .*IPv4-mapped/);
    expect((await readIndex(dir)).length).toBe(indexBefore);
    await expect(fs.stat(pkiPaths(dir).key('w5'))).rejects.toThrow();
  });

  it('7: --dir naming a file, and --out naming a directory, are exit 2 before anything is signed', async () => {
    const file = path.join(root, 'a-file');
    await fs.writeFile(file, 'x');
    expectRefused(await pki('init', '--dir', file), /--dir: .*a-file.*not a directory/);
    expectRefused(await pki('issue', '--dir', file, '--name', 'x', '--role', 'worker'), /--dir: .*a-file.*not a directory/);
    const indexBefore = (await readIndex(dir)).length;
    const r = await pki('sign-csr', '--dir', dir, '--csr', await csrFor('worker8'), '--role', 'worker', '--out', root);
    expectRefused(r, /--out: .*is a directory/);
    expect((await readIndex(dir)).length).toBe(indexBefore);
    await expect(fs.stat(pkiPaths(dir).cert('worker8'))).rejects.toThrow();
  });
});
