/**
 * A dnf repository around the signed RPMs of an output directory: repodata from createrepo_c
 * over exactly the RPMs this build wrote (a --pkglist, not whatever else lies there),
 * repomd.xml detached-signed with the same key (repomd.xml.asc, for repo_gpgcheck) and the public
 * key beside it (repomd.xml.key, for gpgkey= and `rpm --import`). The new repodata is made in a
 * staging folder and swapped in with renames, so a reader sees the old or the new metadata.
 * Nothing is world-writable.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Runner } from '../runner.js';
import type { SigningKey } from './signing-key.js';
import { runLogged } from './step-log.js';

const CREATEREPO_TIMEOUT_MS = 10 * 60_000;

export interface RepositoryReport {
  dir: string;
  repomd: string;
  signature: string;
  publicKey: string;
}

export function repositoryPaths(dir: string) {
  const repodata = path.join(dir, 'repodata');
  return { repodata, repomd: path.join(repodata, 'repomd.xml'), signature: path.join(repodata, 'repomd.xml.asc'), publicKey: path.join(repodata, 'repomd.xml.key') };
}

async function chmodTree(dir: string): Promise<void> {
  await fs.chmod(dir, 0o755);
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chmodTree(p);
    else if (e.isFile()) await fs.chmod(p, 0o644);
  }
}

/** Writes `dir`/repodata for `rpms` (file names in `dir`), signed with `key`. */
export async function writeRepository(dir: string, rpms: readonly string[], key: SigningKey, runner: Runner, log: string): Promise<RepositoryReport> {
  const step = 'Write the signed dnf repository';
  const tag = randomBytes(4).toString('hex');
  const staging = path.join(dir, `.repo-${tag}`);
  const list = path.join(key.home, `pkglist-${tag}`);
  await fs.mkdir(staging, { recursive: true, mode: 0o755 });
  try {
    await fs.writeFile(list, `${[...rpms].sort().join('\n')}\n`);
    // --outputdir keeps createrepo_c's own staging out of `dir`; --location-prefix is not needed
    // because the RPMs sit beside repodata/.
    await runLogged(runner, ['createrepo_c', '--quiet', '--no-database', '--pkglist', list, '--outputdir', staging, dir], { step, log, timeoutMs: CREATEREPO_TIMEOUT_MS });
    const fresh = repositoryPaths(staging);
    await runLogged(runner, ['gpg', '--homedir', key.home, ...key.gpgArgs, '--local-user', key.fingerprint, '--armor', '--detach-sign', '--output', fresh.signature, fresh.repomd], { step, log, timeoutMs: CREATEREPO_TIMEOUT_MS });
    await fs.writeFile(fresh.publicKey, key.publicKeyArmored);
    await chmodTree(fresh.repodata);
    const final = repositoryPaths(dir);
    const old = path.join(dir, `.repodata-old-${tag}`);
    const hadOld = await fs.rename(final.repodata, old).then(
      () => true,
      () => false,
    );
    await fs.rename(fresh.repodata, final.repodata);
    if (hadOld) await fs.rm(old, { recursive: true, force: true });
    return { dir, repomd: final.repomd, signature: final.signature, publicKey: final.publicKey };
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
    await fs.rm(list, { force: true });
  }
}
