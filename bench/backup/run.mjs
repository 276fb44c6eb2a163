#!/usr/bin/env node
/**
 * Backup and restore benchmark (issue 17): on a sandbox (`up` in a temporary directory), with
 * N logical switch ports on 100 switches (default N = 1,000 and 10,000), wall time of
 * `ovn-deploy backup` against `ovsdb-client backup` of the same NB (the floor: ours also takes
 * the SB, cluster facts and versions, writes durably), and of `ovn-deploy restore --force`
 * against `ovsdb-client restore` of the same file (which gives every row a new UUID; ours keeps
 * them and waits for ovn-northd). Each restore replaces the whole NB: ovsdb-client's ran just
 * before with other UUIDs. Runs interleaved; medians of --runs and the ratios.
 *
 * Usage: npm run bench:backup        (builds first)
 *        node bench/backup/run.mjs [--ports 1000,10000] [--runs N] [--json]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.resolve(here, '..', '..', 'dist', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write('bench/backup: dist/ is missing: run `npm run build` first\n');
  process.exit(1);
}
if (process.getuid?.() !== 0) {
  process.stderr.write('bench/backup: needs root (a sandbox)\n');
  process.exit(1);
}

const o = { ports: [1000, 10000], runs: 3, json: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--json') o.json = true;
  else if (argv[i] === '--runs') o.runs = Number(argv[++i]);
  else if (argv[i] === '--ports') o.ports = String(argv[++i]).split(',').map(Number);
  else {
    process.stderr.write(`bench/backup: unknown argument ${argv[i]}\n`);
    process.exit(2);
  }
}
if (!Number.isSafeInteger(o.runs) || o.runs < 1 || o.ports.some((n) => !Number.isSafeInteger(n) || n < 100 || n > 100_000)) {
  process.stderr.write('bench/backup: --runs N >= 1, --ports between 100 and 100000\n');
  process.exit(2);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { maxBuffer: 1024 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')}: exit ${r.status}: ${String(r.stderr).slice(-500)}`);
  return r.stdout;
};
const timed = (fn) => {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
};

const work = mkdtempSync(path.join(os.tmpdir(), 'ovn-deploy-bench-backup-'));
const dir = path.join(work, 'sandbox');
const nb = `unix:${path.join(dir, 'hosts', 'operator', 'var', 'run', 'ovn-deploy', 'ovsdb', 'central.nb')}`;
const results = [];
try {
  run(process.execPath, [cli, 'up', '--dir', dir, '--no-install']);
  for (const n of o.ports) {
    // 100 switches of n/100 ports, in batches of commands small enough for one argv.
    run('ovn-nbctl', [`--db=${nb}`, '--timeout=120', '--', '--if-exists', 'ls-del', 'x', ...[...Array(100).keys()].flatMap((s) => ['--', '--if-exists', 'ls-del', `bench-sw${s}`])]);
    const per = n / 100;
    for (let s = 0; s < 100; s++) {
      const args = ['--', 'ls-add', `bench-sw${s}`];
      for (let p = 0; p < per; p++) {
        const port = `bench-sw${s}-p${p}`;
        args.push('--', 'lsp-add', `bench-sw${s}`, port, '--', 'lsp-set-addresses', port, `0a:00:00:${(s & 0xff).toString(16).padStart(2, '0')}:${(p >> 8).toString(16).padStart(2, '0')}:${(p & 0xff).toString(16).padStart(2, '0')} 10.${s}.${p >> 8}.${(p & 0xff) + 1}`);
      }
      run('ovn-nbctl', [`--db=${nb}`, '--timeout=120', ...args.slice(1)]);
    }
    const out = path.join(work, `backups-${n}`);
    const samples = { ours: [], floor: [], restore: [], restoreFloor: [], transact: [], northd: [] };
    let file;
    for (let i = 0; i < o.runs; i++) {
      samples.floor.push(timed(() => run('ovsdb-client', ['backup', nb, 'OVN_Northbound'])));
      samples.ours.push(timed(() => run(process.execPath, [cli, 'backup', '--dir', dir, '--out', out])));
      const latest = readdirSync(out).filter((d) => d.startsWith('ovn-backup-')).sort().pop();
      file = path.join(out, latest);
      // ovsdb-client restore seeks in its input: a file, not a pipe.
      const nbFile = path.join(file, 'nb.db');
      samples.restoreFloor.push(timed(() => run('sh', ['-c', 'exec ovsdb-client restore "$1" OVN_Northbound < "$2"', 'sh', nb, nbFile])));
      let res;
      samples.restore.push(timed(() => (res = JSON.parse(String(run(process.execPath, [cli, 'restore', '--dir', dir, '--from', file, '--force', '--json']))))));
      samples.transact.push(res.transactMs / 1000);
      samples.northd.push(res.northdMs / 1000);
    }
    const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
    results.push({
      ports: n,
      nbBytes: readFileSync(path.join(file, 'nb.db')).length,
      backupSeconds: round(m.ours),
      ovsdbClientBackupSeconds: round(m.floor),
      backupRatio: round(m.ours / m.floor, 2),
      restoreSeconds: round(m.restore),
      ovsdbClientRestoreSeconds: round(m.restoreFloor),
      restoreRatio: round(m.restore / m.restoreFloor, 2),
      restoreTransactionSeconds: round(m.transact),
      restoreNorthdSeconds: round(m.northd),
    });
  }
} finally {
  spawnSync(process.execPath, [cli, 'down', '--dir', dir], { stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}
const result = { runs: o.runs, cpus: os.cpus().length, loadAverage: round(os.loadavg()[0], 2), node: process.version, results };
if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  for (const r of results) {
    process.stdout.write(
      `${r.ports} ports (NB ${(r.nbBytes / 1e6).toFixed(1)} MB): backup ${r.backupSeconds} s (ovsdb-client backup ${r.ovsdbClientBackupSeconds} s, ${r.backupRatio}x); ` +
        `restore ${r.restoreSeconds} s (ovsdb-client restore ${r.ovsdbClientRestoreSeconds} s, ${r.restoreRatio}x; of it the transaction ${r.restoreTransactionSeconds} s, ovn-northd catching up ${r.restoreNorthdSeconds} s)\n`,
    );
  }
  process.stdout.write(`medians of ${o.runs} runs; ${result.cpus} CPUs, load average ${result.loadAverage}\n${JSON.stringify(result)}\n`);
}
