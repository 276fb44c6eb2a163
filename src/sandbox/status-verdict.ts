/**
 * The status verdict and table: pure functions of a collected StatusReport, so they are tested
 * on recorded reports and the CLI prints exactly what `--json` says.
 */
import { datapathLabel } from './datapath.js';
import type { StatusReport } from './status.js';
import { table } from '../ui/table.js';

/** Pure: fills `problems` and `healthy` from the collected data. */
export function judge(r: StatusReport): StatusReport {
  const problems: string[] = [];
  if (r.phase !== 'up') problems.push('the last `up` did not finish');
  for (const d of r.daemons) if (!d.healthy) problems.push(`${d.name}: ${d.detail}`);
  for (const h of r.hosts) {
    if (h.status === 'unreachable') problems.push(`host ${h.name}: its health checks did not run (${h.error ?? 'unknown'})`);
    for (const c of h.health) if (!c.ok) problems.push(`host ${h.name}: ${c.check}: ${c.detail}`);
  }
  for (const db of r.raft) problems.push(...db.problems);
  for (const [db, t] of Object.entries(r.tls)) if (!t.reachable) problems.push(`${db.toUpperCase()} not reachable through TLS at ${t.endpoint}: ${t.error ?? 'unknown error'}`);
  for (const c of r.chassis) {
    if (c.expected && !c.registered) problems.push(`chassis ${c.name} not registered in the SB`);
    if (!c.expected) problems.push(`unexpected chassis ${c.name} in the SB`);
  }
  for (const p of r.ports) {
    if (!p.up) problems.push(`port ${p.name} is not up`);
    if (p.chassis !== p.expectedChassis) problems.push(`port ${p.name} bound to ${p.chassis ?? 'no chassis'}, expected ${p.expectedChassis}`);
    if (p.iface === 'no-carrier') problems.push(`${p.name}'s interface has no carrier (its tap died with a restarted ovs-vswitchd): run up to rebind it`);
    if (p.iface === 'missing') problems.push(`${p.name}'s interface is missing from its namespace`);
  }
  for (const a of r.metadataAgents ?? []) if (!a.healthy) problems.push(`metadata agent of ${a.chassis}: ${a.detail}`);
  for (const c of r.certificates) if (c.status === 'expired') problems.push(`certificate ${c.name} expired on ${c.notAfter}`);
  if (r.crl !== null && r.crl.daysLeft < 0) problems.push(`the CRL expired on ${r.crl.nextUpdate}: stunnel rejects every client`);
  return { ...r, problems, healthy: problems.length === 0 };
}

/** Pure: the human-readable status. */
export function renderStatusTable(r: StatusReport): string {
  const out: string[] = [];
  out.push(`Sandbox ${r.id} in ${r.stateDir}: ${r.healthy ? 'HEALTHY' : 'UNHEALTHY'}`);
  out.push(`  datapath ${datapathLabel(r.datapath)}, supervisor ${r.supervisor}, PKI ${r.pkiDir}`);
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
  out.push('');
  out.push(...table(['HOST', 'NAMESPACE', 'APPLY CHECK', 'HEALTH'], r.hosts.map((h) => [h.name, h.netns, h.status, `${h.health.filter((c) => c.ok).length}/${h.health.length} checks ok`])), '');
  out.push(...table(['DAEMON', 'NODE', 'PID', 'RESTARTS', 'HEALTH'], r.daemons.map((d) => [d.name, d.node, d.pid === null ? '-' : String(d.pid), String(d.restarts), `${d.healthy ? 'ok' : 'FAIL'}: ${d.detail}`])));
  out.push('');
  out.push(
    ...r.raft.map((db) => {
      const ok = db.members.filter((m) => m.state === 'ok').length;
      return `${db.db}: ${db.leader === undefined ? 'NO LEADER' : `leader ${db.leader.host ?? '?'}`}, term ${db.term ?? '-'}, ${ok}/${db.members.length} members ok`;
    }),
    '',
  );
  out.push(...table(['CHASSIS', 'ENCAP IP', 'REGISTERED'], r.chassis.map((c) => [c.name, c.encapIp ?? '-', c.registered ? (c.expected ? 'yes' : 'yes (unexpected)') : 'NO'])));
  out.push('');
  out.push(...table(['PORT', 'CHASSIS', 'EXPECTED', 'UP', 'VM INTERFACE'], r.ports.map((p) => [p.name, p.chassis ?? '-', p.expectedChassis, p.up ? 'yes' : 'NO', p.iface])));
  out.push('');
  if (r.metadataAgents !== undefined) {
    const rows = r.metadataAgents.map((a) => [a.chassis, a.runsAs, a.pid === null ? '-' : String(a.pid), a.registered === undefined ? '?' : a.registered ? 'yes' : 'NO', `${a.healthy ? 'ok' : 'FAIL'}: ${a.detail}`]);
    out.push(...table(['METADATA AGENT', 'RUNS AS', 'PID', 'REGISTERED', 'HEALTH'], rows));
    out.push('');
  }
  out.push(
    ...table(
      ['CERTIFICATE', 'ROLE', 'EXPIRES', 'DAYS LEFT', 'STATUS'],
      r.certificates.map((c) => [c.name, c.role, c.notAfter.slice(0, 10), String(c.daysLeft), `${c.status}${c.due ? ' (due for renewal)' : ''}`]),
    ),
  );
  if (r.crl !== null) out.push(`CRL next update ${r.crl.nextUpdate.slice(0, 10)} (${r.crl.daysLeft} days)`);
  if (r.problems.length > 0) {
    out.push('');
    out.push('Problems:');
    for (const p of r.problems) out.push(`  - ${p}`);
  }
  return `${out.join('\n')}\n`;
}
