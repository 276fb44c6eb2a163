/** The result table `deploy` prints and the JSON `deploy --json` prints: pure functions of the result. */
import type { HostResult } from './host.js';
import type { DeployResult } from './run.js';
import { table } from '../ui/table.js';

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export function deploySummaryLines(r: DeployResult): string[] {
  const failed = r.hosts.filter((h) => h.status !== 'converged');
  const lines = table(
    ['HOST', 'ROLES', 'STATUS', 'CHANGES', 'CERT', 'TIME', 'DETAIL'],
    r.hosts.map((h) => [h.host, h.roles.join(','), h.status.toUpperCase(), String(h.changes.length), h.renewed ? 'renewed' : h.signed ? 'signed' : '-', secs(h.durationMs), (h.error ?? '').split('\n')[0] ?? '']),
  );
  lines.push('');
  const renewed = r.hosts.filter((h) => h.renewed).map((h) => h.host);
  if (renewed.length > 0) lines.push(`new certificates (new key, new serial): ${renewed.join(', ')}`);
  lines.push(
    failed.length === 0
      ? `site ${r.site}: ${r.hosts.length} host${r.hosts.length === 1 ? '' : 's'} converged in ${secs(r.durationMs)}`
      : `site ${r.site}: ${failed.length} of ${r.hosts.length} host${r.hosts.length === 1 ? '' : 's'} not converged (${failed.map((h) => h.host).join(', ')}) in ${secs(r.durationMs)}; fix and run deploy again`,
  );
  return lines;
}

export interface DeployJson {
  site: string;
  ok: boolean;
  durationMs: number;
  hosts: (Omit<HostResult, 'changes'> & { changeCount: number; changes: HostResult['changes'] })[];
}

export function deployJson(r: DeployResult): DeployJson {
  return { site: r.site, ok: r.ok, durationMs: r.durationMs, hosts: r.hosts.map((h) => ({ ...h, changeCount: h.changes.length })) };
}
