/**
 * A backup directory: `manifest.json` + `nb.db` + `sb.db` (each `ovsdb-client backup` output).
 * The manifest says what the files must be (sha256, size, schema) and where they came from
 * (cluster id, members, versions, time). `verifyBackup` checks all of it before a restore
 * touches anything: a changed byte, a truncated file, a missing one or another schema is bad
 * input (exit 2) naming the file and the check.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { InputError, type Problem } from '../errors.js';
import { readInputFile } from '../input-file.js';
import { OvsdbFileError, parseSnapshot, type OvsdbSnapshot } from '../tools/ovsdb-file.js';
import type { DbKey } from './target.js';

export const BACKUP_FORMAT = 'ovn-deploy-backup/1';
export const MANIFEST_FILE = 'manifest.json';
/** A backup's database files are read into memory whole; this bounds them. */
export const MAX_DB_BYTES = 1024 * 1024 * 1024;

const member = z.strictObject({ sid: z.string().max(64), address: z.string().max(300) });
const dbEntry = z.strictObject({
  file: z.enum(['nb.db', 'sb.db']),
  bytes: z.number().int().nonnegative().max(MAX_DB_BYTES),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  database: z.enum(['OVN_Northbound', 'OVN_Southbound']),
  schemaVersion: z.string().max(40),
  schemaCksum: z.string().max(80).optional(),
  clusterId: z.string().max(64),
  members: z.array(member).max(64),
  /** The central whose server answered the backup (a cluster member: `ovsdb-client` asks the leader). */
  takenFrom: z.string().max(253),
  rows: z.record(z.string().max(100), z.number().int().nonnegative()),
});
export type DbEntry = z.output<typeof dbEntry>;

export const manifestSchema = z.strictObject({
  format: z.literal(BACKUP_FORMAT),
  createdAt: z.string().datetime(),
  source: z.string().max(1000),
  ovnVersion: z.string().max(100),
  ovsVersion: z.string().max(100),
  databases: z.strictObject({ nb: dbEntry, sb: dbEntry }),
});
export type BackupManifest = z.output<typeof manifestSchema>;

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export interface VerifiedBackup {
  dir: string;
  manifest: BackupManifest;
  files: Record<DbKey, Buffer>;
  snapshots: Record<DbKey, OvsdbSnapshot>;
}

/** Everything a restore relies on, checked; every problem names the file and what was expected. */
export async function verifyBackup(dir: string): Promise<VerifiedBackup> {
  const manifestFile = path.join(dir, MANIFEST_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse((await readInputFile(manifestFile, { what: 'backup manifest', maxBytes: 1024 * 1024 })).toString('utf8'));
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError([{ file: manifestFile, path: '', message: 'is not JSON' }]);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InputError(parsed.error.issues.slice(0, 10).map((i) => ({ file: manifestFile, path: i.path.join('.'), message: i.message })));
  }
  const manifest = parsed.data;
  const problems: Problem[] = [];
  const files: Partial<Record<DbKey, Buffer>> = {};
  const snapshots: Partial<Record<DbKey, OvsdbSnapshot>> = {};
  for (const key of ['nb', 'sb'] as const) {
    const entry = manifest.databases[key];
    const file = path.join(dir, entry.file);
    let bytes: Buffer;
    try {
      const st = await fs.lstat(file);
      if (!st.isFile()) {
        problems.push({ file, path: '', message: 'must be a regular file (a symlink or anything else is refused)' });
        continue;
      }
      bytes = await readInputFile(file, { what: 'backup database', maxBytes: MAX_DB_BYTES });
    } catch (err) {
      if (err instanceof InputError) {
        problems.push(...err.problems);
        continue;
      }
      problems.push({ file, path: '', message: `missing: the manifest lists it (${entry.bytes} bytes)` });
      continue;
    }
    if (bytes.length !== entry.bytes) {
      problems.push({ file, path: '', message: `is ${bytes.length} bytes, the manifest says ${entry.bytes} (truncated or changed)` });
      continue;
    }
    if (sha256(bytes) !== entry.sha256) {
      problems.push({ file, path: '', message: `sha256 differs from the manifest's (the file was changed after the backup)` });
      continue;
    }
    let snap: OvsdbSnapshot;
    try {
      snap = parseSnapshot(bytes);
    } catch (err) {
      problems.push({ file, path: '', message: err instanceof OvsdbFileError ? err.message : String(err) });
      continue;
    }
    if (snap.schema.name !== entry.database) problems.push({ file, path: '', message: `holds database ${snap.schema.name}, expected ${entry.database}` });
    if (snap.schema.version !== entry.schemaVersion) problems.push({ file, path: '', message: `schema ${String(snap.schema.version)}, the manifest says ${entry.schemaVersion}` });
    files[key] = bytes;
    snapshots[key] = snap;
  }
  if (problems.length > 0 || files.nb === undefined || files.sb === undefined || snapshots.nb === undefined || snapshots.sb === undefined) {
    throw new InputError(problems);
  }
  return { dir, manifest, files: { nb: files.nb, sb: files.sb }, snapshots: { nb: snapshots.nb, sb: snapshots.sb } };
}
