/**
 * Signed RPMs as cache artifacts of their own, named by the unsigned artifact's hash and the key's
 * fingerprint: a signature carries its creation time, so signing again would give new bytes for
 * the same inputs. Reusing the signed copy keeps a rebuild with unchanged inputs and key a no-op
 * (no file in the output changes) and the manifest's digests stable.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Runner } from '../runner.js';
import { hashOf } from './hash.js';
import type { SigningKey } from './signing-key.js';
import { runLogged } from './step-log.js';
import type { ArtifactStore, StoredArtifact } from './store.js';

const SIGN_TIMEOUT_MS = 10 * 60_000;

export function signedHash(unsigned: string, fingerprint: string): string {
  return hashOf({ signed: unsigned, key: fingerprint });
}

/** `rpmsign --addsign` through the key's private home, the passphrase read by gpg from its file. */
export function rpmsignArgv(key: Pick<SigningKey, 'home' | 'fingerprint' | 'gpg' | 'gpgArgs'>, files: readonly string[]): string[] {
  return [
    'rpmsign',
    '--addsign',
    '--define',
    `__gpg ${key.gpg}`,
    '--define',
    `_gpg_path ${key.home}`,
    '--define',
    `_gpg_name ${key.fingerprint}`,
    '--define',
    '_gpg_digest_algo sha256',
    '--define',
    `_gpg_sign_cmd_extra_args ${key.gpgArgs.join(' ')}`,
    ...files,
  ];
}

export interface SignEnv {
  runner: Runner;
  store: ArtifactStore;
  key: SigningKey;
  tmpDir: string;
  log: string;
}

/** The signed artifact of `a` (from the cache, or signed now and published). */
export async function signedArtifact(a: StoredArtifact, env: SignEnv): Promise<StoredArtifact> {
  const hash = signedHash(a.hash, env.key.fingerprint);
  if (await env.store.has(hash)) return env.store.read(hash);
  const work = path.join(env.tmpDir, `sign-${a.hash.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
  await fs.mkdir(work, { recursive: true });
  try {
    const files = [];
    for (const f of a.files) {
      const p = path.join(work, f.file);
      await fs.copyFile(env.store.filePath(a.hash, f.file), p);
      files.push(p);
    }
    await runLogged(env.runner, rpmsignArgv(env.key, files), { step: `Sign the ${a.name} RPMs`, log: env.log, timeoutMs: SIGN_TIMEOUT_MS });
    const byName = new Map(a.files.map((f) => [f.file, f]));
    return await env.store.publish(
      { ...a, hash, details: { ...a.details, signature: { fingerprint: env.key.fingerprint, unsignedHash: a.hash } } },
      files,
      async (p) => {
        const rpm = byName.get(path.basename(p))?.rpm;
        return rpm === undefined ? {} : { rpm };
      },
    );
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
