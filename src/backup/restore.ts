/**
 * `restore`: the backup is verified first (manifest, sha256, schema: bad input, nothing touched).
 * Then one of two cases, decided from what the centrals say:
 *
 * (a) The cluster runs (a central's NB answers): the NB contents become the backup's in ONE
 *     transaction that keeps the backup's row UUIDs (transaction.ts). Over an NB that holds
 *     anything but its NB_Global row, --force is required. The SB is not restored: ovn-northd
 *     recomputes everything it derives from the NB (datapaths, port bindings, logical flows)
 *     within a moment, and the chassis-owned rows (Chassis, Encap, Chassis_Private) stay those of
 *     the chassis that run now; the backup's would bring back chassis, tunnel keys and MAC
 *     bindings of the past. ovn-controller re-claims its ports by their logical port names.
 * (b) Disaster recovery (sites): no central answers and none holds an NB or SB file. The backup's NB
 *     is put on the bootstrap central as the seed its apply creates the new cluster from
 *     (`ovsdb-tool create-cluster DB SEED ADDR`, which keeps UUIDs), then the site is deployed:
 *     the other centrals join, the SB is a new empty cluster that northd fills, and every
 *     chassis registers again on reconnecting (its ovn-controller re-creates its Chassis row).
 *     A central that holds an NB file but does not answer blocks this: it is not a disaster,
 *     and creating a second cluster next to it would be a split brain.
 */
import { ExitError, InputError } from '../errors.js';
import { siteTopology } from '../site/topology.js';
import { parseSnapshot, rowCounts, type OvsdbSnapshot } from '../tools/ovsdb-file.js';
import type { VerifiedBackup } from './manifest.js';
import { restoreOps, userRows } from './transaction.js';
import { DB_NAME, type DbCentral, type DbTarget } from './target.js';

const BACKUP_TIMEOUT_S = 60;
const WAIT_SB_S = 60;

export interface RestoreOptions {
  force?: boolean;
  /** Case (b): deploys the site (the inventory's hosts, with the seed on the bootstrap central). */
  deploySite?: () => Promise<{ ok: boolean; summary: string[] }>;
  log?: (line: string) => void;
}

export interface RestoreResult {
  case: 'live' | 'disaster-recovery';
  central: string;
  rows: Record<string, number>;
  inserted?: number;
  updated?: number;
  deleted?: number;
  unchanged?: number;
  deploy?: string[];
  /** Live case: the transaction, and ovn-northd catching up after it. */
  transactMs?: number;
  northdMs?: number;
  ms: number;
}

async function currentNb(c: DbCentral): Promise<OvsdbSnapshot> {
  const r = await c.runner.run(['ovsdb-client', `--timeout=${BACKUP_TIMEOUT_S}`, 'backup', c.remote('nb'), DB_NAME.nb], {
    allowFailure: true,
    mutates: false,
    timeoutMs: (BACKUP_TIMEOUT_S + 10) * 1000,
  });
  if (r.exitCode !== 0) throw new Error((r.stderr.trim().split('\n').pop() ?? '').trim() || `exit ${r.exitCode}`);
  return parseSnapshot(Buffer.from(r.stdout, 'utf8'));
}

const describeRows = (rows: Record<string, number>): string =>
  Object.entries(rows)
    .map(([t, n]) => `${n} ${t}`)
    .join(', ');

async function restoreLive(target: DbTarget, c: DbCentral, current: OvsdbSnapshot, backup: VerifiedBackup, o: RestoreOptions): Promise<Omit<RestoreResult, 'ms'>> {
  const file = `${backup.dir}/nb.db`;
  const want = backup.snapshots.nb;
  if (current.schema.version !== want.schema.version) {
    throw new InputError([{ file, path: '', message: `is of NB schema ${String(want.schema.version)}, ${target.description} runs ${String(current.schema.version)}: convert one of them first (ovsdb-client convert)` }]);
  }
  const inUse = userRows(current.tables);
  if (Object.keys(inUse).length > 0 && o.force !== true) {
    throw new ExitError(`the NB of ${target.description} is in use (${describeRows(inUse)}): restoring replaces all of it; give --force to do so`, 2);
  }
  const plan = restoreOps(want.schema, current.tables, want.tables);
  o.log?.(`${c.name}: one transaction: ${plan.inserted} rows inserted, ${plan.updated} updated, ${plan.deleted} deleted, ${plan.unchanged} unchanged`);
  const t0 = Date.now();
  await c.transact('nb', plan.ops);
  const transactMs = Date.now() - t0;
  // northd recomputes the SB from the new NB; wait until it has (and the chassis caught up).
  const r = await c.runner.run(['ovn-nbctl', `--db=${c.remote('nb')}`, `--timeout=${WAIT_SB_S}`, '--wait=sb', 'sync'], { allowFailure: true, mutates: true, timeoutMs: (WAIT_SB_S + 5) * 1000 });
  if (r.exitCode !== 0) o.log?.(`warning: ovn-northd did not confirm the new NB within ${WAIT_SB_S} s: ${r.stderr.trim().split('\n').pop() ?? ''}`);
  const northdMs = Date.now() - t0 - transactMs;
  return { case: 'live', central: c.name, rows: rowCounts(want.tables), inserted: plan.inserted, updated: plan.updated, deleted: plan.deleted, unchanged: plan.unchanged, transactMs, northdMs };
}

async function restoreDisaster(target: DbTarget, backup: VerifiedBackup, why: string[], o: RestoreOptions): Promise<Omit<RestoreResult, 'ms'>> {
  if (target.kind !== 'site' || target.inventory === undefined) {
    throw new ExitError(`the NB of ${target.description} does not answer (${why.join('; ')}): start it (\`ovn-deploy up\`) and restore again`, 1);
  }
  const holders: string[] = [];
  // The seed lets the bootstrap central create new NB and SB clusters (apply): neither may exist anywhere.
  for (const c of target.centrals) {
    if ((await c.hasDbFile('nb')) || (await c.hasDbFile('sb'))) holders.push(c.name);
  }
  if (holders.length > 0) {
    throw new ExitError(
      `no central's NB answers (${why.join('; ')}), but ${holders.join(', ')} still hold${holders.length === 1 ? 's' : ''} ${target.centrals[0]?.paths.ovn.nbDb ?? 'an NB file'} or ${target.centrals[0]?.paths.ovn.sbDb ?? 'an SB file'}: ` +
        'this is not a disaster recovery (a new cluster next to it would split the site); start those centrals (`deploy`) and restore into the running cluster',
      1,
    );
  }
  const bootstrapName = siteTopology(target.inventory).bootstrap;
  const bootstrap = target.centrals.find((c) => c.name === bootstrapName);
  if (bootstrap?.placeSeed === undefined || o.deploySite === undefined) throw new ExitError(`disaster recovery needs --pki (the site is deployed again)`, 2);
  // The schema the centrals will run must be the backup's: create-cluster would take any.
  const sv = await bootstrap.runner.run(['ovsdb-tool', 'schema-version', '/usr/share/ovn/ovn-nb.ovsschema'], { allowFailure: true });
  const installed = sv.stdout.trim();
  if (sv.exitCode === 0 && installed !== backup.snapshots.nb.schema.version) {
    throw new InputError([{ file: `${backup.dir}/nb.db`, path: '', message: `is of NB schema ${String(backup.snapshots.nb.schema.version)}, ${bootstrapName} has ${installed} installed` }]);
  }
  o.log?.(`no central holds an NB database: a new cluster is created on ${bootstrapName} from the backup, the other centrals join it`);
  await bootstrap.placeSeed('nb', backup.files.nb);
  await forgetOldClusters(target, o);
  let deployed: { ok: boolean; summary: string[] };
  try {
    deployed = await o.deploySite();
  } finally {
    await bootstrap.removeSeed?.('nb').catch(() => undefined);
  }
  if (!deployed.ok) throw new ExitError(`the site did not converge after the restore:\n${deployed.summary.join('\n')}`, 1);
  return { case: 'disaster-recovery', central: bootstrapName, rows: rowCounts(backup.snapshots.nb.tables), deploy: deployed.summary };
}

/**
 * A running ovn-controller (ovn-northd) remembers the last RAFT index it saw of the SB (NB) and
 * takes a server of the new cluster, whose log starts again at 1, for a stale one: it never
 * reconnects. `*-cluster-state-reset` makes it forget; best effort (a daemon that is not
 * running starts afresh anyway).
 */
async function forgetOldClusters(target: DbTarget, o: RestoreOptions): Promise<void> {
  const calls: { host: string; runner: DbCentral['runner']; argv: string[] }[] = [
    ...(target.chassis ?? []).map((h) => ({ host: h.name, runner: h.runner, argv: ['ovn-appctl', '-t', 'ovn-controller', 'sb-cluster-state-reset'] })),
    ...target.centrals.flatMap((c) =>
      (['nb', 'sb'] as const).map((db) => ({ host: c.name, runner: c.runner, argv: ['ovn-appctl', '-t', c.paths.ovn.northdCtl, `${db}-cluster-state-reset`] })),
    ),
  ];
  await Promise.all(
    calls.map(async (k) => {
      const r = await k.runner.run(k.argv, { allowFailure: true, mutates: true, timeoutMs: 15_000 }).catch((err: unknown) => ({ exitCode: 1, stderr: String(err) }));
      if (r.exitCode === 0) o.log?.(`${k.host}: ${k.argv.slice(1).join(' ')}: the old cluster's state forgotten`);
    }),
  );
}

/** `backup` verified by verifyBackup before the target was opened: a bad backup touches no host. */
export async function restoreBackup(target: DbTarget, backup: VerifiedBackup, o: RestoreOptions = {}): Promise<RestoreResult> {
  const t0 = Date.now();
  const why: string[] = [];
  for (const c of target.centrals) {
    let current: OvsdbSnapshot;
    try {
      current = await currentNb(c);
    } catch (err) {
      why.push(`${c.name}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    return { ...(await restoreLive(target, c, current, backup, o)), ms: Date.now() - t0 };
  }
  return { ...(await restoreDisaster(target, backup, why, o)), ms: Date.now() - t0 };
}
