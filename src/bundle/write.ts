/**
 * `render` into --out: every host's bundle rendered in memory first (bad input writes nothing),
 * then every changed file of every host written as one durable batch (fsx.ts): a bundle's
 * manifest is renamed after its files, unchanged files are not touched, and files no longer
 * rendered (and temp files a killed run left) are removed afterwards.
 */
import fs from 'node:fs';
import path from 'node:path';
import { plannedWrites, writeFilesAtomic, type FileContent, type FileWrite } from '../fsx.js';
import { loadInventory, type Inventory } from '../inventory/index.js';
import { renderSite } from '../render/index.js';
import { readMetadataSecret, readSitePki } from '../deploy/site-pki.js';
import { packageVersion } from '../version.js';
import { MANIFEST_FILE } from './manifest.js';

export interface RenderOutOptions {
  inventory: string;
  out: string;
  pki: string;
  metadataSecretFile?: string;
}

export interface RenderSummary {
  out: string;
  hosts: { host: string; written: string[]; unchanged: number; removed: string[] }[];
  removedBundles: string[];
  warnings: string[];
}

/** Every file below `dir`, relative to it (none when it does not exist). */
function listFiles(dir: string, prefix = ''): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(path.join(dir, prefix), { withFileTypes: true });
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const e of entries) {
    const rel = path.join(prefix, e.name);
    if (e.isDirectory()) found.push(...listFiles(dir, rel));
    else found.push(rel);
  }
  return found;
}

/** Removes `rel` (a directory under `dir`) and its parents below `dir` while they are empty. */
function pruneEmptyParents(dir: string, rel: string): void {
  for (let d = rel; d !== '.' && d !== '' && d !== path.sep; d = path.dirname(d)) {
    const entries = (() => {
      try {
        return fs.readdirSync(path.join(dir, d));
      } catch {
        return ['?'];
      }
    })();
    if (entries.length > 0) return;
    fs.rmdirSync(path.join(dir, d));
  }
}

/** A directory under --out that holds a bundle of this site for a host no longer in the inventory. */
function isStaleBundle(dir: string, inv: Inventory): boolean {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as { site?: unknown; host?: unknown };
    return m.site === inv.site && m.host === path.basename(dir) && !inv.hosts.some((h) => h.name === m.host);
  } catch {
    return false;
  }
}

const STAGING = '.render-staging-';

/**
 * Removes the staging directories of renders that were killed (their pid is gone): each holds
 * the temp files of a batch that never got to its renames.
 */
function removeDeadStaging(outDir: string): void {
  const entries = fs.existsSync(outDir) ? fs.readdirSync(outDir) : [];
  for (const name of entries.filter((n) => n.startsWith(STAGING))) {
    const pid = Number(name.slice(STAGING.length).split('-')[0]);
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) continue;
    fs.rmSync(path.join(outDir, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function renderToDir(o: RenderOutOptions): Promise<RenderSummary> {
  const { inventory: inv, warnings: invWarnings } = await loadInventory(o.inventory);
  const { pki, warnings } = await readSitePki(o.pki);
  const metadataSecret = await readMetadataSecret(o.metadataSecretFile);
  const rendered = renderSite(inv, pki, { generator: `ovn-deploy ${packageVersion()}`, ...(metadataSecret === undefined ? {} : { metadataSecret }) });

  const outDir = path.resolve(o.out);
  const summary: RenderSummary = { out: outDir, hosts: [], removedBundles: [], warnings: [...invWarnings.map((w) => `${o.inventory}: ${w}`), ...warnings] };
  // Group the rendered map by host once (a prefix scan per host would be quadratic).
  const plans = new Map<string, Map<string, FileContent>>(inv.hosts.map((h) => [h.name, new Map()]));
  for (const [rel, file] of rendered) {
    const slash = rel.indexOf('/');
    plans.get(rel.slice(0, slash))?.set(rel.slice(slash + 1), file);
  }

  const files: FileWrite[] = [];
  const manifests: FileWrite[] = [];
  for (const host of inv.hosts) {
    const hostDir = path.join(outDir, host.name);
    const { writes, unchanged } = plannedWrites(hostDir, plans.get(host.name) ?? new Map());
    for (const w of writes) (path.basename(w.file) === MANIFEST_FILE && path.dirname(w.file) === hostDir ? manifests : files).push(w);
    summary.hosts.push({ host: host.name, written: writes.map((w) => path.relative(hostDir, w.file)), unchanged: unchanged.length, removed: [] });
  }
  removeDeadStaging(outDir);
  // Manifests last: a reader that finds a new manifest finds the files it lists.
  await writeFilesAtomic([...files, ...manifests], { stagingDir: path.join(outDir, `${STAGING}${process.pid}-${Date.now()}`) });

  for (const h of summary.hosts) {
    const plan = plans.get(h.host) ?? new Map<string, FileContent>();
    const hostDir = path.join(outDir, h.host);
    for (const rel of listFiles(hostDir)) {
      if (plan.has(rel)) continue;
      fs.rmSync(path.join(hostDir, rel), { force: true });
      pruneEmptyParents(hostDir, path.dirname(rel));
      h.removed.push(rel);
    }
  }
  const current = new Set(inv.hosts.map((h) => h.name));
  for (const entry of fs.existsSync(outDir) ? fs.readdirSync(outDir, { withFileTypes: true }) : []) {
    const dir = path.join(outDir, entry.name);
    if (entry.isDirectory() && !current.has(entry.name) && isStaleBundle(dir, inv)) {
      fs.rmSync(dir, { recursive: true, force: true });
      summary.removedBundles.push(entry.name);
    }
  }
  return summary;
}
