/**
 * The GPG key that signs packages and repository metadata. The key file the user gives is read
 * once (bounded reader: a regular file, no symbolic link) and imported into a private GnuPG home
 * (0700, in the system's temp dir, removed afterwards), so the user's own keyrings and agent are
 * never touched and nothing of the secret key reaches the output. The passphrase comes from a
 * file or the environment, never from the command line; gpg reads it from a 0600 file in that
 * home (loopback pinentry), so it is in no argv and no log. Every problem (no such file, not a
 * key, no secret key, an unknown or ambiguous --sign-key-id, a missing or wrong passphrase) is
 * found by a trial signature before anything is built: exit 2 naming the option.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../errors.js';
import { readInputFile, readInputText } from '../input-file.js';
import type { Runner } from '../runner.js';
import { whichTool } from './preflight.js';

/** Where CI systems usually hand over a secret: an environment variable. */
export const PASSPHRASE_ENV = 'OVN_DEPLOY_SIGN_PASSPHRASE';
const GPG_TIMEOUT_MS = 60_000;
const KEY_FILE_LIMIT = 4 * 1024 * 1024;

export interface SigningKeyOptions {
  /** An OpenPGP secret key file (armored or binary), e.g. `gpg --export-secret-keys --armor ID`. */
  keyFile: string;
  /** Fingerprint, long or short key id, or a user id's e-mail; needed when the file holds several keys. */
  keyId?: string;
  passphraseFile?: string;
  env?: NodeJS.ProcessEnv;
}

export interface SigningKey {
  fingerprint: string;
  uid: string;
  /** The private GnuPG home (for rpmsign's _gpg_path). */
  home: string;
  /** gpg's absolute path: rpmsign's default (%__gpg) is not always where gpg is. */
  gpg: string;
  /** Arguments that make gpg non-interactive and read the passphrase from its 0600 file. */
  gpgArgs: string[];
  publicKeyArmored: string;
  dispose(): Promise<void>;
}

interface SecretKey {
  fingerprint: string;
  uids: string[];
  canSign: boolean;
}

/** Secret keys from `gpg --with-colons --list-secret-keys` (pure). */
export function parseSecretKeys(colons: string): SecretKey[] {
  const keys: SecretKey[] = [];
  let current: SecretKey | undefined;
  let wantFpr = false;
  for (const line of colons.split('\n')) {
    const f = line.split(':');
    if (f[0] === 'sec') {
      // Field 12: the key's usable capabilities; an upper-case S means it (or a subkey) can sign.
      current = { fingerprint: '', uids: [], canSign: (f[11] ?? '').includes('S') };
      keys.push(current);
      wantFpr = true;
    } else if (f[0] === 'ssb') wantFpr = false;
    else if (f[0] === 'fpr' && wantFpr && current !== undefined) {
      current.fingerprint = f[9] ?? '';
      wantFpr = false;
    } else if (f[0] === 'uid' && current !== undefined) current.uids.push(unescapeColons(f[9] ?? ''));
  }
  return keys;
}

function unescapeColons(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function describe(k: SecretKey): string {
  return `${k.fingerprint}${k.uids[0] === undefined ? '' : ` (${k.uids[0]})`}`;
}

/** The key `id` names among `keys` (pure): by fingerprint or key id suffix, or a user id's text. */
export function selectKey(keys: readonly SecretKey[], id: string | undefined, keyFile: string): SecretKey {
  if (keys.length === 0) throw new InputError([{ path: '--sign-key', message: `${keyFile} holds no secret key (export one with: gpg --export-secret-keys --armor KEYID > FILE)` }]);
  const list = keys.map(describe).join(', ');
  let found: SecretKey[];
  if (id === undefined) {
    if (keys.length > 1) throw new InputError([{ path: '--sign-key-id', message: `is required: ${keyFile} holds ${keys.length} secret keys (${list})` }]);
    found = [...keys];
  } else {
    const hex = id.replace(/^0x/i, '').replace(/\s+/g, '').toUpperCase();
    found = /^[0-9A-F]{8,40}$/.test(hex) ? keys.filter((k) => k.fingerprint.toUpperCase().endsWith(hex)) : keys.filter((k) => k.uids.some((u) => u.toLowerCase().includes(id.toLowerCase())));
    if (found.length === 0) throw new InputError([{ path: '--sign-key-id', message: `no secret key ${JSON.stringify(id)} in ${keyFile} (it holds: ${list})` }]);
    if (found.length > 1) throw new InputError([{ path: '--sign-key-id', message: `${JSON.stringify(id)} names ${found.length} keys in ${keyFile} (${found.map(describe).join(', ')}); give the fingerprint` }]);
  }
  const key = found[0] as SecretKey;
  if (!key.canSign) throw new InputError([{ path: '--sign-key', message: `key ${describe(key)} in ${keyFile} cannot sign (no signing capability, or expired or revoked)` }]);
  return key;
}

async function passphraseOf(opts: SigningKeyOptions): Promise<string | undefined> {
  if (opts.passphraseFile !== undefined) {
    const text = await readInputText(opts.passphraseFile, { what: 'passphrase file', option: '--sign-passphrase-file', maxBytes: 64 * 1024 });
    // One trailing newline is how editors and `echo` end the file, not part of the passphrase.
    return text.replace(/\r?\n$/, '');
  }
  const fromEnv = (opts.env ?? process.env)[PASSPHRASE_ENV];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

function lastLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .at(-1) ?? ''
  ).trim();
}

/** Imports the key into a private home and proves with a trial signature that it can sign. */
export async function openSigningKey(opts: SigningKeyOptions, runner: Runner): Promise<SigningKey> {
  const bytes = await readInputFile(opts.keyFile, { what: 'OpenPGP secret key file', option: '--sign-key', text: false, maxBytes: KEY_FILE_LIMIT });
  const passphrase = await passphraseOf(opts);
  // Short path: gpg-agent's socket may live in the home and socket paths are limited to 108 bytes.
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'ovn-gpg-'));
  await fs.chmod(home, 0o700);
  const passFile = path.join(home, 'passphrase');
  const gpgArgs = ['--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase-file', passFile];
  const gpg = (args: string[], allowFailure = true) => runner.run(['gpg', '--homedir', home, ...args], { timeoutMs: GPG_TIMEOUT_MS, allowFailure, mutates: true });
  const dispose = async () => {
    // Only the agent of this private home, which our gpg calls started.
    await runner.run(['gpgconf', '--homedir', home, '--kill', 'gpg-agent'], { timeoutMs: GPG_TIMEOUT_MS, allowFailure: true, mutates: true });
    await fs.rm(home, { recursive: true, force: true });
  };
  try {
    await fs.writeFile(passFile, passphrase ?? '', { mode: 0o600 });
    const keyCopy = path.join(home, 'key-to-import');
    await fs.writeFile(keyCopy, bytes, { mode: 0o600 });
    const imported = await gpg([...gpgArgs, '--import', keyCopy]);
    await fs.rm(keyCopy, { force: true });
    if (imported.exitCode !== 0 && !/secret keys imported: [1-9]/.test(imported.stderr)) {
      throw new InputError([{ path: '--sign-key', message: `${opts.keyFile} is not an OpenPGP key file gpg can import (${lastLine(imported.stderr)})` }]);
    }
    const listed = await gpg(['--batch', '--with-colons', '--fixed-list-mode', '--list-secret-keys'], false);
    const key = selectKey(parseSecretKeys(listed.stdout), opts.keyId, opts.keyFile);
    const probe = path.join(home, 'probe');
    await fs.writeFile(probe, 'ovn-deploy signing key check\n');
    const signed = await gpg([...gpgArgs, '--local-user', key.fingerprint, '--detach-sign', '--output', `${probe}.sig`, probe]);
    if (signed.exitCode !== 0) {
      const why = lastLine(signed.stderr);
      if (passphrase === undefined) {
        throw new InputError([{ path: '--sign-passphrase-file', message: `key ${describe(key)} is protected by a passphrase: give it in a file (--sign-passphrase-file FILE) or in ${PASSPHRASE_ENV} (gpg: ${why})` }]);
      }
      const source = opts.passphraseFile === undefined ? PASSPHRASE_ENV : opts.passphraseFile;
      throw new InputError([{ path: opts.passphraseFile === undefined ? PASSPHRASE_ENV : '--sign-passphrase-file', message: `cannot sign with key ${describe(key)} using the passphrase from ${source} (gpg: ${why})` }]);
    }
    const exported = await gpg(['--batch', '--armor', '--export', key.fingerprint], false);
    return { fingerprint: key.fingerprint, uid: key.uids[0] ?? '', home, gpg: whichTool('gpg') ?? 'gpg', gpgArgs, publicKeyArmored: exported.stdout, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
