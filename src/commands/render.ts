/**
 * `ovn-deploy render --inventory site.yaml --out DIR`: one bundle per host (config files + a
 * manifest with checksums), rendered in memory first so bad input writes nothing, then written
 * atomically; files of a bundle that are no longer rendered are removed.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { applyFiles, readIfExists, type FileContent } from '../fsx.js';
import { loadInventory, type Inventory } from '../inventory/index.js';
import { renderSite } from '../render/index.js';
import { bundleSigner, readMetadataSecret, readSitePki } from '../deploy/site-pki.js';
import { packageVersion } from '../version.js';
import { MANIFEST_FILE } from '../bundle/manifest.js';
import { inputError } from '../errors.js';
import { err, out, printJson } from './cli-io.js';

export interface RenderCommandOptions {
  inventory: string;
  out: string;
  pki: string;
  metadataSecretFile?: string;
  json?: boolean;
}

export interface RenderSummary {
  out: string;
  hosts: { host: string; written: string[]; unchanged: number; removed: string[] }[];
  removedBundles: string[];
  warnings: string[];
}

/** Every file below `dir`, relative to it (none when it does not exist). */
async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const entries = await fs.readdir(path.join(dir, prefix), { withFileTypes: true }).catch(() => []);
  const found: string[] = [];
  for (const e of entries) {
    const rel = path.join(prefix, e.name);
    if (e.isDirectory()) found.push(...(await listFiles(dir, rel)));
    else found.push(rel);
  }
  return found;
}

/** Removes `rel` (a directory under `dir`) and its parents below `dir` while they are empty. */
async function pruneEmptyParents(dir: string, rel: string): Promise<void> {
  for (let d = rel; d !== '.' && d !== '' && d !== path.sep; d = path.dirname(d)) {
    const entries = await fs.readdir(path.join(dir, d)).catch(() => ['?']);
    if (entries.length > 0) return;
    await fs.rmdir(path.join(dir, d));
  }
}

/** A directory under --out that holds a bundle of this site for a host no longer in the inventory. */
async function isStaleBundle(dir: string, inv: Inventory): Promise<boolean> {
  const raw = await readIfExists(path.join(dir, MANIFEST_FILE));
  if (raw === undefined) return false;
  try {
    const m = JSON.parse(raw.toString('utf8')) as { site?: unknown; host?: unknown };
    return m.site === inv.site && m.host === path.basename(dir) && !inv.hosts.some((h) => h.name === m.host);
  } catch {
    return false;
  }
}

const WRITE_CONCURRENCY = 16;

/** fn over items with at most `limit` in flight; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}


export async function runRender(o: RenderCommandOptions): Promise<RenderSummary> {
  const outStat = await fs.stat(o.out).catch(() => undefined);
  if (outStat !== undefined && !outStat.isDirectory()) throw inputError('is not a directory: --out names the directory the bundles go into', '--out', o.out);
  const { inventory: inv, warnings: invWarnings } = await loadInventory(o.inventory);
  const { pki, warnings } = await readSitePki(o.pki);
  const metadataSecret = await readMetadataSecret(o.metadataSecretFile);
  const signer = await bundleSigner(o.pki);
  const rendered = renderSite(inv, pki, { generator: `ovn-deploy ${packageVersion()}`, signer, ...(metadataSecret === undefined ? {} : { metadataSecret }) });

  const outDir = path.resolve(o.out);
  const summary: RenderSummary = { out: outDir, hosts: [], removedBundles: [], warnings: [...invWarnings.map((w) => `${o.inventory}: ${w}`), ...warnings] };
  // Group the rendered map by host once (a prefix scan per host would be quadratic).
  const plans = new Map<string, Map<string, FileContent>>(inv.hosts.map((h) => [h.name, new Map()]));
  for (const [rel, file] of rendered) {
    const slash = rel.indexOf('/');
    plans.get(rel.slice(0, slash))?.set(rel.slice(slash + 1), file);
  }
  // Hosts are independent directories: write several at once (each file is fsynced).
  summary.hosts = await mapLimit(inv.hosts, WRITE_CONCURRENCY, async (host) => {
    const plan = plans.get(host.name) ?? new Map<string, FileContent>();
    const hostDir = path.join(outDir, host.name);
    const report = await applyFiles(hostDir, plan);
    const removed: string[] = [];
    for (const rel of await listFiles(hostDir)) {
      if (plan.has(rel)) continue;
      await fs.rm(path.join(hostDir, rel), { force: true });
      await pruneEmptyParents(hostDir, path.dirname(rel));
      removed.push(rel);
    }
    return { host: host.name, written: report.written.map((f) => path.relative(hostDir, f)), unchanged: report.unchanged.length, removed };
  });
  for (const entry of await fs.readdir(outDir, { withFileTypes: true })) {
    const dir = path.join(outDir, entry.name);
    if (entry.isDirectory() && (await isStaleBundle(dir, inv))) {
      await fs.rm(dir, { recursive: true, force: true });
      summary.removedBundles.push(entry.name);
    }
  }
  return summary;
}

export function renderCommand(): Command {
  return new Command('render')
    .description('render one bundle per host (config files, systemd units, manifest with checksums) into --out; no keys, deterministic')
    .requiredOption('--inventory <file>', 'the site file, e.g. site.yaml')
    .requiredOption('--out <dir>', 'output directory: one <host>/ bundle per host')
    .option('--pki <dir>', 'PKI directory (`pki init`): its CA bundle and CRL go into every bundle', 'pki')
    .option('--metadata-secret-file <file>', 'file holding the metadata proxy shared secret (hosts with the metadata-agent role)')
    .option('--json', 'print the summary as JSON')
    .action(async (o: RenderCommandOptions) => {
      const s = await runRender(o);
      if (o.json) {
        printJson(s);
        return;
      }
      for (const w of s.warnings) err(`warning: ${w}`);
      for (const h of s.hosts) {
        const removed = h.removed.length > 0 ? `, ${h.removed.length} removed` : '';
        out(`${h.host}: ${h.written.length} written, ${h.unchanged} unchanged${removed}`);
      }
      for (const b of s.removedBundles) out(`${b}: removed (no longer in the inventory)`);
      const written = s.hosts.reduce((n, h) => n + h.written.length, 0);
      out(`rendered ${s.hosts.length} host bundles into ${s.out} (${written} files written)`);
    });
}
