#!/usr/bin/env node
/**
 * Wall time of `ovn-deploy deploy` (the built CLI, as an operator runs it) on fresh sites of 1, 3
 * and 6 hosts (podman containers from test/helpers/site-hosts.ts: 1 central; 1 central + 2
 * workers; 3 centrals + 3 workers), then of a second deploy that changes nothing. Reports the
 * times, the time per host and how much each extra host adds.
 *
 * The site helper is TypeScript: it is transpiled here (typescript's transpileModule) into
 * .cache/bench-deploy with its `../../src/*.js` imports pointed at the built dist/, so no extra
 * loader is needed.
 *
 * Usage: npm run bench:deploy  (= npm run build && node bench/deploy/run.mjs [--sizes 1,3,6] [--json])
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const cli = path.join(root, 'dist', 'cli.js');
const SHAPES = { 1: { centrals: 1, workers: 0 }, 3: { centrals: 1, workers: 2 }, 6: { centrals: 3, workers: 3 } };

function parseArgs(argv) {
  const o = { sizes: [1, 3, 6], json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--sizes') o.sizes = String(argv[++i]).split(',').map(Number);
    else {
      process.stderr.write(`bench/deploy: unknown option ${a}\nusage: node bench/deploy/run.mjs [--sizes 1,3,6] [--json]\n`);
      process.exit(2);
    }
  }
  for (const s of o.sizes) if (SHAPES[s] === undefined) throw new Error(`--sizes: ${s} is not one of ${Object.keys(SHAPES).join(', ')}`);
  return o;
}

/** Transpiles test/helpers/<name>.ts and the helpers it imports; src imports go to dist/. */
async function loadHelper(name) {
  const ts = (await import('typescript')).default;
  const outDir = path.join(root, '.cache', 'bench-deploy', 'helpers');
  mkdirSync(outDir, { recursive: true });
  const done = new Set();
  const emit = (base) => {
    if (done.has(base)) return;
    done.add(base);
    const src = readFileSync(path.join(root, 'test', 'helpers', `${base}.ts`), 'utf8');
    let js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    js = js.replace(/from '\.\.\/\.\.\/src\/([^']+)'/g, (_m, p) => `from '${pathToFileURL(path.join(root, 'dist', p)).href}'`);
    for (const m of js.matchAll(/from '\.\/([^']+)\.js'/g)) emit(m[1]);
    writeFileSync(path.join(outDir, `${base}.js`), js);
  };
  emit(name);
  return import(pathToFileURL(path.join(outDir, `${name}.js`)).href);
}

function run(args) {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
  });
}

async function benchSize(createTestSite, size) {
  const shape = SHAPES[size];
  const t0 = performance.now();
  const site = await createTestSite(shape);
  const siteMs = performance.now() - t0;
  try {
    const args = ['deploy', '--inventory', site.inventoryFile, '--pki', site.pkiDir, '--known-hosts', site.knownHostsFile, '--identity', site.identityFile, '--json'];
    const first = await run(args);
    if (first.code !== 0) throw new Error(`first deploy of ${size} hosts exited ${first.code}:\n${first.stdout}\n${first.stderr.slice(-3000)}`);
    const second = await run(args);
    if (second.code !== 0) throw new Error(`second deploy of ${size} hosts exited ${second.code}:\n${second.stdout}\n${second.stderr.slice(-3000)}`);
    const changes = JSON.parse(second.stdout).hosts.reduce((n, h) => n + h.changeCount, 0);
    const perHost = JSON.parse(first.stdout).hosts.map((h) => ({ host: h.host, ms: h.durationMs }));
    return { hosts: size, ...shape, siteSetupMs: Math.round(siteMs), firstMs: Math.round(first.ms), secondMs: Math.round(second.ms), secondChanges: changes, firstPerHost: perHost };
  } finally {
    await site.cleanup();
  }
}

const opts = parseArgs(process.argv.slice(2));
if (!existsSync(cli)) {
  process.stderr.write('bench/deploy: dist/cli.js is missing: run `npm run build` first (npm run bench:deploy does)\n');
  process.exit(2);
}
const { createTestSite } = await loadHelper('site-hosts');
const rows = [];
for (const size of opts.sizes) {
  process.stderr.write(`bench/deploy: ${size} host(s)...\n`);
  rows.push(await benchSize(createTestSite, size));
}
const growth = rows.slice(1).map((r, i) => {
  const prev = rows[i];
  return { from: prev.hosts, to: r.hosts, firstMsPerExtraHost: Math.round((r.firstMs - prev.firstMs) / (r.hosts - prev.hosts)), secondMsPerExtraHost: Math.round((r.secondMs - prev.secondMs) / (r.hosts - prev.hosts)) };
});
const report = { machine: { cpus: (await import('node:os')).cpus().length, node: process.version }, rows, growth };
if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else {
  process.stdout.write('HOSTS  SHAPE        FIRST DEPLOY  PER HOST  SECOND (NO CHANGE)  CHANGES\n');
  for (const r of rows) {
    process.stdout.write(
      `${String(r.hosts).padEnd(5)}  ${`${r.centrals}c+${r.workers}w`.padEnd(11)}  ${`${(r.firstMs / 1000).toFixed(1)} s`.padEnd(12)}  ${`${(r.firstMs / r.hosts / 1000).toFixed(1)} s`.padEnd(8)}  ${`${(r.secondMs / 1000).toFixed(1)} s`.padEnd(18)}  ${r.secondChanges}\n`,
    );
  }
  for (const g of growth) process.stdout.write(`${g.from} -> ${g.to} hosts: +${(g.firstMsPerExtraHost / 1000).toFixed(1)} s per extra host (first deploy), +${(g.secondMsPerExtraHost / 1000).toFixed(1)} s (second)\n`);
}
