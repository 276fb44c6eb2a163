/**
 * Issue 17 on the sandbox, through the built CLI against real OVSDB servers: 1,000 logical switch
 * ports on 100 switches -> `backup` -> `down` -> `up` -> `restore --force` -> the NB holds what
 * the backup held, row UUIDs included, and vm1 pings vm2; a backup taken under a writer adding a
 * switch every 50 ms is consistent; restoring over an NB in use needs --force; a damaged backup
 * is refused with nothing touched. (The site's disaster recovery: site-backup.slow.test.ts.)
 */
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxId, sandboxNames } from '../src/sandbox/naming.js';
import { parseSnapshot, type Tables } from '../src/tools/ovsdb-file.js';
import { cli, cliOk, inNetns, requireBuiltCli } from './sandbox-helpers.js';

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('backup.slow.test.ts: skipped, needs root (network namespaces, daemons)');

const MIN = 60_000;

/**
 * Columns ovn-northd (or `restore`'s own `--wait=sb sync`) writes into the NB after the restore:
 * NB_Global's sequence numbers and their timestamps. They say how far the SB and the chassis
 * caught up, not what the operator defined. Nothing else is left out of the comparison.
 */
const WRITTEN_BY_NORTHD: Record<string, string[]> = {
  NB_Global: ['nb_cfg', 'nb_cfg_timestamp', 'sb_cfg', 'sb_cfg_timestamp', 'hv_cfg', 'hv_cfg_timestamp'],
};

function comparable(tables: Tables): Record<string, Record<string, Record<string, unknown>>> {
  const out: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const [t, rows] of Object.entries(tables)) {
    if (Object.keys(rows).length === 0) continue;
    out[t] = {};
    for (const [uuid, row] of Object.entries(rows)) {
      const r = { ...row };
      for (const c of WRITTEN_BY_NORTHD[t] ?? []) delete r[c];
      (out[t] as Record<string, unknown>)[uuid] = r;
    }
  }
  return out;
}

describe.skipIf(notRoot)('backup and restore on the sandbox', () => {
  let parent: string;
  let dir: string;
  let out: string;
  let nbRemote: string;
  let backupDir: string;
  const figures: Record<string, number> = {};

  const nbctl = (args: string[]) => {
    const r = spawnSync('ovn-nbctl', [`--db=${nbRemote}`, '--timeout=60', ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`ovn-nbctl ${args.slice(0, 4).join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const nbNow = (): Tables => {
    const r = spawnSync('ovsdb-client', ['backup', nbRemote, 'OVN_Northbound'], { maxBuffer: 256 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`ovsdb-client backup: ${r.stderr.toString()}`);
    return parseSnapshot(r.stdout).tables;
  };
  const ping = () => inNetns(sandboxNames(sandboxId(dir)).vmNetns('vm1'), ['ping', '-c', '2', '-i', '0.2', '-W', '2', '192.168.1.11']);

  beforeAll(async () => {
    requireBuiltCli();
    parent = await fs.mkdtemp(path.join(os.tmpdir(), 'od-backup-'));
    dir = path.join(parent, 'sandbox');
    out = path.join(parent, 'backups');
    await cliOk(['up', '--dir', dir, '--no-install'], { timeoutMs: 5 * MIN });
    nbRemote = `unix:${path.join(dir, 'hosts', 'operator', 'var', 'run', 'ovn-deploy', 'ovsdb', 'central.nb')}`;
    const args: string[] = [];
    for (let s = 0; s < 100; s++) {
      args.push('--', 'ls-add', `bk-sw${s}`);
      for (let p = 0; p < 10; p++) {
        const port = `bk-sw${s}-p${p}`;
        args.push('--', 'lsp-add', `bk-sw${s}`, port, '--', 'lsp-set-addresses', port, `0a:00:00:00:${s.toString(16).padStart(2, '0')}:${p.toString(16).padStart(2, '0')} 10.${s}.0.${p + 2}`);
      }
    }
    nbctl(args.slice(1));
  }, 10 * MIN);

  afterAll(async () => {
    console.log(`backup figures: ${JSON.stringify(figures)}`);
    if (dir !== undefined) await cli(['down', '--dir', dir], { timeoutMs: 5 * MIN });
    if (parent !== undefined) await fs.rm(parent, { recursive: true, force: true });
  }, 10 * MIN);

  it('backup: nb.db, sb.db and a manifest (sha256, schema, cluster id, members), 0600 in a new directory', async () => {
    const r = await cliOk(['backup', '--dir', dir, '--out', out, '--json']);
    const res = JSON.parse(r.stdout) as { dir: string; ms: number; manifest: { databases: Record<'nb' | 'sb', { rows: Record<string, number>; members: unknown[]; clusterId: string; schemaVersion: string }> } };
    figures.backup1000Ms = res.ms;
    backupDir = res.dir;
    expect(path.dirname(backupDir)).toBe(out);
    expect((await fs.readdir(backupDir)).sort()).toEqual(['manifest.json', 'nb.db', 'sb.db']);
    for (const f of ['manifest.json', 'nb.db', 'sb.db']) expect((await fs.stat(path.join(backupDir, f))).mode & 0o777).toBe(0o600);
    const nb = res.manifest.databases.nb;
    expect(nb.rows.Logical_Switch_Port).toBeGreaterThanOrEqual(1000);
    expect(nb.rows.Logical_Switch).toBeGreaterThanOrEqual(100);
    expect(nb.members).toHaveLength(1);
    const cid = spawnSync('ovs-appctl', ['-t', path.join(dir, 'hosts', 'central', 'var', 'run', 'ovn', 'ovnnb_db.ctl'), 'cluster/cid', 'OVN_Northbound'], { encoding: 'utf8' });
    expect(nb.clusterId).toBe(cid.stdout.trim());
    expect(nb.schemaVersion).toMatch(/^\d+\.\d+\.\d+$/);
    // The file is an OVSDB database: OVSDB's own tool reads it.
    const q = spawnSync('ovsdb-tool', ['query', path.join(backupDir, 'nb.db'), JSON.stringify(['OVN_Northbound', { op: 'select', table: 'Logical_Switch_Port', where: [], columns: ['name'] }])], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    expect(q.status, q.stderr).toBe(0);
    expect((JSON.parse(q.stdout) as { rows: unknown[] }[])[0]?.rows.length).toBe(nb.rows.Logical_Switch_Port);
  });

  it('a backup taken while a writer adds a switch every 50 ms is consistent: each switch whole or absent', async () => {
    // Each write is one transaction: a switch and its external_ids together.
    const script = `i=0; while [ ! -e ${parent}/stop ]; do i=$((i+1)); ovn-nbctl --db=${nbRemote} --timeout=10 ls-add wr-$i -- set Logical_Switch wr-$i external_ids:seq=$i external_ids:check=wr-$i >/dev/null 2>&1; sleep 0.05; done`;
    const writer = spawn('sh', ['-c', script], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const r = await cliOk(['backup', '--dir', dir, '--out', out, '--json']);
      await new Promise((res) => setTimeout(res, 500));
      await fs.writeFile(path.join(parent, 'stop'), '');
      const snap = parseSnapshot(await fs.readFile(path.join((JSON.parse(r.stdout) as { dir: string }).dir, 'nb.db')));
      const written = Object.values(snap.tables.Logical_Switch ?? {}).filter((row) => String(row.name).startsWith('wr-'));
      expect(written.length).toBeGreaterThan(3);
      for (const row of written) {
        const ids = new Map((row.external_ids as ['map', [string, string][]])[1]);
        expect(ids.get('check'), JSON.stringify(row)).toBe(row.name);
        expect(`wr-${ids.get('seq') ?? ''}`).toBe(row.name);
      }
      // No gap: the writer's switches up to the newest in the backup are all there.
      const seqs = written.map((row) => Number(String(row.name).slice(3))).sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, k) => k + 1));
    } finally {
      await fs.writeFile(path.join(parent, 'stop'), '');
      writer.kill();
    }
  });

  it('refused with exit 2, nothing touched: over an NB in use without --force, a changed byte, a missing file, another schema', async () => {
    const before = JSON.stringify(comparable(nbNow()));
    const noForce = await cli(['restore', '--dir', dir, '--from', backupDir]);
    expect(noForce.code, noForce.stderr).toBe(2);
    expect(noForce.stderr).toMatch(/is in use \(.*Logical_Switch_Port.*\).*--force/);
    const copy = async (name: string) => {
      const d = path.join(parent, name);
      await fs.cp(backupDir, d, { recursive: true });
      return d;
    };
    const flipped = await copy('flipped');
    const nbFile = await fs.readFile(path.join(flipped, 'nb.db'));
    nbFile[Math.floor(nbFile.length / 2)] = (nbFile[Math.floor(nbFile.length / 2)] ?? 0) ^ 0x01;
    await fs.writeFile(path.join(flipped, 'nb.db'), nbFile);
    const missing = await copy('missing');
    await fs.rm(path.join(missing, 'sb.db'));
    const otherSchema = await copy('other-schema');
    const m = JSON.parse(await fs.readFile(path.join(otherSchema, 'manifest.json'), 'utf8')) as { databases: { nb: { schemaVersion: string } } };
    m.databases.nb.schemaVersion = '1.0.0';
    await fs.writeFile(path.join(otherSchema, 'manifest.json'), JSON.stringify(m));
    for (const [d, why] of [
      [flipped, /nb\.db: sha256 differs from the manifest's/],
      [missing, /sb\.db: missing/],
      [otherSchema, /nb\.db: schema \d+\.\d+\.\d+, the manifest says 1\.0\.0/],
    ] as const) {
      const r = await cli(['restore', '--dir', dir, '--from', d, '--force']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(why);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(JSON.stringify(comparable(nbNow()))).toBe(before);
  });

  it('down -> up -> restore --force: the NB holds exactly the backup (every table, row UUIDs included) and vm1 pings vm2', async () => {
    const want = comparable(parseSnapshot(await fs.readFile(path.join(backupDir, 'nb.db'))).tables);
    await cliOk(['down', '--dir', dir], { timeoutMs: 5 * MIN });
    await cliOk(['up', '--dir', dir, '--no-install'], { timeoutMs: 5 * MIN });
    const fresh = nbNow();
    // A new sandbox: none of the backup's rows exist yet (the seed topology has other UUIDs).
    expect(Object.keys(fresh.Logical_Switch ?? {}).filter((u) => want.Logical_Switch?.[u] !== undefined)).toEqual([]);
    const r = await cliOk(['restore', '--dir', dir, '--from', backupDir, '--force', '--json'], { timeoutMs: 5 * MIN });
    const res = JSON.parse(r.stdout) as { case: string; ms: number; inserted: number; deleted: number };
    figures.restore1000Ms = res.ms;
    expect(res.case).toBe('live');
    expect(res.inserted).toBeGreaterThanOrEqual(1100);
    expect(comparable(nbNow())).toEqual(want);
    let p = ping();
    for (let k = 0; k < 30 && p.code !== 0; k++) {
      await new Promise((res2) => setTimeout(res2, 1000));
      p = ping();
    }
    expect(p.code, p.out).toBe(0);
    // A second restore of the same backup changes nothing.
    const again = JSON.parse((await cliOk(['restore', '--dir', dir, '--from', backupDir, '--force', '--json'])).stdout) as { inserted: number; deleted: number; updated: number };
    expect({ inserted: again.inserted, deleted: again.deleted }).toEqual({ inserted: 0, deleted: 0 });
  });

  it('--keep 2 prunes older backups, only directories backup made', async () => {
    const foreign = path.join(out, 'ovn-backup-20000101T000000000Z');
    await fs.mkdir(foreign);
    await fs.writeFile(path.join(foreign, 'notes.txt'), 'mine');
    const r = await cliOk(['backup', '--dir', dir, '--out', out, '--keep', '2']);
    expect(r.stderr).toMatch(/not pruned: ovn-backup-20000101T000000000Z: holds notes\.txt/);
    const left = (await fs.readdir(out)).filter((n) => n.startsWith('ovn-backup-')).sort();
    // The foreign one (oldest by name) kept; of ours, the newest two.
    expect(left).toHaveLength(3);
    expect(left[0]).toBe('ovn-backup-20000101T000000000Z');
    expect(await fs.readFile(path.join(foreign, 'notes.txt'), 'utf8')).toBe('mine');
    expect(left).not.toContain(path.basename(backupDir));
  });
});
