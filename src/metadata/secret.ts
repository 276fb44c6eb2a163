/**
 * The metadata proxy's shared secret (Neutron <-> Nova): generated once with crypto.randomBytes,
 * kept in a 0600 file, never printed. Callers get the value only to render the agent's 0600
 * fragment or to hand it to a metadata server.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { ExitError } from '../errors.js';
import { readIfExists, writeFileAtomic } from '../fsx.js';

export function generateSecret(): string {
  return randomBytes(32).toString('hex');
}

/** Reads the secret in `file`, creating it (mode 0600) when absent; returns whether it was created. */
export async function ensureSharedSecret(file: string): Promise<{ secret: string; created: boolean }> {
  const have = await readIfExists(file);
  if (have !== undefined) {
    const secret = have.toString('utf8').trim();
    if (secret === '') throw new ExitError(`${file} is empty: remove it to have a new shared secret generated`);
    // A secret someone left readable is fixed rather than trusted as is.
    const mode = (await fs.stat(file)).mode & 0o777;
    if (mode !== 0o600) await fs.chmod(file, 0o600);
    return { secret, created: false };
  }
  const secret = generateSecret();
  await writeFileAtomic(file, `${secret}\n`, 0o600);
  return { secret, created: true };
}
