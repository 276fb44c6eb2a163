/**
 * `backup`: a consistent snapshot of NB and SB from the running cluster. `ovsdb-client backup`
 * reads every table in ONE transaction and, on a cluster, only from the leader (its default
 * --leader-only): a snapshot of committed data, never a copy of files under write. The centrals
 * are asked in turn until one answers. The backup goes into a new directory, complete or not at
 * all (written under a temporary name, renamed last); `--keep N` prunes older backups, only
 * directories this command made (its name pattern and exactly its files; nothing is followed).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ExitError, inputError } from '../errors.js';
import { parseClusterStatus } from '../health/cluster-status.js';
import { appctl } from '../tools/ovs.js';
import { parseSnapshot, rowCounts } from '../tools/ovsdb-file.js';
import { BACKUP_FORMAT, MANIFEST_FILE, sha256, type BackupManifest, type DbEntry } from './manifest.js';
import { DB_NAME, type DbCentral, type DbKey, type DbTarget } from './target.js';

export const BACKUP_DIR = /^ovn-backup-\d{8}T\d{6}(\d{3})?Z$/;
const OUR_FILES = new Set([MANIFEST_FILE, 'nb.db', 'sb.db']);
const BACKUP_TIMEOUT_S = 60;

export interface BackupResult {
  dir: string;
  manifest: BackupManifest;
  pruned: string[];
  /** Older directories that looked like backups but were left alone, and why. */
  keptForeign: string[];
  ms: number;
}

/** `ovn-backup-20261203T051500123Z`: sortable, unique per millisecond. */
export function backupDirName(now: Date): string {
  return `ovn-backup-${now.toISOString().replace(/[-:]/g, '').replace('.', '')}`;
}

async function snapshotOf(central: DbCentral, db: DbKey): Promise<Buffer> {
  const r = await central.runner.run(['ovsdb-client', `--timeout=${BACKUP_TIMEOUT_S}`, 'backup', central.remote(db), DB_NAME[db]], {
    allowFailure: true,
    mutates: false,
    timeoutMs: (BACKUP_TIMEOUT_S + 10) * 1000,
  });
  if (r.exitCode !== 0) throw new Error((r.stderr.trim().split('\n').pop() ?? '').trim() || `exit ${r.exitCode}`);
  return Buffer.from(r.stdout, 'utf8');
}

async function clusterFacts(central: DbCentral, db: DbKey): Promise<{ clusterId: string; members: { sid: string; address: string }[] }> {
  const ctl = db === 'nb' ? central.paths.ovn.nbCtl : central.paths.ovn.sbCtl;
  const st = parseClusterStatus((await appctl(central.runner, ctl, ['cluster/status', DB_NAME[db]])).stdout);
  return { clusterId: st.clusterUuid, members: st.servers.map((s) => ({ sid: s.sid, address: s.address })) };
}

async function version(central: DbCentral, program: string): Promise<string> {
  const r = await central.runner.run([program, '--version'], { allowFailure: true, mutates: false });
  return (r.stdout.split('\n')[0] ?? '').trim() || 'unknown';
}

/** The first central that answers gives the snapshot; every refusal is kept for the message. */
async function takeDb(target: DbTarget, db: DbKey): Promise<{ bytes: Buffer; entry: Omit<DbEntry, 'file'> }> {
  const why: string[] = [];
  for (const c of target.centrals) {
    let bytes: Buffer;
    try {
      bytes = await snapshotOf(c, db);
    } catch (err) {
      why.push(`${c.name}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    const snap = parseSnapshot(bytes);
    const facts = await clusterFacts(c, db);
    return {
      bytes,
      entry: {
        bytes: bytes.length,
        sha256: sha256(bytes),
        database: DB_NAME[db],
        schemaVersion: snap.schema.version ?? '',
        ...(snap.schema.cksum === undefined ? {} : { schemaCksum: snap.schema.cksum }),
        ...facts,
        takenFrom: c.name,
        rows: rowCounts(snap.tables),
      },
    };
  }
  throw new ExitError(`no central of ${target.description} gave a ${DB_NAME[db]} backup:\n  ${why.join('\n  ')}`, 1);
}

/** Removes one of our old backups: its known files, then the (then empty) directory. Never recursive. */
async function pruneOne(dir: string): Promise<string | undefined> {
  const st = await fs.lstat(dir);
  if (!st.isDirectory()) return 'not a directory';
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const foreign = entries.filter((e) => !OUR_FILES.has(e.name) || !e.isFile());
  if (foreign.length > 0) return `holds ${foreign.map((e) => e.name).slice(0, 3).join(', ')}, which backup did not write`;
  for (const e of entries) await fs.unlink(path.join(dir, e.name));
  await fs.rmdir(dir);
  return undefined;
}

export async function takeBackup(target: DbTarget, outDir: string, opts: { keep?: number; now?: Date } = {}): Promise<BackupResult> {
  const t0 = Date.now();
  const now = opts.now ?? new Date();
  await fs.mkdir(outDir, { recursive: true, mode: 0o700 });
  const outSt = await fs.lstat(outDir);
  if (!outSt.isDirectory()) throw inputError('must be a directory (a symlink is not followed)', '--out', outDir);
  const nb = await takeDb(target, 'nb');
  const sb = await takeDb(target, 'sb');
  const first = target.centrals.find((c) => c.name === nb.entry.takenFrom) ?? target.centrals[0];
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    createdAt: now.toISOString(),
    source: target.description,
    ovnVersion: first === undefined ? 'unknown' : await version(first, 'ovn-nbctl'),
    ovsVersion: first === undefined ? 'unknown' : await version(first, 'ovsdb-client'),
    databases: { nb: { file: 'nb.db', ...nb.entry }, sb: { file: 'sb.db', ...sb.entry } },
  };
  const name = backupDirName(now);
  const final = path.join(outDir, name);
  const tmp = path.join(outDir, `.${name}.tmp-${process.pid}`);
  await fs.mkdir(tmp, { mode: 0o700 });
  try {
    for (const [file, content] of [
      ['nb.db', nb.bytes],
      ['sb.db', sb.bytes],
      [MANIFEST_FILE, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)],
    ] as const) {
      const fh = await fs.open(path.join(tmp, file), 'wx', 0o600);
      try {
        await fh.writeFile(content);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    // rename(2) of a directory fails when the target exists: a backup is never overwritten.
    await fs.rename(tmp, final);
    const dh = await fs.open(outDir, 'r');
    await dh.sync().finally(() => dh.close());
  } catch (err) {
    for (const f of OUR_FILES) await fs.unlink(path.join(tmp, f)).catch(() => undefined);
    await fs.rmdir(tmp).catch(() => undefined);
    throw err;
  }
  const pruned: string[] = [];
  const keptForeign: string[] = [];
  if (opts.keep !== undefined) {
    const ours = (await fs.readdir(outDir)).filter((n) => BACKUP_DIR.test(n)).sort();
    for (const old of ours.slice(0, Math.max(0, ours.length - opts.keep))) {
      const why = await pruneOne(path.join(outDir, old));
      if (why === undefined) pruned.push(old);
      else keptForeign.push(`${old}: ${why}`);
    }
  }
  return { dir: final, manifest, pruned, keptForeign, ms: Date.now() - t0 };
}
