/** The human-readable site status: a pure function of SiteStatus (the CLI prints exactly what --json says). */
import type { SiteStatus } from './judge.js';
import { table } from '../ui/table.js';

export function renderSiteStatus(s: SiteStatus): string {
  const out = [`Site ${s.site}: ${s.verdict.toUpperCase()}`, '', ...renderHostSections(s)];
  if (s.problems.length > 0) out.push('', 'Problems:', ...s.problems.map((p) => `  - ${p}`));
  return `${out.join('\n')}\n`;
}

/** The hosts, their daemons, the clusters, the chassis and the metadata agents: what site status and the sandbox's status both show. */
export function renderHostSections(s: Pick<SiteStatus, 'hosts' | 'raft' | 'chassis' | 'metadataAgents'>): string[] {
  const out: string[] = [];
  out.push(
    ...table(
      ['HOST', 'ROLES', 'REACHABLE', 'APPLY', 'HEALTH'],
      s.hosts.map((h) => {
        const bad = h.health.filter((c) => !c.ok);
        const health = !h.reachable ? `- (${h.error ?? ''})` : h.error !== undefined ? `FAIL: ${h.error}` : bad.length === 0 ? `ok (${h.health.length} checks)` : `FAIL: ${bad.map((c) => `${c.check}: ${c.detail}`).join('; ')}`;
        return [h.name, h.roles.join(','), h.reachable ? 'yes' : 'NO', h.applyStatus ?? '-', health];
      }),
    ),
  );
  const daemons = s.hosts.flatMap((h) => h.daemons.map((d) => [d.name, h.name, d.pid === null ? '-' : String(d.pid), String(d.restarts), `${d.healthy ? 'ok' : 'FAIL'}: ${d.detail}`]));
  if (daemons.length > 0) out.push('', ...table(['DAEMON', 'HOST', 'PID', 'RESTARTS', 'HEALTH'], daemons));
  for (const db of s.raft) {
    out.push('');
    const leader = db.leader === undefined ? 'NO LEADER' : `leader ${db.leader.host ?? '?'} (${db.leader.sid})`;
    out.push(`${db.db}: ${leader}, term ${db.term ?? '-'}, cluster ${db.clusterId ?? '-'}, ${db.members.filter((m) => m.state === 'ok').length}/${db.members.length} members ok`);
    out.push(
      ...table(
        ['  MEMBER', 'SID', 'ADDRESS', 'ROLE', 'CONNECTED', 'STATE'],
        db.members.map((m) => [`  ${m.host ?? '?'}`, m.sid ?? '-', m.address, m.role ?? '-', m.connected ? 'yes' : 'NO', m.state === 'ok' ? 'ok' : `${m.state.toUpperCase()}: ${m.detail}`]),
      ),
    );
  }
  out.push('');
  out.push(...table(['CHASSIS', 'HOSTNAME', 'ENCAP IP', 'REGISTERED'], s.chassis.map((c) => [c.name, c.hostname ?? '-', c.encapIp ?? '-', c.registered ? (c.expected ? 'yes' : 'yes (not in the inventory)') : 'NO'])));
  if (s.metadataAgents.length > 0) {
    out.push('');
    out.push(
      ...table(
        ['METADATA AGENT', 'HOST', 'RUNS AS', 'REGISTERED', 'HEALTH'],
        s.metadataAgents.map((a) => [a.chassis, a.host, a.runsAs, a.registered === undefined ? '?' : a.registered ? 'yes' : 'NO', `${a.healthy ? 'ok' : 'FAIL'}: ${a.detail}`]),
      ),
    );
  }
  return out;
}
