/**
 * Bad signing input for `build rpms --sign-key`: each mistake is exit 2 naming the option, no
 * stack trace, found before anything is built or written (no output or cache directory appears)
 * and without leaving the private GnuPG home behind. Keys are made here with real gpg (ed25519:
 * instant) in a GnuPG home under this test's temp dir; no RPM is built.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSPHRASE_ENV, openSigningKey, parseSecretKeys, selectKey } from '../src/packaging/signing-key.js';
import { ZxRunner } from '../src/runner.js';
import { runCli } from './helpers/cli.js';
import { fakeOvsTree, randomName, tmpDir } from './helpers/build-fixtures.js';
import { expectRefused } from './helpers/refusals.js';

const runner = new ZxRunner();
let root: string;
let home: string;
let ovs: string;
const passphrase = `pw ${randomName('')} with spaces`;
const keys = { plain: '', protected: '', two: '', publicOnly: '', garbage: '', passFile: '', wrongPassFile: '' };
const fpr = { a: '', b: '', c: '' };

const gpg = (args: string[]) => runner.run(['gpg', '--homedir', home, '--batch', '--pinentry-mode', 'loopback', ...args], { timeoutMs: 60_000 });

async function genKey(uid: string, passFile: string): Promise<string> {
  await gpg(['--passphrase-file', passFile, '--quick-gen-key', uid, 'ed25519', 'sign', '1d']);
  const colons = (await gpg(['--with-colons', '--list-secret-keys', uid])).stdout;
  return parseSecretKeys(colons)[0]?.fingerprint as string;
}

async function ourGpgHomes(): Promise<string[]> {
  return (await fs.readdir(os.tmpdir())).filter((d) => d.startsWith('ovn-gpg-'));
}

beforeAll(async () => {
  root = await tmpDir('sign-input');
  home = path.join(root, 'g');
  await fs.mkdir(home, { mode: 0o700 });
  const empty = path.join(root, 'empty-pass');
  await fs.writeFile(empty, '');
  keys.passFile = path.join(root, 'pass');
  await fs.writeFile(keys.passFile, `${passphrase}\n`, { mode: 0o600 });
  keys.wrongPassFile = path.join(root, 'wrong-pass');
  await fs.writeFile(keys.wrongPassFile, 'not the passphrase\n', { mode: 0o600 });
  fpr.a = await genKey('Plain Signer <plain@example.invalid>', empty);
  fpr.b = await genKey('Protected Signer <protected@example.invalid>', keys.passFile);
  fpr.c = await genKey('Other Signer <other@example.invalid>', empty);
  const exportTo = async (file: string, args: string[]) => fs.writeFile(file, (await gpg(['--passphrase-file', keys.passFile, '--armor', ...args])).stdout);
  keys.plain = path.join(root, 'plain.asc');
  await exportTo(keys.plain, ['--export-secret-keys', fpr.a]);
  keys.protected = path.join(root, 'protected.asc');
  await exportTo(keys.protected, ['--export-secret-keys', fpr.b]);
  keys.two = path.join(root, 'two.asc');
  await exportTo(keys.two, ['--export-secret-keys', fpr.a, fpr.c]);
  keys.publicOnly = path.join(root, 'public.asc');
  await exportTo(keys.publicOnly, ['--export', fpr.a]);
  keys.garbage = path.join(root, 'garbage.asc');
  await fs.writeFile(keys.garbage, 'this is not a key\n');
  ovs = await fakeOvsTree(path.join(root, 'ovs'), '3.1.0');
}, 60_000);

afterAll(async () => {
  await runner.run(['gpgconf', '--homedir', home, '--kill', 'gpg-agent'], { allowFailure: true, timeoutMs: 30_000 });
  await fs.rm(root, { recursive: true, force: true });
});

describe('build rpms --sign-key: bad input', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['a missing key file', () => ['--sign-key', path.join(root, 'nope.asc')], /nope\.asc: --sign-key: cannot read the OpenPGP secret key file: no such file/],
    ['a directory', () => ['--sign-key', root], /--sign-key: .*is a directory/],
    ['a file that is no key', () => ['--sign-key', keys.garbage], /--sign-key: .*garbage\.asc is not an OpenPGP key file gpg can import/],
    ['a public key only', () => ['--sign-key', keys.publicOnly], /--sign-key: .*public\.asc holds no secret key \(export one with: gpg --export-secret-keys/],
    ['two keys and no --sign-key-id', () => ['--sign-key', keys.two], /--sign-key-id: is required: .*two\.asc holds 2 secret keys/],
    ['a --sign-key-id the file does not hold', () => ['--sign-key', keys.two, '--sign-key-id', '0xDEADBEEFDEADBEEF'], /--sign-key-id: no secret key "0xDEADBEEFDEADBEEF" in .*two\.asc \(it holds: [0-9A-F]{40} \(Plain Signer/],
    ['a protected key and no passphrase', () => ['--sign-key', keys.protected], /--sign-passphrase-file: key [0-9A-F]{40} \(Protected Signer <protected@example\.invalid>\) is protected by a passphrase: give it in a file \(--sign-passphrase-file FILE\) or in OVN_DEPLOY_SIGN_PASSPHRASE/],
    ['a wrong passphrase', () => ['--sign-key', keys.protected, '--sign-passphrase-file', keys.wrongPassFile], /--sign-passphrase-file: cannot sign with key [0-9A-F]{40} .* using the passphrase from .*wrong-pass/],
    ['a missing passphrase file', () => ['--sign-key', keys.protected, '--sign-passphrase-file', path.join(root, 'no-pass')], /no-pass: --sign-passphrase-file: cannot read the passphrase file: no such file/],
    ['--sign-key-id without --sign-key', () => ['--sign-key-id', fpr.a], /--sign-key-id: needs --sign-key/],
    ['--sign-passphrase-file without --sign-key', () => ['--sign-passphrase-file', keys.passFile], /--sign-passphrase-file: needs --sign-key/],
  ];
  it.each(cases)('%s: exit 2 naming the option, nothing written', async (_name, args, message) => {
    const before = await ourGpgHomes();
    const tag = randomName('');
    const out = path.join(root, `out-${tag}`);
    const cache = path.join(root, `cache-${tag}`);
    const r = await runCli(['build', 'rpms', '--ovs-source', ovs, '--out', out, '--cache-dir', cache, '--no-ccache', ...args()]);
    expectRefused(r, message);
    expect(r.stderr).not.toContain(passphrase);
    expect(await fs.stat(out).catch(() => undefined)).toBeUndefined();
    expect(await fs.stat(cache).catch(() => undefined)).toBeUndefined();
    expect((await ourGpgHomes()).filter((d) => !before.includes(d))).toEqual([]);
  });
});

describe('the signing key', () => {
  it('opens a protected key with the passphrase from the environment or a file, picks a key by e-mail, and removes its home', async () => {
    const viaEnv = await openSigningKey({ keyFile: keys.protected, env: { [PASSPHRASE_ENV]: passphrase } }, runner);
    const viaFile = await openSigningKey({ keyFile: keys.protected, passphraseFile: keys.passFile }, runner);
    const byMail = await openSigningKey({ keyFile: keys.two, keyId: 'other@example.invalid' }, runner);
    try {
      expect([viaEnv.fingerprint, viaFile.fingerprint, byMail.fingerprint]).toEqual([fpr.b, fpr.b, fpr.c]);
      expect(viaEnv.publicKeyArmored).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
      expect(viaEnv.publicKeyArmored).not.toContain('PRIVATE');
      expect((await fs.stat(viaEnv.home)).mode & 0o777).toBe(0o700);
      // gpg reads the passphrase from a 0600 file; it is in no argument.
      expect(viaEnv.gpgArgs.join(' ')).not.toContain(passphrase);
      expect((await fs.stat(path.join(viaEnv.home, 'passphrase'))).mode & 0o777).toBe(0o600);
    } finally {
      for (const k of [viaEnv, viaFile, byMail]) await k.dispose();
    }
    for (const k of [viaEnv, viaFile, byMail]) expect(await fs.stat(k.home).catch(() => undefined)).toBeUndefined();
  }, 60_000);

  it('selectKey matches fingerprints and key ids by suffix, e-mails by text, and refuses a key that cannot sign', () => {
    const ks = [
      { fingerprint: 'AAAA1111BBBB2222CCCC3333DDDD4444EEEE5555', uids: ['A <a@x.invalid>'], canSign: true },
      { fingerprint: 'FFFF6666777788889999000011112222EEEE5555', uids: ['B <b@x.invalid>'], canSign: false },
    ];
    expect(selectKey(ks, 'dddd4444eeee5555', 'k').fingerprint).toBe(ks[0]?.fingerprint);
    expect(selectKey(ks, '0xCCCC3333DDDD4444EEEE5555', 'k').fingerprint).toBe(ks[0]?.fingerprint);
    expect(selectKey(ks, 'a@x.invalid', 'k').fingerprint).toBe(ks[0]?.fingerprint);
    expect(() => selectKey(ks, 'EEEE5555', 'k')).toThrow(/names 2 keys/);
    expect(() => selectKey(ks, 'b@x.invalid', 'k')).toThrow(/--sign-key: key FFFF.* cannot sign/);
  });
});
