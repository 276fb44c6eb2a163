/**
 * Hosts revoked by `certs revoke`: the PKI signs nothing for them (no CSR from a later deploy or
 * `up`, no `certs rotate`, no `pki issue --host`) until `certs reinstate HOST`. Revoking its
 * certificates alone would not be enough: the host's next apply would ask for a new one, and
 * deploy would sign it. Kept in PKI/revoked-hosts.json, written under the PKI lock.
 */
import path from 'node:path';
import { z } from 'zod';
import { readJsonFile, writeFileAtomic } from '../fsx.js';
import { inputError, type InputError } from '../errors.js';
import { withPkiLock } from './lock.js';
import { REVOCATION_REASONS } from './types.js';

const entrySchema = z.strictObject({ revokedAt: z.string(), reason: z.enum(Object.keys(REVOCATION_REASONS) as [string, ...string[]]).optional() });
const fileSchema = z.strictObject({ version: z.literal(1), hosts: z.record(z.string().max(253), entrySchema) });
export type RevokedHost = z.output<typeof entrySchema>;

export const revokedHostsFile = (pkiDir: string): string => path.join(pkiDir, 'revoked-hosts.json');

export async function readRevokedHosts(pkiDir: string): Promise<Record<string, RevokedHost>> {
  return (await readJsonFile(revokedHostsFile(pkiDir), fileSchema))?.hosts ?? {};
}

async function save(pkiDir: string, hosts: Record<string, RevokedHost>): Promise<void> {
  await writeFileAtomic(revokedHostsFile(pkiDir), `${JSON.stringify({ version: 1, hosts }, null, 2)}\n`, 0o644);
}

export async function markHostRevoked(pkiDir: string, host: string, opts: { reason?: string; now?: Date } = {}): Promise<void> {
  await withPkiLock(pkiDir, async () => {
    const hosts = await readRevokedHosts(pkiDir);
    hosts[host] = { revokedAt: (opts.now ?? new Date()).toISOString(), ...(opts.reason === undefined ? {} : { reason: opts.reason }) };
    await save(pkiDir, hosts);
  });
}

/** Removes the host from the list; returns what it was, or undefined when it was not revoked. */
export async function reinstateHost(pkiDir: string, host: string): Promise<RevokedHost | undefined> {
  // Not revoked (or no PKI at all): nothing to lock or write.
  if ((await readRevokedHosts(pkiDir))[host] === undefined) return undefined;
  return withPkiLock(pkiDir, async () => {
    const hosts = await readRevokedHosts(pkiDir);
    const was = hosts[host];
    if (was === undefined) return undefined;
    delete hosts[host];
    await save(pkiDir, hosts);
    return was;
  });
}

/** Why nothing may be signed for `host` (inside the PKI lock, from the list read there), or undefined. */
export function revokedHostRefusal(pkiDir: string, host: string, revoked: Record<string, RevokedHost>): InputError | undefined {
  const r = revoked[host];
  if (r === undefined) return undefined;
  return inputError(
    `host ${host} was revoked (\`certs revoke\`, ${r.revokedAt}${r.reason === undefined ? '' : `, ${r.reason}`}): the PKI in ${pkiDir} signs nothing for it until \`ovn-deploy certs reinstate ${host}\``,
    'host',
  );
}
