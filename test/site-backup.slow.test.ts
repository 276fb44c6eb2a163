/**
 * Issue 17 end to end: backup, restore and disaster recovery on real hosts, 3 centrals (RAFT) + 2
 * workers + 1 cms host, each a podman container reached only over SSH (test/helpers/site-hosts.ts),
 * driven through the built CLI (`backup|restore --inventory ...`), the pattern of site-certs.slow.
 *
 * Cases:
 * 1. `backup --out DIR --keep 2` three times: manifest.json + nb.db + sb.db (0600), 3 members per
 *    database, the cluster id central1's ovsdb-server reports; after the third only 2 backups are
 *    left, and a foreign directory named like a backup but holding another file is left (warned).
 *    A backup taken while cms1 writes a switch every 50 ms holds every switch whole or not at all,
 *    and ovsdb-tool reads the file.
 * 3. Refusals (exit 2, the NB unchanged): a changed byte, a missing sb.db, another schemaVersion in
 *    the manifest, a restore over the running non-empty NB without --force; with --force the live
 *    path restores the backup's rows with their UUIDs.
 * 2. Disaster recovery: network1, vm1, vm2 and 200 more ports on 20 switches; a backup; then the
 *    databases of ALL three centrals are destroyed; `restore --pki` creates a new cluster from the
 *    backup: 3 members per database, the backup's rows and UUIDs, both chassis back, ping works.
 *
 * How the databases are destroyed: site-hosts.ts cannot recreate a host's container with a fresh
 * filesystem, and the hosts' own supervisor has no command to stop single services from outside.
 * So each central is powered off (`site.stop`: the container stops, every daemon of it dies at
 * once, as in a power cut), started again (only sshd runs: nothing starts the daemons but a
 * deploy), and then /var/lib/ovn/ovnnb_db.db and ovnsb_db.db (the clustered databases: the RAFT
 * log is that file) and every lock file there are deleted, on all three centrals.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupManifest } from '../src/backup/manifest.js';
import { parseClusterStatus } from '../src/health/cluster-status.js';
import { loadInventory, type Inventory } from '../src/inventory/index.js';
import type { Host } from '../src/inventory/types.js';
import { hostPaths } from '../src/paths.js';
import { ovsdbRemotes, siteTopology } from '../src/site/topology.js';
import { parseSnapshot, type OvsdbSnapshot, type Row, type Tables } from '../src/tools/ovsdb-file.js';
import { createTestSite, type TestSite } from './helpers/site-hosts.js';
import { seedNetwork } from './helpers/site-vm.js';
import { cli, requireBuiltCli, type CliResult } from './sandbox-helpers.js';

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('site-backup.slow.test.ts: skipped, needs root (podman containers)');

const MIN = 60_000;
const hp = hostPaths();
const BACKUP_DIR = /^ovn-backup-\d{8}T\d{6}(\d{3})?Z$/;

/**
 * Columns a comparison of NB contents ignores, and why: ovn-northd and ovn-controller write them
 * from what runs now, not from what an operator configured, so a restore cannot and need not
 * keep them.
 * - NB_Global nb_cfg / nb_cfg_timestamp: bumped by every `ovn-nbctl --wait` (restore's own
 *   `--wait=sb sync` too); sb_cfg / hv_cfg and their *_timestamp: northd copies what the SB and
 *   the chassis confirmed;
 * - Logical_Switch_Port up: northd sets it from the SB Port_Binding's chassis (false while the
 *   new SB has not seen the chassis claim the port yet, then true again);
 * - Logical_Router_Port status: northd's view of the port (e.g. hosting-chassis).
 */
const IGNORED: Record<string, readonly string[]> = {
  NB_Global: ['nb_cfg', 'nb_cfg_timestamp', 'sb_cfg', 'sb_cfg_timestamp', 'hv_cfg', 'hv_cfg_timestamp'],
  Logical_Switch_Port: ['up'],
  Logical_Router_Port: ['status'],
};
const comparable = (tables: Tables): Record<string, Record<string, Row>> =>
  Object.fromEntries(
    Object.entries(tables)
      .filter(([, rows]) => Object.keys(rows).length > 0)
      .map(([t, rows]) => [
        t,
        Object.fromEntries(Object.entries(rows).map(([u, r]) => [u, Object.fromEntries(Object.entries(r).filter(([c]) => !(IGNORED[t] ?? []).includes(c)))])),
      ]),
  );
const uuidsOf = (tables: Tables): Record<string, string[]> =>
  Object.fromEntries(
    Object.entries(tables)
      .filter(([, rows]) => Object.keys(rows).length > 0)
      .map(([t, rows]) => [t, Object.keys(rows).sort()]),
  );
/** A string-string map datum (`["map", [[k, v], ...]]`) as an object. */
const mapOf = (d: unknown): Record<string, string> => (Array.isArray(d) && d[0] === 'map' ? Object.fromEntries(d[1] as [string, string][]) : {});

describe.skipIf(notRoot)('backup, restore and disaster recovery on a site over SSH (3 centrals + 2 workers + 1 cms)', () => {
  let site: TestSite;
  let inv: Inventory;
  /** restore (with --pki) and deploy */
  let sel: string[];
  /** backup (no --pki) */
  let sshSel: string[];
  let work: string;
  const figures: Record<string, unknown> = {};

  const exec = async (h: string, argv: string[], allowFailure = false, input?: string) => {
    const r = await site.exec(h, argv, { timeoutMs: 2 * MIN, ...(input === undefined ? {} : { input }) });
    if (!allowFailure && r.code !== 0) throw new Error(`${h}: ${argv.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const names = (role: Host['roles'][number]) => inv.hosts.filter((h) => h.roles.includes(role)).map((h) => h.name);
  const nbDb = () => ovsdbRemotes(siteTopology(inv), 'nb');
  const sbDb = () => ovsdbRemotes(siteTopology(inv), 'sb');
  const nbctl = (args: string[], allowFailure = false) => exec('central1', ['ovn-nbctl', `--db=${nbDb()}`, '--timeout=60', ...args], allowFailure);
  const ping = () => exec('worker1', ['ip', 'netns', 'exec', 'vm1', 'ping', '-c', '3', '-i', '0.2', '-W', '2', '192.168.60.22'], true);
  const backup = async (out: string, extra: string[] = []): Promise<CliResult & { dir: string; manifest: BackupManifest }> => {
    const r = await cli(['backup', ...sshSel, '--out', out, '--json', ...extra], { timeoutMs: 10 * MIN });
    expect(r.code, `backup: ${r.stdout}\n${r.stderr}`).toBe(0);
    const j = JSON.parse(r.stdout) as { dir: string; manifest: BackupManifest };
    return { ...r, dir: j.dir, manifest: j.manifest };
  };
  const restore = (from: string, extra: string[] = []) => cli(['restore', ...sel, '--from', from, ...extra], { timeoutMs: 30 * MIN });
  /** The NB as central1's server has it now: a fresh `ovsdb-client backup` (leader-only), parsed. */
  const nbNow = async (): Promise<OvsdbSnapshot> => {
    const r = await exec('central1', ['ovsdb-client', '--timeout=60', 'backup', `unix:${hp.ovsdbSocket('central1', 'nb')}`, 'OVN_Northbound']);
    return parseSnapshot(Buffer.from(r.stdout, 'utf8'));
  };
  const status = async (c: string, db: 'nb' | 'sb') => {
    const [ctl, name] = db === 'nb' ? [hp.ovn.nbCtl, 'OVN_Northbound'] : [hp.ovn.sbCtl, 'OVN_Southbound'];
    return parseClusterStatus((await exec(c, ['ovn-appctl', '-t', ctl, 'cluster/status', name])).stdout);
  };
  const copyDir = async (from: string, to: string) => {
    await fs.mkdir(to, { recursive: true, mode: 0o700 });
    for (const f of await fs.readdir(from)) await fs.copyFile(path.join(from, f), path.join(to, f));
    return to;
  };

  let lastBackup = '';
  let writerBackup = '';

  beforeAll(async () => {
    requireBuiltCli();
    const t0 = Date.now();
    site = await createTestSite({ centrals: 3, workers: 2, cms: 1 });
    inv = (await loadInventory(site.inventoryFile)).inventory;
    sshSel = ['--inventory', site.inventoryFile, '--known-hosts', site.knownHostsFile, '--identity', site.identityFile];
    sel = ['--inventory', site.inventoryFile, '--pki', site.pkiDir, '--known-hosts', site.knownHostsFile, '--identity', site.identityFile];
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'site-backup-'));
    const d = await cli(['deploy', ...sel, '--json'], { timeoutMs: 20 * MIN });
    expect(d.code, d.stderr.slice(-3000)).toBe(0);
    figures.siteAndDeployMs = Date.now() - t0;
    // network1: vm1 on worker1, vm2 on worker2.
    await seedNetwork(site, nbctl);
    let p = await ping();
    for (let k = 0; k < 30 && p.code !== 0; k++) p = await ping();
    expect(p.code, p.stdout).toBe(0);
  }, 30 * MIN);

  afterAll(async () => {
    console.log(`site-backup figures: ${JSON.stringify(figures)}`);
    await site?.cleanup();
    if (work !== undefined) await fs.rm(work, { recursive: true, force: true });
  }, 10 * MIN);

  it('backup --keep 2, three times: manifest + nb.db + sb.db (0600), 3 members, central1\'s cluster id; 2 left, a foreign look-alike kept with a warning', async () => {
    const out = path.join(work, 'keep');
    await fs.mkdir(out, { mode: 0o700 });
    // Named like a backup, sorting before every real one, with a file backup never writes.
    const foreign = path.join(out, 'ovn-backup-20000101T000000000Z');
    await fs.mkdir(foreign);
    for (const f of ['manifest.json', 'nb.db', 'sb.db', 'notes.txt']) await fs.writeFile(path.join(foreign, f), 'x');
    const cid = (await exec('central1', ['ovs-appctl', '-t', hp.ovn.nbCtl, 'cluster/cid', 'OVN_Northbound'])).stdout.trim();
    const sbCid = (await exec('central1', ['ovs-appctl', '-t', hp.ovn.sbCtl, 'cluster/cid', 'OVN_Southbound'])).stdout.trim();
    const dirs: string[] = [];
    const stderrs: string[] = [];
    const ms: number[] = [];
    for (let k = 0; k < 3; k++) {
      const b = await backup(out, ['--keep', '2']);
      ms.push(b.ms);
      dirs.push(b.dir);
      stderrs.push(b.stderr);
      expect((await fs.readdir(b.dir)).sort()).toEqual(['manifest.json', 'nb.db', 'sb.db']);
      for (const f of ['manifest.json', 'nb.db', 'sb.db']) expect((await fs.stat(path.join(b.dir, f))).mode & 0o777, f).toBe(0o600);
      const m = JSON.parse(await fs.readFile(path.join(b.dir, 'manifest.json'), 'utf8')) as BackupManifest;
      expect(m).toEqual(b.manifest);
      expect(m.databases.nb.members.length).toBe(3);
      expect(m.databases.sb.members.length).toBe(3);
      expect(m.databases.nb.clusterId).toBe(cid);
      expect(m.databases.sb.clusterId).toBe(sbCid);
      expect(parseSnapshot(await fs.readFile(path.join(b.dir, 'nb.db'))).tables.Logical_Switch_Port).toBeDefined();
      // Distinct names (they are per millisecond).
      await new Promise((r) => setTimeout(r, 20));
    }
    figures.backupMs = ms;
    const left = (await fs.readdir(out)).filter((n) => BACKUP_DIR.test(n)).sort();
    expect(left).toEqual([path.basename(foreign), ...dirs.slice(1).map((d) => path.basename(d))]);
    expect(await fs.readdir(foreign)).toContain('notes.txt');
    expect(stderrs.join('\n')).toMatch(new RegExp(`warning: not pruned: ${path.basename(foreign)}: holds notes.txt`));
    lastBackup = dirs[2] as string;

    // A backup under a writer: cms1 adds a switch and its external_ids in one transaction every 50 ms.
    const stopFile = '/tmp/stop-writer';
    const loop =
      `i=0; while [ ! -e ${stopFile} ]; do i=$((i+1)); ` +
      `if ovn-nbctl --db=${nbDb()} --timeout=10 --may-exist ls-add bw-$i -- set Logical_Switch bw-$i external_ids:writer=$i external_ids:pair=bw-$i >/dev/null 2>>/tmp/writer.err; ` +
      `then echo "ok $i"; else echo "fail $i"; fi; sleep 0.05; done > /tmp/writer.log`;
    const writer = site.exec('cms1', ['sh', '-c', loop], { timeoutMs: 15 * MIN });
    await new Promise((r) => setTimeout(r, 3_000));
    const ackedBefore = (await exec('cms1', ['cat', '/tmp/writer.log'])).stdout.split('\n').filter((l) => l.startsWith('ok ')).map((l) => Number(l.slice(3)));
    let b;
    try {
      b = await backup(path.join(work, 'writer'));
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      await exec('cms1', ['touch', stopFile]);
      await writer;
    }
    writerBackup = b.dir;
    figures.backupUnderWriterMs = b.ms;
    const log = (await exec('cms1', ['cat', '/tmp/writer.log'])).stdout.split('\n').filter((l) => l !== '');
    const okAll = log.filter((l) => l.startsWith('ok ')).length;
    figures.writer = { attempted: log.length, ok: okAll, ackedBeforeBackup: ackedBefore.length };
    expect(ackedBefore.length, (await exec('cms1', ['cat', '/tmp/writer.err'], true)).stdout.slice(-2000)).toBeGreaterThan(5);
    const snap = parseSnapshot(await fs.readFile(path.join(b.dir, 'nb.db')));
    const written = Object.values(snap.tables.Logical_Switch ?? {}).filter((r) => typeof r.name === 'string' && r.name.startsWith('bw-'));
    figures.writerSwitchesInBackup = written.length;
    for (const r of written) {
      const i = (r.name as string).slice(3);
      expect(mapOf(r.external_ids), `${String(r.name)}: whole`).toEqual({ writer: i, pair: `bw-${i}` });
    }
    const inBackup = new Set(written.map((r) => r.name));
    for (const i of ackedBefore) expect(inBackup.has(`bw-${i}`), `bw-${i} (acknowledged before the backup started)`).toBe(true);
    expect(written.length).toBeLessThanOrEqual(okAll);
    // ovsdb-tool reads the file (on central1: the admin machine has no OVS tools).
    await exec('central1', ['sh', '-c', 'cat > /tmp/check-nb.db'], false, await fs.readFile(path.join(b.dir, 'nb.db'), 'utf8'));
    expect((await exec('central1', ['ovsdb-tool', 'db-name', '/tmp/check-nb.db'])).stdout.trim()).toBe('OVN_Northbound');
    const q = await exec('central1', ['ovsdb-tool', 'query', '/tmp/check-nb.db', JSON.stringify(['OVN_Northbound', { op: 'select', table: 'Logical_Switch', where: [], columns: ['name'] }])]);
    const qRows = (JSON.parse(q.stdout) as { rows: { name: string }[] }[])[0]?.rows ?? [];
    expect(qRows.filter((r) => r.name.startsWith('bw-')).length).toBe(written.length);
  }, 20 * MIN);

  it('refusals (exit 2, the NB unchanged): a changed byte, a missing sb.db, another schemaVersion, a non-empty NB without --force; with --force the live path restores the backup\'s rows and UUIDs', async () => {
    const before = comparable((await nbNow()).tables);
    const bad = async (label: string, mutate: (dir: string) => Promise<void>, message: RegExp, from?: string) => {
      const dir = from ?? (await copyDir(lastBackup, path.join(work, `bad-${label}`)));
      await mutate(dir);
      const r = await restore(dir);
      expect(r.code, `${label}: ${r.stdout}\n${r.stderr}`).toBe(2);
      expect(r.stderr, label).toMatch(message);
      expect(comparable((await nbNow()).tables), `${label}: the NB unchanged`).toEqual(before);
    };
    await bad(
      'byte',
      async (dir) => {
        const f = path.join(dir, 'nb.db');
        const b = await fs.readFile(f);
        const at = Math.floor(b.length / 2);
        b[at] = b[at] === 0x61 ? 0x62 : 0x61;
        await fs.writeFile(f, b);
      },
      /nb\.db.*sha256 differs/,
    );
    await bad('missing-sb', (dir) => fs.unlink(path.join(dir, 'sb.db')), /sb\.db.*missing/);
    await bad(
      'schema',
      async (dir) => {
        const f = path.join(dir, 'manifest.json');
        const m = JSON.parse(await fs.readFile(f, 'utf8')) as BackupManifest;
        m.databases.nb.schemaVersion = '1.0.0';
        await fs.writeFile(f, JSON.stringify(m));
      },
      /nb\.db.*schema .*the manifest says 1\.0\.0/,
    );
    // The untouched backup over the running NB (it holds network1, vm1, vm2, the writer's switches).
    await bad('no-force', async () => undefined, /in use.*--force/, writerBackup);

    // --force: the live path, one transaction; the NB then holds exactly the first backup's rows.
    const t0 = Date.now();
    const r = await restore(lastBackup, ['--force']);
    figures.restoreLiveMs = Date.now() - t0;
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/\(live\)/);
    const want = parseSnapshot(await fs.readFile(path.join(lastBackup, 'nb.db')));
    const now = await nbNow();
    expect(uuidsOf(now.tables)).toEqual(uuidsOf(want.tables));
    expect(comparable(now.tables)).toEqual(comparable(want.tables));
    await nbctl(['wait-until', 'Logical_Switch_Port', 'vm1', 'up=true', '--', 'wait-until', 'Logical_Switch_Port', 'vm2', 'up=true']);
    let p = await ping();
    for (let k = 0; k < 20 && p.code !== 0; k++) p = await ping();
    expect(p.code, p.stdout).toBe(0);
  }, 30 * MIN);

  it('disaster recovery: every central\'s databases destroyed; restore --pki makes a new 3-member cluster from the backup: its rows and UUIDs, both chassis back, ping vm1 -> vm2', async () => {
    // 200 more ports on 20 switches, in one transaction.
    const args: string[] = [];
    for (let s = 1; s <= 20; s++) {
      args.push('--', 'ls-add', `dr-${s}`);
      for (let p = 1; p <= 10; p++) args.push('--', 'lsp-add', `dr-${s}`, `dr-${s}-${p}`, '--', 'lsp-set-addresses', `dr-${s}-${p}`, `40:44:00:01:${s.toString(16).padStart(2, '0')}:${p.toString(16).padStart(2, '0')}`);
    }
    await nbctl(args.slice(1));
    const b = await backup(path.join(work, 'dr'));
    figures.backupBeforeDrMs = b.ms;
    const want = parseSnapshot(await fs.readFile(path.join(b.dir, 'nb.db')));
    expect(Object.keys(want.tables.Logical_Switch_Port ?? {}).length).toBe(202);
    const oldNbCid = b.manifest.databases.nb.clusterId;
    const oldSbCid = b.manifest.databases.sb.clusterId;

    // The disaster (see the header): power off every central, back with only sshd, databases deleted.
    const centrals = names('central');
    for (const c of centrals) await site.stop(c);
    for (const c of centrals) {
      await site.start(c);
      await exec(c, ['sh', '-c', `rm -f ${hp.ovn.nbDb} ${hp.ovn.sbDb} ${hp.ovn.dbDir}/.*~lock~`]);
      expect((await exec(c, ['ls', '-a', hp.ovn.dbDir])).stdout).not.toMatch(/ovn[ns]b_db\.db/);
    }

    const t0 = Date.now();
    const r = await restore(b.dir);
    figures.restoreDrMs = Date.now() - t0;
    expect(r.code, `${r.stdout}\n${r.stderr.slice(-4000)}`).toBe(0);
    expect(r.stdout).toMatch(/\(disaster-recovery\)/);

    for (const c of centrals) {
      for (const db of ['nb', 'sb'] as const) {
        const st = await status(c, db);
        expect(st.status, `${c} ${db}`).toBe('cluster member');
        expect(st.servers.length, `${c} ${db} members`).toBe(3);
        expect(st.clusterUuid, `${c} ${db}: a new cluster`).not.toBe(db === 'nb' ? oldNbCid : oldSbCid);
      }
    }
    const nbCids = new Set(await Promise.all(centrals.map(async (c) => (await status(c, 'nb')).clusterUuid)));
    expect(nbCids.size, 'one NB cluster').toBe(1);

    const now = await nbNow();
    expect(uuidsOf(now.tables)).toEqual(uuidsOf(want.tables));
    expect(comparable(now.tables)).toEqual(comparable(want.tables));

    // Both chassis registered again in the new SB.
    const chassis = async () =>
      (await exec('central1', ['ovn-sbctl', `--db=${sbDb()}`, '--timeout=30', '--bare', '--columns=hostname', 'list', 'Chassis'], true)).stdout
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '')
        .sort();
    let ch = await chassis();
    for (let k = 0; k < 60 && ch.length < 2; k++) {
      await new Promise((res) => setTimeout(res, 1_000));
      ch = await chassis();
    }
    expect(ch).toEqual(['worker1', 'worker2']);

    const tp = Date.now();
    let p = await ping();
    while (p.code !== 0 && Date.now() - tp < 60_000) p = await ping();
    figures.pingBackAfterRestoreMs = Date.now() - tp;
    expect(p.code, p.stdout).toBe(0);
  }, 40 * MIN);
});
