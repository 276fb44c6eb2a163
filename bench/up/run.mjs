#!/usr/bin/env node
/**
 * `ovn-deploy up` / `down` against a minimal hand-written shell script doing the same steps
 * (bench/up/handwritten.sh), in one run: each repetition times our `up` and `down` (the built
 * CLI, as a user runs it; packages already installed) and the script's, alternating which goes
 * first so that background load hits both alike. Reports medians, the up and down ratios, and
 * whether the goals hold (up at most 1.3x the script and under 10 s, down at most 3x), and the
 * machine's CPU time during each up (the host has 2 CPUs: what one uses, the other cannot).
 *
 * Usage: npm run build && node bench/up/run.mjs [--reps N] [--workers N] [--json] [--keep]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const cli = path.join(root, 'dist', 'cli.js');
const script = path.join(here, 'handwritten.sh');

function parseArgs(argv) {
  const o = { reps: 5, workers: 2, json: false, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--reps') o.reps = Number(argv[++i]);
    else if (a === '--workers') o.workers = Number(argv[++i]);
    else {
      process.stderr.write(`bench/up: unknown option ${a}\nusage: node bench/up/run.mjs [--reps N] [--workers N] [--json] [--keep]\n`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(o.reps) || o.reps < 1) throw new Error('--reps must be a positive integer');
  if (o.workers !== 2) {
    process.stderr.write('bench/up: the hand-written script builds exactly 2 workers; --workers other than 2 only times ovn-deploy\n');
  }
  return o;
}

const log = (line) => process.stderr.write(`${line}\n`);

/**
 * CPU time the whole machine has spent so far (every process: ours, its supervisors and daemons,
 * the script's children), in ms: /proc/stat's user, nice, system, irq and softirq ticks.
 */
function machineCpuMs() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq] = fields;
  return ((user + nice + system + irq + softirq) * 1000) / TICKS_PER_SECOND;
}
/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const TICKS_PER_SECOND = 100;

/** Runs a command; returns its wall time and the machine's CPU time meanwhile (ms); throws with its output when it fails. */
function timed(argv, env = {}) {
  return new Promise((resolve, reject) => {
    const cpuBefore = machineCpuMs();
    const started = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('close', (code) => {
      const ms = performance.now() - started;
      if (code === 0) resolve({ ms, cpuMs: machineCpuMs() - cpuBefore });
      else reject(new Error(`${argv.join(' ')} exited ${code}:\n${out.slice(-4000)}`));
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function ours(work, rep, workers) {
  const dir = path.join(work, `ours-${rep}`);
  // CI=true: the plain renderer, as in a pipeline; --quiet would hide nothing we time.
  const up = await timed([process.execPath, cli, 'up', '--dir', dir, '--workers', String(workers), '--quiet'], { CI: 'true' });
  const down = await timed([process.execPath, cli, 'down', '--dir', dir]);
  return { up: up.ms, down: down.ms, upCpu: up.cpuMs };
}

async function handwritten(work, rep) {
  const dir = path.join(work, `hw-${rep}`);
  const prefix = `hw${randomBytes(2).toString('hex')}`;
  try {
    const up = await timed(['bash', script, 'up', dir, prefix]);
    const down = await timed(['bash', script, 'down', dir, prefix]);
    return { up: up.ms, down: down.ms, upCpu: up.cpuMs };
  } catch (err) {
    await timed(['bash', script, 'down', dir, prefix]).catch(() => undefined);
    throw err;
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('bench/up needs root (namespaces, daemons)');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'od-bench-up-'));
  const samples = { ours: [], handwritten: [] };
  const load = os.loadavg()[0];
  try {
    // One unmeasured round each: page cache, first-run costs of the package manager's files.
    log('bench/up: warm-up round');
    await ours(work, 'warm', o.workers);
    if (o.workers === 2) await handwritten(work, 'warm');
    for (let rep = 0; rep < o.reps; rep++) {
      const order = rep % 2 === 0 ? ['ours', 'handwritten'] : ['handwritten', 'ours'];
      for (const who of order) {
        if (who === 'handwritten' && o.workers !== 2) continue;
        const r = who === 'ours' ? await ours(work, rep, o.workers) : await handwritten(work, rep);
        samples[who].push(r);
        log(`bench/up: rep ${rep + 1}/${o.reps} ${who.padEnd(11)} up ${(r.up / 1000).toFixed(2)} s (CPU ${(r.upCpu / 1000).toFixed(2)} s)  down ${(r.down / 1000).toFixed(2)} s`);
      }
    }
  } finally {
    if (!o.keep) await fs.rm(work, { recursive: true, force: true });
  }
  const stat = (xs, k) => (xs.length === 0 ? null : median(xs.map((x) => x[k])));
  const result = {
    reps: o.reps,
    workers: o.workers,
    loadAverageAtStart: Number(load.toFixed(2)),
    cpus: os.cpus().length,
    medianMs: {
      ours: { up: stat(samples.ours, 'up'), down: stat(samples.ours, 'down'), upCpu: stat(samples.ours, 'upCpu') },
      handwritten: { up: stat(samples.handwritten, 'up'), down: stat(samples.handwritten, 'down'), upCpu: stat(samples.handwritten, 'upCpu') },
    },
    samplesMs: samples,
  };
  const hw = result.medianMs.handwritten;
  const us = result.medianMs.ours;
  result.ratio = {
    up: hw.up === null ? null : Number((us.up / hw.up).toFixed(2)),
    down: hw.down === null ? null : Number((us.down / hw.down).toFixed(2)),
    upCpu: hw.upCpu === null ? null : Number((us.upCpu / hw.upCpu).toFixed(2)),
  };
  result.goals = {
    upWithin1_3x: result.ratio.up === null ? null : result.ratio.up <= 1.3,
    downWithin3x: result.ratio.down === null ? null : result.ratio.down <= 3,
    upUnder10s: us.up < 10_000,
  };
  if (!o.json) {
    const f = (ms) => (ms === null ? '-' : `${(ms / 1000).toFixed(2)} s`);
    const verdict = (goal) => (goal === null ? 'n/a' : goal ? 'met' : 'NOT met');
    process.stdout.write(
      [
        `bench/up: ${o.reps} reps, ${o.workers} workers, ${result.cpus} CPUs, load average ${result.loadAverageAtStart} at start`,
        '',
        '                 up (median)   down (median)   machine CPU during up (median)',
        `  ovn-deploy     ${f(us.up).padEnd(13)} ${f(us.down).padEnd(15)} ${f(us.upCpu)}`,
        `  hand-written   ${f(hw.up).padEnd(13)} ${f(hw.down).padEnd(15)} ${f(hw.upCpu)}`,
        `  ratio          ${String(result.ratio.up ?? '-').padEnd(13)} ${String(result.ratio.down ?? '-').padEnd(15)} ${result.ratio.upCpu ?? '-'}`,
        '',
        `goal up <= 1.3x hand-written: ${verdict(result.goals.upWithin1_3x)}; down <= 3x: ${verdict(result.goals.downWithin3x)}; up < 10 s: ${verdict(result.goals.upUnder10s)}`,
        '',
      ].join('\n'),
    );
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench/up: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
