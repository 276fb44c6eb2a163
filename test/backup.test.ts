/**
 * Backup and restore (issue 17), the pure parts and the file checks: the OVSDB file reader, the
 * restore transaction (UUIDs kept, in-place updates where a UUID exists on both sides), the
 * manifest verification (a changed byte, a missing file, another schema, a symlink: exit 2) and
 * pruning (only our own directories, never recursive). The real databases are in
 * backup.slow.test.ts and site-backup.slow.test.ts.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { runCli } from './helpers/cli.js';
import { BACKUP_FORMAT, sha256, verifyBackup, type BackupManifest } from '../src/backup/manifest.js';
import { columnDefault, restoreOps, userRows } from '../src/backup/transaction.js';
import { takeBackup } from '../src/backup/take.js';
import type { DbTarget } from '../src/backup/target.js';
import { parseSnapshot, readRecords, type DbSchema, type Tables } from '../src/tools/ovsdb-file.js';

const schema = (name: string, version: string): DbSchema => ({
  name,
  version,
  tables: {
    NB_Global: { columns: { name: { type: 'string' }, nb_cfg: { type: 'integer' } }, isRoot: true },
    Logical_Switch: { columns: { name: { type: 'string' }, ports: { type: { key: { type: 'uuid', refTable: 'Logical_Switch_Port' }, min: 0, max: 'unlimited' } }, other_config: { type: { key: 'string', value: 'string', min: 0, max: 'unlimited' } } }, isRoot: true },
    Logical_Switch_Port: { columns: { name: { type: 'string' }, up: { type: { key: 'boolean', min: 0, max: 1 } }, tag: { type: 'integer', ephemeral: true } } },
  },
});

function record(value: unknown): string {
  const body = JSON.stringify(value);
  return `OVSDB JSON ${Buffer.byteLength(body)} ${createHash('sha1').update(body).digest('hex')}\n${body}\n`;
}

const U = (n: number) => `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`;

function dbFile(s: DbSchema, tables: Tables): Buffer {
  return Buffer.from(record(s) + record({ _date: 1, _comment: 'produced by "ovsdb-client backup"', _is_diff: true, ...tables }));
}

describe('OVSDB standalone files', () => {
  it('reads a backup: the schema and every row', () => {
    const snap = parseSnapshot(dbFile(schema('OVN_Northbound', '7.0.0'), { Logical_Switch: { [U(1)]: { name: 'sw1' } } }));
    expect(snap.schema.version).toBe('7.0.0');
    expect(snap.tables).toEqual({ Logical_Switch: { [U(1)]: { name: 'sw1' } } });
  });

  it('refuses a changed byte (sha1 of its record), a truncated file, a live file with many transactions, unknown tables and columns', () => {
    const good = dbFile(schema('OVN_Northbound', '7.0.0'), { Logical_Switch: { [U(1)]: { name: 'sw1' } } });
    const changed = Buffer.from(good);
    changed[changed.length - 10] = changed[changed.length - 10] === 0x31 ? 0x32 : 0x31;
    expect(() => readRecords(changed)).toThrow(/does not match its sha1/);
    expect(() => readRecords(good.subarray(0, good.length - 20))).toThrow(/truncated/);
    const live = Buffer.concat([good, Buffer.from(record({ Logical_Switch: { [U(2)]: { name: 'sw2' } } }))]);
    expect(() => parseSnapshot(live)).toThrow(/exactly one/);
    expect(() => parseSnapshot(dbFile(schema('X', '1'), { Nope: {} }))).toThrow(/"Nope" is not in the schema/);
    expect(() => parseSnapshot(dbFile(schema('X', '1'), { Logical_Switch: { [U(1)]: { colour: 'red' } } }))).toThrow(/"colour" is not in the schema/);
    expect(() => parseSnapshot(dbFile(schema('X', '1'), { Logical_Switch: { 'not-a-uuid': {} } }))).toThrow(/is not a row UUID/);
    expect(() => parseSnapshot(Buffer.from('OVSDB CLUSTER 5 0000000000000000000000000000000000000000\n{}\n'))).toThrow(/expected "OVSDB JSON/);
  });
});

describe('the restore transaction', () => {
  const s = schema('OVN_Northbound', '7.0.0');

  it('keeps UUIDs: inserts carry the backup UUID, rows on both sides are updated in place (a UUID deleted in a transaction cannot be inserted again), others deleted', () => {
    const current: Tables = {
      NB_Global: { [U(9)]: { name: 'now', nb_cfg: 4 } },
      Logical_Switch: { [U(1)]: { name: 'sw1', ports: ['set', []], other_config: ['map', []] }, [U(3)]: { name: 'extra' } },
    };
    const backup: Tables = {
      NB_Global: { [U(8)]: { name: 'then' } },
      Logical_Switch: { [U(1)]: { name: 'sw1-old', ports: ['uuid', U(5)] }, [U(2)]: { name: 'sw2' } },
      Logical_Switch_Port: { [U(5)]: { name: 'p1', up: true } },
    };
    const r = restoreOps(s, current, backup);
    expect({ inserted: r.inserted, updated: r.updated, deleted: r.deleted, unchanged: r.unchanged }).toEqual({ inserted: 3, updated: 1, deleted: 2, unchanged: 0 });
    const byUuid = (u: string) => [['_uuid', '==', ['uuid', u]]];
    expect(r.ops).toContainEqual({ op: 'delete', table: 'NB_Global', where: byUuid(U(9)) });
    expect(r.ops).toContainEqual({ op: 'delete', table: 'Logical_Switch', where: byUuid(U(3)) });
    // Every persistent column set: missing ones at their defaults; the ephemeral `tag` never.
    expect(r.ops).toContainEqual({ op: 'update', table: 'Logical_Switch', where: byUuid(U(1)), row: { name: 'sw1-old', ports: ['uuid', U(5)], other_config: ['map', []] } });
    expect(r.ops).toContainEqual({ op: 'insert', table: 'Logical_Switch_Port', uuid: U(5), row: { name: 'p1', up: true } });
    expect(r.ops).toContainEqual({ op: 'insert', table: 'NB_Global', uuid: U(8), row: { name: 'then', nb_cfg: 0 } });
    // No UUID is both deleted and inserted.
    const deleted = new Set(r.ops.filter((o) => (o as { op: string }).op === 'delete').map((o) => JSON.stringify((o as { where: unknown }).where)));
    for (const o of r.ops.filter((x) => (x as { op: string }).op === 'insert')) expect(deleted.has(JSON.stringify(byUuid((o as { uuid: string }).uuid)))).toBe(false);
  });

  it('an identical database gives no operation', () => {
    const t: Tables = { Logical_Switch: { [U(1)]: { name: 'sw1' } } };
    const r = restoreOps(s, t, structuredClone(t));
    expect(r.ops).toEqual([]);
    expect(r.unchanged).toBe(1);
  });

  it('column defaults follow OVSDB: empty optional sets and maps, the zero of a scalar', () => {
    expect(columnDefault({ type: { key: 'string', value: 'string', min: 0, max: 'unlimited' } })).toEqual(['map', []]);
    expect(columnDefault({ type: { key: 'integer', min: 0, max: 1 } })).toEqual(['set', []]);
    expect(columnDefault({ type: 'boolean' })).toBe(false);
    expect(columnDefault({ type: { key: { type: 'integer', minInteger: 0 } } })).toBe(0);
    expect(columnDefault({ type: 'uuid' })).toEqual(['uuid', '00000000-0000-0000-0000-000000000000']);
  });

  it('"in use" means rows besides the root configuration row', () => {
    expect(userRows({ NB_Global: { [U(1)]: {} }, Logical_Switch: {} })).toEqual({});
    expect(userRows({ NB_Global: { [U(1)]: {} }, Logical_Switch: { [U(2)]: {} } })).toEqual({ Logical_Switch: 1 });
  });
});

describe('verifying a backup directory', () => {
  let dir: string;
  const nb = dbFile(schema('OVN_Northbound', '7.0.0'), { Logical_Switch: { [U(1)]: { name: 'sw1' } } });
  const sb = dbFile(schema('OVN_Southbound', '20.27.0'), {});
  const entry = (file: 'nb.db' | 'sb.db', bytes: Buffer, database: 'OVN_Northbound' | 'OVN_Southbound', schemaVersion: string) => ({
    file,
    bytes: bytes.length,
    sha256: sha256(bytes),
    database,
    schemaVersion,
    clusterId: U(7),
    members: [{ sid: 'abcd', address: 'tcp:127.0.0.1:6643' }],
    takenFrom: 'central1',
    rows: {},
  });
  const manifest = (): BackupManifest => ({
    format: BACKUP_FORMAT,
    createdAt: new Date(0).toISOString(),
    source: 'test',
    ovnVersion: 'ovn-nbctl 23.03.1',
    ovsVersion: 'ovsdb-client 3.1.0',
    databases: { nb: entry('nb.db', nb, 'OVN_Northbound', '7.0.0'), sb: entry('sb.db', sb, 'OVN_Southbound', '20.27.0') },
  });

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'od-backup-unit-'));
    await fs.writeFile(path.join(dir, 'nb.db'), nb);
    await fs.writeFile(path.join(dir, 'sb.db'), sb);
    await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest()));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const refusal = async (): Promise<string> => {
    try {
      await verifyBackup(dir);
    } catch (err) {
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).exitCode).toBe(2);
      return (err as InputError).message;
    }
    throw new Error('verifyBackup accepted it');
  };

  it('a good backup verifies', async () => {
    const v = await verifyBackup(dir);
    expect(v.snapshots.nb.tables.Logical_Switch?.[U(1)]).toEqual({ name: 'sw1' });
  });

  it('one changed byte: refused, naming the file and the sha256', async () => {
    const b = Buffer.from(nb);
    b[b.length - 5] = (b[b.length - 5] ?? 0) ^ 1;
    await fs.writeFile(path.join(dir, 'nb.db'), b);
    expect(await refusal()).toMatch(/nb\.db: sha256 differs from the manifest's/);
  });

  it('a truncated file and a missing one: refused', async () => {
    await fs.writeFile(path.join(dir, 'nb.db'), nb.subarray(0, 100));
    await fs.rm(path.join(dir, 'sb.db'));
    const m = await refusal();
    expect(m).toMatch(/nb\.db: is 100 bytes, the manifest says \d+ \(truncated or changed\)/);
    expect(m).toMatch(/sb\.db: missing/);
  });

  it('restore refuses a bad backup (exit 2, naming the file) before it opens its target: there is no sandbox to open here', async () => {
    const b = Buffer.from(nb);
    b[b.length - 5] = (b[b.length - 5] ?? 0) ^ 1;
    await fs.writeFile(path.join(dir, 'nb.db'), b);
    const r = await runCli(['restore', '--dir', path.join(dir, 'no-sandbox-here'), '--from', dir]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/nb\.db: sha256 differs from the manifest's/);
    expect(r.stderr).not.toMatch(/no-sandbox-here/);
  });

  it('another schema than the manifest says: refused', async () => {
    const other = dbFile(schema('OVN_Northbound', '6.3.0'), {});
    await fs.writeFile(path.join(dir, 'nb.db'), other);
    await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ ...manifest(), databases: { ...manifest().databases, nb: entry('nb.db', other, 'OVN_Northbound', '7.0.0') } }));
    expect(await refusal()).toMatch(/nb\.db: schema 6\.3\.0, the manifest says 7\.0\.0/);
  });

  it('a symlink instead of a file, and a manifest naming another file: refused', async () => {
    await fs.rm(path.join(dir, 'sb.db'));
    await fs.symlink('/etc/passwd', path.join(dir, 'sb.db'));
    expect(await refusal()).toMatch(/sb\.db: must be a regular file/);
    const m = manifest() as unknown as { databases: { nb: { file: string } } };
    m.databases.nb.file = '../../etc/shadow';
    await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(m));
    expect(await refusal()).toMatch(/manifest\.json: databases\.nb\.file/);
  });
});

describe('taking a backup', () => {
  it('a symlinked --out is refused (exit 2, naming --out) before any central is asked, and nothing lands where it points', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'od-backup-out-'));
    try {
      const elsewhere = path.join(dir, 'elsewhere');
      await fs.mkdir(elsewhere);
      await fs.symlink(elsewhere, path.join(dir, 'out'));
      let asked = 0;
      const target = {
        kind: 'sandbox',
        description: 'a target no one may ask',
        get centrals() {
          asked++;
          return [];
        },
        close: async () => undefined,
      } as unknown as DbTarget;
      const err = await takeBackup(target, path.join(dir, 'out')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).exitCode).toBe(2);
      expect((err as InputError).message).toMatch(/--out.*a symlink is not followed/);
      expect(asked).toBe(0);
      expect(await fs.readdir(elsewhere)).toEqual([]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the scheduled backup', () => {
  it('systemd units and a cron line run `backup SELECTOR --out DIR --keep N`; the renewal timer is unchanged', async () => {
    const { backupJob, renderCronLine, renderRenewalUnits } = await import('../src/certs/timer.js');
    const spec = { deployment: 'site /etc/site.yaml', selector: ['--inventory', '/etc/site.yaml'], program: ['/usr/bin/ovn-deploy'], job: backupJob('/var/backups/ovn', 14) };
    const units = renderRenewalUnits(spec);
    expect([...units.keys()]).toEqual(['ovn-deploy-backup.service', 'ovn-deploy-backup.timer']);
    expect(String(units.get('ovn-deploy-backup.service')?.content)).toMatch(/^ExecStart=\/usr\/bin\/ovn-deploy backup --inventory \/etc\/site\.yaml --out \/var\/backups\/ovn --keep 14$/m);
    expect(String(units.get('ovn-deploy-backup.timer')?.content)).toMatch(/^Unit=ovn-deploy-backup\.service$/m);
    expect(renderCronLine(spec)).toMatch(/ root \/usr\/bin\/ovn-deploy backup --inventory \/etc\/site\.yaml --out \/var\/backups\/ovn --keep 14 >>\/var\/log\/ovn-deploy-backup\.log 2>&1$/);
    const renewal = renderRenewalUnits({ deployment: 'x', selector: ['--dir', '/d'], program: ['/usr/bin/ovn-deploy'] });
    expect(String(renewal.get('ovn-deploy-cert-renew.service')?.content)).toMatch(/^ExecStart=\/usr\/bin\/ovn-deploy certs rotate --dir \/d$/m);
    expect(() => renderRenewalUnits({ ...spec, job: backupJob('/b\nExecStartPre=/bin/sh', undefined) })).toThrow(/extra\[1\]: must be one line/);
  });
});
