/**
 * Collects a site's status: per host reachable + `apply --check`; per DB every reachable central's
 * cluster/status; the chassis list through the first central that answers. Hosts are asked
 * concurrently (a limit); nothing here changes a host. A real site's hosts answer over SSH; the
 * sandbox's answer the same questions through the local transport (StatusHost).
 */
import type { Connect, RemoteHost } from '../deploy/remote.js';
import { remoteApplyArgv } from '../deploy/remote.js';
import { parseApplyReport, type ApplyReport } from '../deploy/apply-report.js';
import type { Host, Inventory } from '../inventory/types.js';
import { hostsWithRole } from '../inventory/types.js';
import { hostPaths, type HostPaths } from '../paths.js';
import type { RunResult } from '../runner.js';
import { parseOvsdbTable } from '../tools/ovsdb-json.js';
import { mapLimit } from '../tools/retry.js';
import { parseClusterStatus } from '../health/cluster-status.js';
import { judgeDaemons } from './daemons.js';
import { RAFT_DBS, dbCtl, expectedMembers } from './expected.js';
import { judgeMetadataAgents } from './metadata.js';
import { judgeChassis, judgeRaft, judgeSite, type HostHealth, type RaftReport, type RegisteredChassis, type SiteStatus } from './judge.js';

const firstLine = (s: string): string => s.trim().split('\n').filter((l) => l.trim() !== '').slice(-1)[0] ?? '';

/** What status asks of one host. */
export interface StatusHost {
  /** Resolves with undefined when the host answers, else the reason it does not. */
  unreachableReason(): Promise<string | undefined>;
  /** The host's `apply --check` report, or why there is none. */
  check(): Promise<ApplyReport | { error: string }>;
  /** A read-only command on the host (failures are results, not throws). */
  run(argv: readonly string[], timeoutMs: number): Promise<RunResult>;
  /** Where the host keeps its sockets. */
  paths: HostPaths;
  close(): Promise<void>;
}

/** A host reached over SSH: `ovn-deploy apply --check --json` there, distribution paths. */
export function sshStatusHost(remote: RemoteHost): StatusHost {
  return {
    unreachableReason: () => remote.unreachableReason(),
    check: async () => {
      const r = await remote.run(remoteApplyArgv(['--check']), { allowFailure: true, timeoutMs: 120_000 });
      try {
        return parseApplyReport(r.stdout, remote.name);
      } catch {
        return { error: `apply --check exited ${r.exitCode}: ${firstLine(r.stderr) || firstLine(r.stdout) || 'no output'}` };
      }
    },
    run: (argv, timeoutMs) => remote.run(argv, { allowFailure: true, timeoutMs }),
    paths: hostPaths(),
    close: () => remote.close(),
  };
}

interface HostProbe {
  health: HostHealth;
  raft: Map<string, RaftReport>;
  host: StatusHost;
}

async function probeHost(h: Host, host: StatusHost): Promise<HostProbe> {
  const raft = new Map<string, RaftReport>();
  const health: HostHealth = { name: h.name, roles: [...h.roles], reachable: false, health: [], daemons: [] };
  const why = await host.unreachableReason();
  if (why !== undefined) return { health: { ...health, error: why }, raft, host };
  health.reachable = true;
  const report = await host.check();
  if ('error' in report) health.error = report.error;
  else {
    health.applyStatus = report.status;
    health.health = report.health.map((c) => ({ check: c.check, ok: c.ok, detail: c.detail, ...(c.service === undefined ? {} : { service: c.service }) }));
    health.daemons = judgeDaemons(report.services ?? [], health.health);
  }
  if (h.roles.includes('central')) {
    for (const db of RAFT_DBS) {
      const r = await host.run(['ovn-appctl', '-t', dbCtl(db, host.paths), 'cluster/status', db], 15_000);
      if (r.exitCode !== 0) {
        raft.set(db, { host: h.name, error: firstLine(r.stderr) || `exit ${r.exitCode}` });
        continue;
      }
      try {
        raft.set(db, { host: h.name, status: parseClusterStatus(r.stdout) });
      } catch (err) {
        raft.set(db, { host: h.name, error: (err as Error).message });
      }
    }
  }
  return { health, raft, host };
}

async function readChassis(centrals: StatusHost[]): Promise<RegisteredChassis[] | undefined> {
  for (const central of centrals) {
    // --no-leader-only: any member answers, so the list survives a lost leader.
    const list = (table: string, columns: string) =>
      central.run(['ovn-sbctl', `--db=unix:${central.paths.ovn.sbSock}`, '--no-leader-only', '--timeout=10', '--format=json', `--columns=${columns}`, 'list', table], 20_000);
    const [r, e] = await Promise.all([list('Chassis', 'name,hostname'), list('Encap', 'chassis_name,ip')]);
    if (r.exitCode !== 0) continue;
    try {
      // The tunnel address each chassis announced (unknown when its Encap rows cannot be read).
      const encaps = e.exitCode === 0 ? parseOvsdbTable(e.stdout) : [];
      return parseOvsdbTable(r.stdout).map((row) => {
        const ip = encaps.find((x) => x.chassis_name === row.name)?.ip;
        return { name: String(row.name), ...(typeof row.hostname === 'string' ? { hostname: row.hostname } : {}), ...(typeof ip === 'string' ? { encapIp: ip } : {}) };
      });
    } catch {
      continue;
    }
  }
  return undefined;
}

export function collectSiteStatus(inv: Inventory, connect: Connect, concurrency = 8): Promise<SiteStatus> {
  return collectStatusOf(inv, (h) => sshStatusHost(connect(h)), concurrency);
}

export async function collectStatusOf(inv: Inventory, hostOf: (h: Host) => StatusHost, concurrency = 8): Promise<SiteStatus> {
  const probes = await mapLimit(inv.hosts, concurrency, (h) => probeHost(h, hostOf(h)));
  try {
    const unreachable = new Map(probes.filter((p) => !p.health.reachable).map((p) => [p.health.name, p.health.error ?? '']));
    const raft = RAFT_DBS.map((db) =>
      judgeRaft(
        db,
        expectedMembers(inv, db),
        probes.flatMap((p) => (p.raft.get(db) === undefined ? [] : [p.raft.get(db) as RaftReport])),
        unreachable,
      ),
    );
    const centralNames = new Set(hostsWithRole(inv, 'central').map((c) => c.name));
    const reachableCentrals = probes.filter((p) => p.health.reachable && centralNames.has(p.health.name)).map((p) => p.host);
    const chassis = judgeChassis(
      hostsWithRole(inv, 'worker').map((w) => w.systemId),
      reachableCentrals.length === 0 ? undefined : await readChassis(reachableCentrals),
    );
    const hosts = probes.map((p) => p.health);
    return judgeSite(inv.site, hosts, raft, chassis, judgeMetadataAgents(inv, hosts));
  } finally {
    await Promise.all(probes.map((p) => p.host.close().catch(() => undefined)));
  }
}
