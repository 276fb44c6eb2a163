/**
 * `central remove`'s host side (run ON the leaving central by `ovn-deploy central leave-local`):
 * leave both RAFT clusters cleanly (`cluster/leave`, then wait until the server reports it left,
 * so the remaining members shrink their configuration instead of waiting for a dead peer), stop the
 * central's services, and move its database files aside so a later `central add` joins afresh.
 */
import { existsSync, promises as fs } from 'node:fs';
import { ExitError } from '../errors.js';
import { hostPaths } from '../paths.js';
import type { Runner } from '../runner.js';
import { SERVICE } from '../render/services.js';
import { parseClusterStatus } from '../health/cluster-status.js';
import { RAFT_DBS, dbCtl, type RaftDbName } from '../site-status/expected.js';
import { OwnHostServices, SystemdHostServices } from '../apply/services.js';
import { systemdIsInit } from '../supervisor/index.js';
import { sleep } from '../tools/retry.js';

export const CENTRAL_SERVICES = [SERVICE.northd, SERVICE.nbOvsdb, SERVICE.sbOvsdb, SERVICE.stunnelServer] as const;

export interface LeaveResult {
  db: RaftDbName;
  /** left: it left now; absent: it was not running (nothing to leave). */
  outcome: 'left' | 'absent';
  detail: string;
}

export interface LeaveReport {
  dbs: LeaveResult[];
  stopped: string[];
  /** Database files moved aside (`<file>.left-<time>`). */
  movedAside: string[];
}

async function leaveOne(runner: Runner, db: RaftDbName, timeoutMs: number): Promise<LeaveResult> {
  const ctl = dbCtl(db);
  if (!existsSync(ctl)) return { db, outcome: 'absent', detail: `${ctl} does not exist: the server is not running` };
  const first = await runner.run(['ovn-appctl', '-t', ctl, 'cluster/status', db], { allowFailure: true, timeoutMs: 15_000 });
  if (first.exitCode !== 0) return { db, outcome: 'absent', detail: first.stderr.trim() || `cluster/status exit ${first.exitCode}` };
  if (parseClusterStatus(first.stdout).status === 'left cluster') return { db, outcome: 'left', detail: 'had already left' };
  await runner.run(['ovn-appctl', '-t', ctl, 'cluster/leave', db], { timeoutMs: 15_000 });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await runner.run(['ovn-appctl', '-t', ctl, 'cluster/status', db], { allowFailure: true, timeoutMs: 15_000 });
    // Once it left, ovsdb-server closes the database: cluster/status then fails ("unknown database").
    if (r.exitCode !== 0) return { db, outcome: 'left', detail: 'left the cluster (database closed)' };
    const s = parseClusterStatus(r.stdout);
    if (s.status === 'left cluster') return { db, outcome: 'left', detail: 'left the cluster' };
    if (Date.now() > deadline) {
      throw new ExitError(`${db}: still "${s.status}" after ${Math.round(timeoutMs / 1000)} s: a majority of the cluster must be up to accept the leave`, 1);
    }
    await sleep(500);
  }
}

export async function leaveClusterLocally(runner: Runner, opts: { timeoutMs?: number; now?: Date } = {}): Promise<LeaveReport> {
  const dbs: LeaveResult[] = [];
  for (const db of RAFT_DBS) dbs.push(await leaveOne(runner, db, opts.timeoutMs ?? 60_000));
  const p = hostPaths();
  const names = [...CENTRAL_SERVICES];
  await (systemdIsInit() ? new SystemdHostServices(runner) : new OwnHostServices(p)).retire(names);
  const stamp = (opts.now ?? new Date()).toISOString().replace(/[:.]/g, '-');
  const movedAside: string[] = [];
  for (const file of [p.ovn.nbDb, p.ovn.sbDb]) {
    if (!existsSync(file)) continue;
    const to = `${file}.left-${stamp}`;
    await fs.rename(file, to);
    movedAside.push(to);
  }
  return { dbs, stopped: names, movedAside };
}
