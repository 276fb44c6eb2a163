#!/usr/bin/env node
/**
 * `ovn-deploy build rpms` against plain `./configure && make` on the same Open vSwitch source
 * (Debian's openvswitch-source, offline), in one run: cold build (empty artifact cache and empty
 * ccache), no-change rebuild, one-file-change rebuild (and plain make's incremental rebuild of the
 * same edit, for reference), then the container image sizes per role. Checks the goals: cold at
 * most 1.15x plain make, no-change under 5 s, one-file change under 40% of cold.
 *
 * Usage: npm run build && node bench/build/run.mjs [--reps N] [--no-images] [--json] [--keep]
 *        OVN_SOURCE=... adds the OVN roles' image sizes (OVN RPMs are built for them).
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const cli = path.join(root, 'dist', 'cli.js');
const OVS_TARBALL = '/usr/src/openvswitch/openvswitch.tar.gz';
const EDIT_FILE = 'utilities/ovs-vsctl.c';
const EDIT_FROM = 'ovs-vswitchd management utility';

function parseArgs(argv) {
  const o = { reps: 1, images: true, json: false, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--no-images') o.images = false;
    else if (a === '--reps') o.reps = Number(argv[++i]);
    else {
      process.stderr.write(`bench/build: unknown option ${a}\nusage: node bench/build/run.mjs [--reps N] [--no-images] [--json] [--keep]\n`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(o.reps) || o.reps < 1) throw new Error('--reps must be a positive integer');
  return o;
}

const log = (line) => process.stderr.write(`${line}\n`);

/** `times` output of bash: its children's user and system CPU, e.g. "0m1.234s 0m0.120s". */
function parseTimes(text) {
  const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(text.trim());
  if (m === null) return undefined;
  return (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000;
}

/**
 * Runs a command; resolves wall milliseconds, CPU milliseconds of the whole process tree (user +
 * system: what the build costs, less disturbed than wall time when other work shares the cores)
 * and stdout. Rejects with the output's tail.
 */
function run(argv, { cwd, env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    // `times` must run in this shell (not a pipe or $(...) subshell) to see its children.
    const wrapped = ['bash', '-c', '"$@"; rc=$?; echo @@times >&2; times >&2; exit $rc', 'bash', ...argv];
    const child = spawn(wrapped[0], wrapped.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('error', reject);
    child.once('close', (code) => {
      const ms = performance.now() - started;
      // The second line after the marker: children's user and system time.
      const cpuMs = parseTimes(/@@times\n.*\n(.*)/.exec(err)?.[1] ?? '') ?? NaN;
      if (code === 0) resolve({ ms, cpuMs, out });
      else reject(new Error(`${argv.join(' ')} exited ${code}:\n${(out + err).slice(-4000)}`));
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms) => `${(ms / 1000).toFixed(1)} s`;

async function extract(dir) {
  await fs.mkdir(dir, { recursive: true });
  await run(['tar', '-xf', OVS_TARBALL, '-C', dir, '--strip-components=1']);
  return dir;
}

async function editOneLine(tree) {
  const file = path.join(tree, EDIT_FILE);
  const text = await fs.readFile(file, 'utf8');
  if (!text.includes(EDIT_FROM)) throw new Error(`${EDIT_FILE} has no '${EDIT_FROM}' to edit`);
  await fs.writeFile(file, text.replace(EDIT_FROM, `${EDIT_FROM} (bench ${Date.now()})`));
}

/** One repetition: plain make and ours on fresh copies, alternating which goes first. */
async function repetition(work, i) {
  const dir = path.join(work, `rep${i}`);
  const plainTree = await extract(path.join(dir, 'plain'));
  const oursTree = await extract(path.join(dir, 'ours'));
  const jobs = String(os.availableParallelism());
  // Same PYTHON3 for both (configure may otherwise find a pyenv shim); no ccache for plain make.
  const plainCold = async () => {
    const c = await run(['./configure', 'PYTHON3=/usr/bin/python3'], { cwd: plainTree });
    const m = await run(['make', `-j${jobs}`], { cwd: plainTree });
    return { ms: c.ms + m.ms, cpuMs: c.cpuMs + m.cpuMs };
  };
  const ours = (out, extra = []) =>
    run(['node', cli, 'build', 'rpms', '--json', '--ovs-source', oursTree, '--out', path.join(dir, out), '--cache-dir', path.join(dir, 'cache'), '--ccache-dir', path.join(dir, 'ccache'), '--jobs', jobs, ...extra]);
  const r = {};
  let p;
  let o;
  if (i % 2 === 0) {
    p = await plainCold();
    o = await ours('out-cold');
  } else {
    o = await ours('out-cold');
    p = await plainCold();
  }
  r.plainCold = p.ms;
  r.plainColdCpu = p.cpuMs;
  r.oursCold = o.ms;
  r.oursColdCpu = o.cpuMs;
  r.loadAfterCold = os.loadavg()[0];
  const noChange = await ours('out-cold');
  r.oursNoChange = noChange.ms;
  r.noChangeCached = JSON.parse(noChange.out).artifacts.every((a) => a.cached);
  await editOneLine(oursTree);
  const changed = await ours('out-changed');
  r.oursOneFile = changed.ms;
  r.oneFileCompiled = JSON.parse(changed.out).artifacts[0]?.compiled;
  await editOneLine(plainTree);
  r.plainOneFile = (await run(['make', `-j${jobs}`], { cwd: plainTree })).ms;
  return r;
}

async function imageSizes(work) {
  const { buildBaseImage } = await import(path.join(root, 'dist', 'packaging', 'base-image.js'));
  const { buildRpms } = await import(path.join(root, 'dist', 'packaging', 'rpm-pipeline.js'));
  const { buildImages } = await import(path.join(root, 'dist', 'packaging', 'image-pipeline.js'));
  const { Podman } = await import(path.join(root, 'dist', 'packaging', 'podman.js'));
  const { ZxRunner } = await import(path.join(root, 'dist', 'runner.js'));
  const persistent = path.join(root, '.cache', 'build-test');
  const t0 = performance.now();
  const base = await buildBaseImage({ out: path.join(work, 'base.tar'), cacheDir: persistent });
  const baseMs = performance.now() - t0;
  const rpms = path.join(work, 'image-rpms');
  const ovn = process.env.OVN_SOURCE;
  await buildRpms({ ovsSource: OVS_TARBALL, ...(ovn ? { ovnSource: ovn } : {}), outDir: rpms, cacheDir: persistent, ccacheDir: path.join(root, '.cache', 'ccache'), progress: 'silent' });
  // This machine's podman needs runc + cgroupfs; a private store keeps the bench's images apart.
  const pd = path.join(work, 'podman');
  await fs.mkdir(pd, { recursive: true });
  const env = { CONTAINERS_CONF: path.join(pd, 'containers.conf'), CONTAINERS_STORAGE_CONF: path.join(pd, 'storage.conf') };
  await fs.writeFile(env.CONTAINERS_CONF, '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n');
  await fs.writeFile(env.CONTAINERS_STORAGE_CONF, `[storage]\ndriver = "overlay"\ngraphroot = "${pd}/graph"\nrunroot = "${pd}/run"\n`);
  const roles = ovn ? ['openvswitch', 'ovn-central', 'ovn-controller'] : ['openvswitch'];
  const t1 = performance.now();
  const r = await buildImages({ rpmsDir: rpms, baseImage: base.out, outDir: path.join(work, 'images'), roles, cacheDir: path.join(work, 'image-cache'), podmanEnv: env, progress: 'silent' });
  const buildMs = performance.now() - t1;
  const podman = new Podman(new ZxRunner(), env);
  const baseBytes = await podman.imageSize(r.baseImageId);
  await podman.run(['system', 'reset', '--force'], { allowFailure: true, timeoutMs: 120_000 });
  return {
    baseRootfs: { cached: base.cached, ms: baseMs, bytes: baseBytes },
    buildMs,
    roles: r.images.map((i) => ({ role: i.role, bytes: i.sizeBytes, overBase: i.sizeBytes - baseBytes, archiveBytes: i.archiveBytes })),
    skipped: ovn ? [] : ['ovn-central', 'ovn-controller (no OVN_SOURCE: no OVN RPMs)'],
  };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(cli)) throw new Error('dist/cli.js is missing: run `npm run build` first');
  if (!existsSync(OVS_TARBALL)) throw new Error(`${OVS_TARBALL} is missing: install openvswitch-source (scripts/install-deps.sh build)`);
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-bench-build-'));
  log(`bench/build: ${os.availableParallelism()} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, work dir ${work}`);
  const reps = [];
  try {
    for (let i = 0; i < o.reps; i++) {
      log(`repetition ${i + 1}/${o.reps}...`);
      const r = await repetition(work, i);
      log(`  plain cold ${s(r.plainCold)} (CPU ${s(r.plainColdCpu)}) | ours cold ${s(r.oursCold)} (CPU ${s(r.oursColdCpu)}) | no-change ${s(r.oursNoChange)} | one file ${s(r.oursOneFile)} (${r.oneFileCompiled} compiled) | plain make after the edit ${s(r.plainOneFile)}`);
      reps.push(r);
    }
    const m = (k) => median(reps.map((r) => r[k]));
    const result = {
      bench: 'build',
      cpus: os.availableParallelism(),
      reps: o.reps,
      loadAverageAtStart: os.loadavg()[0],
      medians: {
        plainColdMs: m('plainCold'),
        plainColdCpuMs: m('plainColdCpu'),
        oursColdMs: m('oursCold'),
        oursColdCpuMs: m('oursColdCpu'),
        oursNoChangeMs: m('oursNoChange'),
        oursOneFileMs: m('oursOneFile'),
        plainOneFileMs: m('plainOneFile'),
      },
      ratios: { coldVsPlain: m('oursCold') / m('plainCold'), coldVsPlainCpu: m('oursColdCpu') / m('plainColdCpu'), oneFileVsCold: m('oursOneFile') / m('oursCold') },
      goals: {
        coldAtMost115xPlain: m('oursCold') / m('plainCold') <= 1.15,
        coldAtMost115xPlainCpu: m('oursColdCpu') / m('plainColdCpu') <= 1.15,
        noChangeUnder5s: m('oursNoChange') < 5000 && reps.every((r) => r.noChangeCached),
        oneFileUnder40pctOfCold: m('oursOneFile') / m('oursCold') < 0.4,
      },
      repetitions: reps,
    };
    if (o.images) {
      log('image sizes...');
      result.images = await imageSizes(work);
    }
    const lines = [
      '| step | plain ./configure && make | ovn-deploy build rpms | ratio |',
      '|---|---|---|---|',
      `| cold, wall | ${s(result.medians.plainColdMs)} | ${s(result.medians.oursColdMs)} | ${result.ratios.coldVsPlain.toFixed(2)}x (goal <= 1.15x: ${result.goals.coldAtMost115xPlain ? 'met' : 'MISSED'}) |`,
      `| cold, CPU (user+sys) | ${s(result.medians.plainColdCpuMs)} | ${s(result.medians.oursColdCpuMs)} | ${result.ratios.coldVsPlainCpu.toFixed(2)}x (goal <= 1.15x: ${result.goals.coldAtMost115xPlainCpu ? 'met' : 'MISSED'}) |`,
      `| no change | - | ${s(result.medians.oursNoChangeMs)} | goal < 5 s: ${result.goals.noChangeUnder5s ? 'met' : 'MISSED'} |`,
      `| one-file change | ${s(result.medians.plainOneFileMs)} (incremental make) | ${s(result.medians.oursOneFileMs)} | ${(result.ratios.oneFileVsCold * 100).toFixed(0)}% of cold (goal < 40%: ${result.goals.oneFileUnder40pctOfCold ? 'met' : 'MISSED'}) |`,
    ];
    if (result.images) {
      lines.push('', '| image | size | over the base | OCI archive |', '|---|---|---|---|');
      lines.push(`| base (local Debian minbase + rpm + libs) | ${(result.images.baseRootfs.bytes / 1e6).toFixed(1)} MB | - | - |`);
      for (const r of result.images.roles) lines.push(`| ${r.role} | ${(r.bytes / 1e6).toFixed(1)} MB | ${(r.overBase / 1e6).toFixed(1)} MB | ${(r.archiveBytes / 1e6).toFixed(1)} MB |`);
      for (const sk of result.images.skipped) lines.push(`| ${sk} | skipped | | |`);
    }
    const outDir = path.join(root, '.bench-out', 'build');
    await fs.mkdir(outDir, { recursive: true });
    await fs.writeFile(path.join(outDir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
    await fs.writeFile(path.join(outDir, 'result.md'), `${lines.join('\n')}\n`);
    if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    if (!o.keep) await fs.rm(work, { recursive: true, force: true });
    else log(`kept ${work}`);
  }
}

main().catch((err) => {
  process.stderr.write(`bench/build: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
