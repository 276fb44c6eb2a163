/**
 * Site status verdicts: pure functions over what was collected (host reachability, apply --check
 * health, every reachable central's cluster/status, the SB chassis), tested on recorded data.
 */
import type { RaftStatus } from '../health/cluster-status.js';
import type { DaemonView } from './daemons.js';
import type { ExpectedMember, RaftDbName } from './expected.js';
import type { MetadataAgentView } from './metadata.js';

export interface HostHealth {
  name: string;
  roles: string[];
  reachable: boolean;
  /** Why the host is unreachable or its check failed to run. */
  error?: string;
  /** apply --check: converged / unhealthy / needs-certificate. */
  applyStatus?: string;
  /** `service`: the service the check is about (absent: the host's, or a host of an older version). */
  health: { check: string; ok: boolean; detail: string; service?: string }[];
  /** Its daemons, from the same check (empty when the check did not run). */
  daemons: DaemonView[];
}

/** One central's answer to cluster/status for a DB. */
export interface RaftReport {
  host: string;
  status?: RaftStatus;
  error?: string;
}

export interface RaftMemberView {
  /** Inventory host the member's address belongs to; undefined for a stranger. */
  host: string | undefined;
  address: string;
  sid: string | undefined;
  /** In the cluster's server list (as the leader, or else any reporter, sees it). */
  inCluster: boolean;
  /** We read the member's own cluster/status. */
  reporting: boolean;
  role: string | undefined;
  status: string | undefined;
  term: number | undefined;
  /** Connected to the leader (the leader's view), or to the reporter when there is no leader. */
  connected: boolean;
  state: 'ok' | 'missing' | 'disconnected' | 'not-a-member' | 'unknown-member' | 'not-in-cluster';
  detail: string;
}

export interface RaftDbView {
  db: RaftDbName;
  leader: { sid: string; host: string | undefined } | undefined;
  term: number | undefined;
  clusterId: string | undefined;
  members: RaftMemberView[];
  problems: string[];
}

export function judgeRaft(db: RaftDbName, expected: readonly ExpectedMember[], reports: readonly RaftReport[], unreachable: ReadonlyMap<string, string>): RaftDbView {
  const problems: string[] = [];
  const ok = reports.filter((r): r is RaftReport & { status: RaftStatus } => r.status !== undefined);
  const hostOfAddress = new Map(expected.map((m) => [m.address, m.host]));
  const term = ok.length === 0 ? undefined : Math.max(...ok.map((r) => r.status.term));
  const current = ok.filter((r) => r.status.term === term);
  const leaders = [...new Set(current.map((r) => r.status.leader).filter((l): l is string => l !== undefined))];
  if (leaders.length > 1) problems.push(`${db}: members disagree on the leader in term ${term}: ${leaders.join(', ')}`);
  const leaderSid = leaders.length === 1 ? leaders[0] : undefined;
  const leaderReport = ok.find((r) => r.status.serverId === leaderSid);
  const clusterIds = [...new Set(ok.map((r) => r.status.clusterId))];
  if (clusterIds.length > 1) problems.push(`${db}: centrals are in different clusters (${clusterIds.join(', ')})`);

  // The authoritative member list: the leader's, else the union of what the members report.
  const view = leaderReport ?? ok[0];
  const servers = leaderReport?.status.servers ?? ok.flatMap((r) => r.status.servers);
  const byAddress = new Map<string, (typeof servers)[number]>();
  for (const s of servers) if (!byAddress.has(s.address)) byAddress.set(s.address, s);
  const leaderAddress = leaderReport?.status.address ?? [...byAddress.values()].find((s) => s.sid === leaderSid)?.address;
  if (ok.length > 0 && leaderSid === undefined) problems.push(`${db}: no leader (${ok.map((r) => `${r.host}: ${r.status.role}, ${r.status.status}`).join('; ')})`);

  const addresses = [...new Set([...expected.map((m) => m.address), ...byAddress.keys()])];
  const members = addresses.map((address): RaftMemberView => {
    const host = hostOfAddress.get(address);
    const server = byAddress.get(address);
    const own = ok.find((r) => r.host === host)?.status;
    const failed = reports.find((r) => r.host === host && r.status === undefined);
    // The leader's view when there is a leader (it talks to every member); else any other member's.
    const connected =
      leaderReport !== undefined
        ? (leaderReport.status.servers.find((x) => x.address === address)?.connected ?? false)
        : ok.some((r) => r.status.address !== address && r.status.servers.some((x) => x.address === address && x.connected));
    let state: RaftMemberView['state'] = 'ok';
    let detail = own === undefined ? '' : `${own.role}, ${own.status}`;
    if (host === undefined) {
      state = 'unknown-member';
      detail = 'in the cluster but not a central of the inventory';
    } else if (server === undefined && ok.length > 0) {
      state = 'not-a-member';
      detail = own === undefined ? 'not in the cluster' : `not in the cluster's server list (${own.status})`;
    } else if (own === undefined) {
      state = 'missing';
      detail = unreachable.get(host) !== undefined ? `host unreachable: ${unreachable.get(host) ?? ''}` : `no cluster/status: ${failed?.error ?? 'not asked'}`;
    } else if (own.status !== 'cluster member') {
      state = 'not-in-cluster';
    } else if (!connected) {
      state = 'disconnected';
      detail = `${detail}; not connected to the leader${server?.lastMsgMs === undefined ? '' : ` (last message ${server.lastMsgMs} ms ago)`}`;
    }
    if (state !== 'ok') problems.push(`${db}: ${host ?? server?.sid ?? address} (${address}) ${state}: ${detail}`);
    return {
      host,
      address,
      sid: server?.sid ?? own?.serverId,
      inCluster: server !== undefined,
      reporting: own !== undefined,
      role: own?.role,
      status: own?.status,
      term: own?.term,
      connected,
      state,
      detail,
    };
  });
  if (ok.length === 0) problems.push(`${db}: no central answered cluster/status`);
  return {
    db,
    leader: leaderSid === undefined ? undefined : { sid: leaderSid, host: leaderAddress === undefined ? undefined : hostOfAddress.get(leaderAddress) },
    term,
    clusterId: view?.status.clusterId,
    members,
    problems,
  };
}

export interface RegisteredChassis {
  name: string;
  hostname?: string;
  encapIp?: string;
}

export interface ChassisView {
  name: string;
  hostname: string | undefined;
  /** The tunnel address it announced in the Southbound. */
  encapIp?: string;
  /** A worker of the inventory has this system-id. */
  expected: boolean;
  registered: boolean;
}

export function judgeChassis(expectedSystemIds: readonly string[], registered: readonly RegisteredChassis[] | undefined): { chassis: ChassisView[]; problems: string[] } {
  if (registered === undefined) return { chassis: expectedSystemIds.map((name) => ({ name, hostname: undefined, expected: true, registered: false })), problems: ['chassis: the Southbound could not be read through any central'] };
  const view = (c: RegisteredChassis, expected: boolean): ChassisView => ({ name: c.name, hostname: c.hostname, ...(c.encapIp === undefined ? {} : { encapIp: c.encapIp }), expected, registered: true });
  const chassis: ChassisView[] = [
    ...expectedSystemIds.map((name) => {
      const c = registered.find((x) => x.name === name);
      return c === undefined ? { name, hostname: undefined, expected: true, registered: false } : view(c, true);
    }),
    ...registered.filter((c) => !expectedSystemIds.includes(c.name)).map((c) => view(c, false)),
  ];
  return { chassis, problems: chassisProblems(chassis) };
}

/** A worker of the inventory whose chassis the Southbound does not have. */
export function chassisProblems(chassis: readonly ChassisView[]): string[] {
  return chassis.filter((c) => c.expected && !c.registered).map((c) => `chassis ${c.name} is not registered in the Southbound`);
}

/**
 * An unhealthy metadata agent on a host that shows nothing wrong (a bundle from before its
 * registration check): any other failing agent is already one of its host's problems.
 */
export function agentProblems(agents: readonly MetadataAgentView[], hosts: readonly HostHealth[]): string[] {
  const flagged = new Set(hosts.filter((h) => hostProblems([h]).length > 0).map((h) => h.name));
  return agents.filter((a) => !a.healthy && !flagged.has(a.host)).map((a) => `metadata agent of ${a.chassis}: ${a.detail}`);
}

/**
 * What is wrong on the hosts, once per cause: a host that did not answer; each unhealthy daemon
 * with its most specific reason (how it went down, or the checks about it that fail); each failing
 * check that no unhealthy daemon already explains (the host's own, or one naming no service).
 */
export function hostProblems(hosts: readonly HostHealth[]): string[] {
  const problems: string[] = [];
  for (const h of hosts) {
    if (!h.reachable) problems.push(`${h.name}: unreachable: ${h.error ?? ''}`);
    else if (h.error !== undefined) problems.push(`${h.name}: ${h.error}`);
    else {
      const down = h.daemons.filter((d) => !d.healthy);
      for (const d of down) problems.push(`${h.name}: ${d.name}: ${d.detail}`);
      const explained = new Set(down.map((d) => d.name));
      for (const c of h.health) if (!c.ok && (c.service === undefined || !explained.has(c.service))) problems.push(`${h.name}: ${c.check}: ${c.detail}`);
    }
  }
  return problems;
}

export interface SiteStatus {
  site: string;
  /** healthy: everything fine; degraded: something missing or failing; unreachable: no host answered. */
  verdict: 'healthy' | 'degraded' | 'unreachable';
  hosts: HostHealth[];
  raft: RaftDbView[];
  chassis: ChassisView[];
  /** Hosts with the metadata-agent role (empty when none): registered and healthy per chassis. */
  metadataAgents: MetadataAgentView[];
  problems: string[];
}

export const SITE_STATUS_EXIT = { healthy: 0, degraded: 1, unreachable: 3 } as const;

export function judgeSite(
  site: string,
  hosts: HostHealth[],
  raft: RaftDbView[],
  chassis: { chassis: ChassisView[]; problems: string[] },
  metadataAgents: MetadataAgentView[] = [],
): SiteStatus {
  const problems = [...hostProblems(hosts), ...raft.flatMap((r) => r.problems), ...chassis.problems, ...agentProblems(metadataAgents, hosts)];
  const verdict = hosts.every((h) => !h.reachable) ? 'unreachable' : problems.length === 0 ? 'healthy' : 'degraded';
  return { site, verdict, hosts, raft, chassis: chassis.chassis, metadataAgents, problems };
}
