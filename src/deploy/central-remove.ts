/** `central remove`'s admin side: run `central leave-local` on the central over SSH and read its report. */
import { ExitError, inputError } from '../errors.js';
import type { Inventory } from '../inventory/types.js';
import type { LeaveReport } from './central-leave.js';
import { remote, type Connect } from './remote.js';

export async function removeCentral(inv: Inventory, name: string, connect: Connect): Promise<LeaveReport & { host: string }> {
  const host = inv.hosts.find((h) => h.name === name);
  if (host === undefined) throw inputError(`no host ${JSON.stringify(name)} in the inventory`, 'HOST');
  if (!host.roles.includes('central')) throw inputError(`${name} is not a central in the inventory`, 'HOST');
  const centrals = inv.hosts.filter((h) => h.roles.includes('central'));
  if (centrals.length < 2) throw inputError(`${name} is the only central: removing it would remove the databases`, 'HOST');
  const r = connect(host);
  try {
    const why = await r.unreachableReason();
    if (why !== undefined) throw new ExitError(`${name} is unreachable (${why}): it cannot leave the cluster cleanly`, 1);
    const res = await r.run(['node', remote.cli, 'central', 'leave-local', '--json'], { allowFailure: true, timeoutMs: 180_000 });
    if (res.exitCode !== 0) throw new ExitError(`central leave-local on ${name} exited ${res.exitCode}: ${res.stderr.trim().split('\n').slice(-4).join('\n')}`, 1);
    return { host: name, ...(JSON.parse(res.stdout) as LeaveReport) };
  } finally {
    await r.close().catch(() => undefined);
  }
}
