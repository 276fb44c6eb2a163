/**
 * Collects a site's status over SSH: per host reachable + `apply --check --json`; per DB every
 * reachable central's cluster/status; the chassis list through the first central that answers.
 * Hosts are asked concurrently (a limit); nothing here changes a host.
 */
import type { Connect, RemoteHost } from '../deploy/remote.js';
import { remoteApplyArgv } from '../deploy/remote.js';
import { parseApplyReport } from '../deploy/apply-report.js';
import type { Host, Inventory } from '../inventory/types.js';
import { hostsWithRole } from '../inventory/types.js';
import { hostPaths } from '../paths.js';
import { parseOvsdbTable } from '../tools/ovsdb-json.js';
import { mapLimit } from '../tools/retry.js';
import { parseClusterStatus } from '../health/cluster-status.js';
import { RAFT_DBS, dbCtl, expectedMembers } from './expected.js';
import { judgeMetadataAgents } from './metadata.js';
import { judgeChassis, judgeRaft, judgeSite, type HostHealth, type RaftReport, type SiteStatus } from './judge.js';

const firstLine = (s: string): string => s.trim().split('\n').filter((l) => l.trim() !== '').slice(-1)[0] ?? '';

interface HostProbe {
  health: HostHealth;
  raft: Map<string, RaftReport>;
  remote: RemoteHost;
}

async function probeHost(h: Host, remote: RemoteHost): Promise<HostProbe> {
  const raft = new Map<string, RaftReport>();
  const health: HostHealth = { name: h.name, roles: [...h.roles], reachable: false, health: [] };
  const why = await remote.unreachableReason();
  if (why !== undefined) return { health: { ...health, error: why }, raft, remote };
  health.reachable = true;
  const check = await remote.run(remoteApplyArgv(['--check']), { allowFailure: true, timeoutMs: 120_000 });
  try {
    const report = parseApplyReport(check.stdout, h.name);
    health.applyStatus = report.status;
    health.health = report.health.map((c) => ({ check: c.check, ok: c.ok, detail: c.detail }));
  } catch {
    health.error = `apply --check exited ${check.exitCode}: ${firstLine(check.stderr) || firstLine(check.stdout) || 'no output'}`;
  }
  if (h.roles.includes('central')) {
    for (const db of RAFT_DBS) {
      const r = await remote.run(['ovn-appctl', '-t', dbCtl(db), 'cluster/status', db], { allowFailure: true, timeoutMs: 15_000 });
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
  return { health, raft, remote };
}

async function readChassis(centrals: RemoteHost[]): Promise<{ name: string; hostname?: string }[] | undefined> {
  for (const remote of centrals) {
    // --no-leader-only: any member answers, so the list survives a lost leader.
    const r = await remote.run(
      ['ovn-sbctl', `--db=unix:${hostPaths().ovn.sbSock}`, '--no-leader-only', '--timeout=10', '--format=json', '--columns=name,hostname', 'list', 'Chassis'],
      { allowFailure: true, timeoutMs: 20_000 },
    );
    if (r.exitCode !== 0) continue;
    try {
      return parseOvsdbTable(r.stdout).map((row) => ({ name: String(row.name), ...(typeof row.hostname === 'string' ? { hostname: row.hostname } : {}) }));
    } catch {
      continue;
    }
  }
  return undefined;
}

export async function collectSiteStatus(inv: Inventory, connect: Connect, concurrency = 8): Promise<SiteStatus> {
  const probes = await mapLimit(inv.hosts, concurrency, (h) => probeHost(h, connect(h)));
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
    const reachableCentrals = probes.filter((p) => p.health.reachable && centralNames.has(p.health.name)).map((p) => p.remote);
    const chassis = judgeChassis(
      hostsWithRole(inv, 'worker').map((w) => w.systemId),
      reachableCentrals.length === 0 ? undefined : await readChassis(reachableCentrals),
    );
    const hosts = probes.map((p) => p.health);
    return judgeSite(inv.site, hosts, raft, chassis, judgeMetadataAgents(inv, hosts));
  } finally {
    await Promise.all(probes.map((p) => p.remote.close().catch(() => undefined)));
  }
}
