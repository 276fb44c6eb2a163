/**
 * The status verdict and table: pure functions of a collected StatusReport, so they are tested
 * on recorded reports and the CLI prints exactly what `--json` says.
 */
import { datapathLabel } from './datapath.js';
import { agentProblems, chassisProblems, hostProblems } from '../site-status/judge.js';
import { renderHostSections } from '../site-status/render.js';
import type { StatusReport } from './status.js';
import { table } from '../ui/table.js';

/**
 * Pure: fills `problems` and `healthy` from the collected data: the site's problems of its hosts,
 * clusters and chassis (site-status, worded as for any site), then what only the sandbox checks.
 */
export function judge(r: StatusReport): StatusReport {
  const problems: string[] = [];
  if (r.phase !== 'up') problems.push('the last `up` did not finish');
  problems.push(...hostProblems(r.hosts), ...r.raft.flatMap((db) => db.problems), ...chassisProblems(r.chassis), ...agentProblems(r.metadataAgents ?? [], r.hosts));
  // A chassis no host of this sandbox has: a worker a larger sandbox had, which the next `up` removes.
  for (const c of r.chassis) if (!c.expected) problems.push(`unexpected chassis ${c.name} in the SB`);
  for (const [db, t] of Object.entries(r.tls)) if (!t.reachable) problems.push(`${db.toUpperCase()} not reachable through TLS at ${t.endpoint}: ${t.error ?? 'unknown error'}`);
  for (const p of r.ports) {
    if (!p.up) problems.push(`port ${p.name} is not up`);
    if (p.chassis !== p.expectedChassis) problems.push(`port ${p.name} bound to ${p.chassis ?? 'no chassis'}, expected ${p.expectedChassis}`);
    if (p.iface === 'no-carrier') problems.push(`${p.name}'s interface has no carrier (its tap died with a restarted ovs-vswitchd): run up to rebind it`);
    if (p.iface === 'missing') problems.push(`${p.name}'s interface is missing from its namespace`);
  }
  for (const c of r.certificates) if (c.status === 'expired') problems.push(`certificate ${c.name} expired on ${c.notAfter}`);
  if (r.crl !== null && r.crl.daysLeft < 0) problems.push(`the CRL expired on ${r.crl.nextUpdate}: stunnel rejects every client`);
  return { ...r, problems, healthy: problems.length === 0 };
}

/** Pure: the human-readable status: the sandbox's TLS view, the site's sections of its hosts, then its VMs and certificates. */
export function renderStatusTable(r: StatusReport): string {
  const out: string[] = [];
  out.push(`Sandbox ${r.id} in ${r.stateDir}: ${r.healthy ? 'HEALTHY' : 'UNHEALTHY'}`);
  out.push(`  datapath ${datapathLabel(r.datapath)}, supervisor ${r.supervisor}, PKI ${r.pkiDir}`);
  out.push(`  namespaces: ${r.hosts.map((h) => `${h.name} ${h.netns}`).join(', ')}`);
  out.push('');
  out.push(
    ...table(
      ['DATABASE', 'ENDPOINT', 'FROM', 'THROUGH TLS'],
      (['nb', 'sb'] as const).map((db) => {
        const t = r.tls[db];
        return [db.toUpperCase(), t.endpoint, t.from, t.reachable ? `yes (${[t.protocol, t.cipher].filter((x) => x !== null).join(' ') || 'TLS'})` : `NO: ${t.error ?? ''}`];
      }),
    ),
  );
  out.push('', ...renderHostSections({ ...r, metadataAgents: r.metadataAgents ?? [] }), '');
  out.push(...table(['PORT', 'CHASSIS', 'EXPECTED', 'UP', 'VM INTERFACE'], r.ports.map((p) => [p.name, p.chassis ?? '-', p.expectedChassis, p.up ? 'yes' : 'NO', p.iface])));
  out.push('');
  out.push(
    ...table(
      ['CERTIFICATE', 'ROLE', 'EXPIRES', 'DAYS LEFT', 'STATUS'],
      r.certificates.map((c) => [c.name, c.role, c.notAfter.slice(0, 10), String(c.daysLeft), `${c.status}${c.due ? ' (due for renewal)' : ''}`]),
    ),
  );
  if (r.crl !== null) out.push(`CRL next update ${r.crl.nextUpdate.slice(0, 10)} (${r.crl.daysLeft} days)`);
  if (r.problems.length > 0) out.push('', 'Problems:', ...r.problems.map((p) => `  - ${p}`));
  return `${out.join('\n')}\n`;
}
