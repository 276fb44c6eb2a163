#!/usr/bin/env node
/**
 * CLI start-up benchmark: wall time of `ovn-deploy --version`, `--help`, `validate` of the example
 * site (`init` writes it) and `status --json` with no sandbox, each against `node -e 0` measured
 * in the same run (runs interleaved, so load on the machine hits every case alike). Medians of
 * --runs runs and their ratios to `node -e 0`. Goal: --version and --help at most 2x.
 *
 * Usage: npm run bench:cli          (builds first)
 *        node bench/cli/run.mjs [--runs N] [--json]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.resolve(here, '..', '..', 'dist', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write('bench/cli: dist/ is missing: run `npm run build` first\n');
  process.exit(1);
}

function args(argv) {
  const o = { runs: 21, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--runs') {
      o.runs = Number(argv[++i]);
      if (!Number.isSafeInteger(o.runs) || o.runs < 1) {
        process.stderr.write('bench/cli: --runs needs a positive integer\n');
        process.exit(2);
      }
    } else {
      process.stderr.write(`bench/cli: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return o;
}

const opts = args(process.argv.slice(2));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

const work = mkdtempSync(path.join(os.tmpdir(), 'ovn-deploy-bench-cli-'));
try {
  const site = path.join(work, 'site.yaml');
  const init = spawnSync(process.execPath, [cli, 'init', '--out', site], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`init failed: ${init.stderr}`);
  const cases = [
    { name: 'node -e 0', argv: ['-e', '0'], exit: 0 },
    { name: '--version', argv: [cli, '--version'], exit: 0, goal: 2 },
    { name: '--help', argv: [cli, '--help'], exit: 0, goal: 2 },
    { name: 'validate site.yaml', argv: [cli, 'validate', site], exit: 0 },
    // No sandbox in this directory: exit 3, the answer a monitoring loop gets before `up`.
    { name: 'status --json (no sandbox)', argv: [cli, 'status', '--json', '--dir', path.join(work, 'no-sandbox')], exit: 3 },
  ];
  const samples = new Map(cases.map((c) => [c.name, []]));
  const once = (c) => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, c.argv, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    const s = (performance.now() - t0) / 1000;
    if (r.status !== c.exit) throw new Error(`${c.name}: exit ${r.status} (expected ${c.exit}): ${r.stderr}`);
    return s;
  };
  for (const c of cases) once(c); // warm the page cache
  for (let i = 0; i < opts.runs; i++) for (const c of cases) samples.get(c.name).push(once(c));

  const base = median(samples.get('node -e 0'));
  const rows = cases.map((c) => {
    const m = median(samples.get(c.name));
    const ratio = m / base;
    return { case: c.name, medianSeconds: round(m), ratio: round(ratio, 2), ...(c.goal === undefined ? {} : { goalRatio: c.goal, met: ratio <= c.goal }) };
  });
  const result = { runs: opts.runs, cpus: os.cpus().length, loadAverage: round(os.loadavg()[0], 2), node: process.version, rows };
  if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    const table = [['case', 'median s', 'x node -e 0', 'goal'], ...rows.map((r) => [r.case, r.medianSeconds.toFixed(3), `${r.ratio.toFixed(2)}x`, r.goalRatio === undefined ? '' : `<= ${r.goalRatio}x: ${r.met ? 'met' : 'NOT met'}`])];
    const w = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
    const out = table.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
    out.push(`medians of ${opts.runs} runs each, interleaved; ${result.cpus} CPUs, load average ${result.loadAverage}`, JSON.stringify(result));
    process.stdout.write(`${out.join('\n')}\n`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
