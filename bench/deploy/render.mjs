#!/usr/bin/env node
/**
 * `render` benchmark: an inventory of 1000 hosts (3 centrals + 997 workers, every 10th worker
 * with the metadata agent, every 5th on the userspace datapath) rendered in memory from the built
 * dist, median of --reps runs, against a 10-host baseline in the same run (per-host cost), plus
 * the whole CLI (`node dist/cli.js render`: Node start, YAML parsing, rendering and writing every
 * file atomically) into an empty directory and again with nothing changed, --reps times each.
 * The in-memory render is the floor the CLI is compared with. Goals: 1000 hosts through the CLI
 * into an empty --out under 3 s, with nothing changed under 1.5 s.
 *
 * Usage: npm run bench:render          (builds first)
 *        node bench/deploy/render.mjs [--hosts N] [--reps R] [--json] [--no-cli]
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '..', '..', 'dist');
const load = (p) =>
  import(path.join(dist, p)).catch(() => {
    process.stderr.write('bench/deploy/render: dist/ is missing or stale: run `npm run build` first\n');
    process.exit(1);
  });
const { renderSite } = await load('render/index.js');
const { validateInventory } = await load('inventory/index.js');
const { initPki } = await load('pki/index.js');
const { pkiPaths } = await load('paths.js');
const { stringify } = await import('yaml');

function args(argv) {
  const o = { hosts: 1000, reps: 5, json: false, cli: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < (a === "--hosts" ? 4 : 1)) {
        process.stderr.write(`bench/deploy/render: ${a} needs a larger integer (--hosts >= 4, --reps >= 1)\n`);
        process.exit(2);
      }
      return v;
    };
    if (a === '--hosts') o.hosts = num();
    else if (a === '--reps') o.reps = num();
    else if (a === '--json') o.json = true;
    else if (a === '--no-cli') o.cli = false;
    else {
      process.stderr.write(`bench/deploy/render: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return o;
}

/** The raw site document of `n` hosts: 3 centrals, the rest workers (addresses in 10.0.0.0/8). */
function siteDoc(n) {
  const ip = (i) => `10.${((i + 1) >> 16) & 255}.${((i + 1) >> 8) & 255}.${(i + 1) & 255}`;
  const hosts = [];
  for (let i = 0; i < n; i++) {
    if (i < 3) {
      hosts.push({ name: `central${i + 1}`, addresses: [ip(i)], roles: ['central'] });
      continue;
    }
    const w = i - 2;
    hosts.push({
      name: `worker${w}`,
      addresses: [ip(i)],
      roles: w % 10 === 0 ? ['worker', 'metadata-agent'] : ['worker'],
      ...(w % 5 === 0 ? { datapath: 'netdev' } : {}),
      encap: { type: 'geneve', ip: ip(i + 65536), ...(w % 5 === 0 ? { interface: 'eth1' } : {}) },
    });
  }
  return { site: 'bench', hosts, metadataAgent: { novaMetadataHost: '10.255.0.5' } };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const opts = args(process.argv.slice(2));
const log = (line) => {
  if (!opts.json) process.stderr.write(`${line}\n`);
};
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-bench-render-'));
try {
  const pkiDir = path.join(dir, 'pki');
  await initPki(pkiDir, { keyBits: 2048, commonName: 'bench' });
  const p = pkiPaths(pkiDir);
  const pki = { caBundlePem: await fs.readFile(p.caBundle, 'utf8'), crlPem: await fs.readFile(p.crl, 'utf8') };
  const secret = 'bench-metadata-shared-secret-0123456789';

  /** Seconds of validate + renderSite, and the files/bytes rendered. */
  const once = (doc) => {
    const t0 = performance.now();
    const { inventory } = validateInventory(doc);
    const files = renderSite(inventory, pki, { metadataSecret: secret, generator: 'bench' });
    const seconds = (performance.now() - t0) / 1000;
    let bytes = 0;
    for (const f of files.values()) bytes += f.content.length;
    return { seconds, files: files.size, bytes };
  };
  const measure = (n) => {
    const doc = siteDoc(n);
    once(doc); // warm-up: module loading, template compilation, JIT
    const runs = Array.from({ length: opts.reps }, () => once(doc));
    return { hosts: n, medianSeconds: median(runs.map((r) => r.seconds)), runs: runs.map((r) => r.seconds), files: runs[0].files, bytes: runs[0].bytes };
  };

  log(`render: ${opts.reps} runs each, ${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(2)}`);
  const baseline = measure(10);
  const big = measure(opts.hosts);
  const perHost = (r) => (r.medianSeconds / r.hosts) * 1000;
  const result = {
    baseline: { ...baseline, msPerHost: perHost(baseline) },
    site: { ...big, msPerHost: perHost(big) },
    goalSeconds: 3,
    goalMet: big.medianSeconds < 3,
  };

  if (opts.cli) {
    // The whole command as a user runs it: Node start, YAML, render, atomic writes.
    const site = path.join(dir, 'site.yaml');
    await fs.writeFile(site, stringify(siteDoc(opts.hosts)));
    await fs.writeFile(path.join(dir, 'secret'), `${secret}\n`);
    const cli = path.join(dist, 'cli.js');
    const run = (into) => {
      const t0 = performance.now();
      execFileSync(process.execPath, [cli, 'render', '--inventory', site, '--out', into, '--pki', pkiDir, '--metadata-secret-file', path.join(dir, 'secret'), '--json'], { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 28 });
      return (performance.now() - t0) / 1000;
    };
    const first = [];
    const unchanged = [];
    // Each run's --out stays until every run is done (removed with the work dir): removing one
    // run's 22,000 files just before the next run's first write made that write 3-10x slower on a
    // filesystem without a journal (ext4 then skips, one by one, every inode freed in the last
    // minutes when it allocates a new one: bench/deploy/README.md). That cost belongs to the
    // bench's own cleanup, not to render.
    for (let i = 0; i < opts.reps; i++) {
      const into = path.join(dir, `out-${i}`);
      first.push(run(into));
      unchanged.push(run(into));
    }
    const floor = big.medianSeconds;
    result.cli = {
      hosts: opts.hosts,
      firstWriteSeconds: median(first),
      unchangedSeconds: median(unchanged),
      runs: { first, unchanged },
      floorSeconds: floor,
      firstWriteRatioToFloor: median(first) / floor,
      unchangedRatioToFloor: median(unchanged) / floor,
      goals: { firstWriteSeconds: 3, unchangedSeconds: 1.5 },
      met: median(first) < 3 && median(unchanged) < 1.5,
    };
  }

  log(`baseline ${baseline.hosts} hosts: median ${baseline.medianSeconds.toFixed(3)} s (${result.baseline.msPerHost.toFixed(2)} ms/host, ${baseline.files} files)`);
  log(
    `site ${big.hosts} hosts: median ${big.medianSeconds.toFixed(3)} s (${result.site.msPerHost.toFixed(2)} ms/host, ${big.files} files, ` +
      `${(big.bytes / 1e6).toFixed(1)} MB) runs ${big.runs.map((s) => s.toFixed(3)).join(' ')}; goal < 3 s: ${result.goalMet ? 'met' : 'NOT met'}`,
  );
  if (result.cli) {
    const c = result.cli;
    log(
      `CLI ${opts.hosts} hosts (median of ${opts.reps}): ${c.firstWriteSeconds.toFixed(2)} s into an empty --out (${c.firstWriteRatioToFloor.toFixed(2)}x the in-memory floor; goal < 3 s), ` +
        `${c.unchangedSeconds.toFixed(2)} s with nothing changed (${c.unchangedRatioToFloor.toFixed(2)}x; goal < 1.5 s): ${c.met ? 'met' : 'NOT met'}`,
    );
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await fs.rm(dir, { recursive: true, force: true });
}
