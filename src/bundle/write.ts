/**
 * `render` into --out: every input of every host is checked first (bad input writes nothing),
 * then every changed file of every host is written as one durable batch (fsx.ts): a bundle's
 * manifest is renamed after its files, unchanged files are not touched, and files no longer
 * rendered (and temp files a killed run left) are removed afterwards. A host whose bundle
 * directory does not exist yet is written whole into the batch's staging directory by a second
 * thread while the next host renders (fresh-bundles.ts), and renamed into place once.
 *
 * render owns only what it wrote: --out holds a record of every file it wrote there
 * (`.ovn-deploy-render.json`). It removes only recorded files it no longer renders, replaces only
 * recorded files, never writes or removes through a symbolic link, and refuses a non-empty
 * directory without a record. Every check runs before the first write. The record is widened to
 * the new files before they are written and narrowed after the removals, so a render killed at
 * any moment leaves a record that covers every file it wrote.
 */
import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { inputError } from '../errors.js';
import { isTempFile, makeStagingDir, mkdirs, plannedWrites, writeFilesAtomic, type FileWrite, type RenderedFiles } from '../fsx.js';
import { readInputText } from '../input-file.js';
import { isAlive } from '../supervisor/proc.js';
import { loadInventory } from '../inventory/index.js';
import type { Inventory } from '../inventory/types.js';
import { renderSiteEach, type SitePki } from '../render/index.js';
import { bundleSigner, readMetadataSecret, readSitePki } from '../deploy/site-pki.js';
import { packageVersion } from '../version.js';
import { FreshBundles, newBundleDirs } from './fresh-bundles.js';
import { MANIFEST_FILE } from './manifest.js';
import { fileStamp, renderInputsDigest } from './render-inputs.js';
import { isSignatureOf, SIGNATURE_FILE, signManifestAsync } from './signature.js';

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

const STAGING = '.render-staging-';

/** rmdir: a directory render made and left empty; one that has anything in it (or is gone) stays as it is. */
function removeIfEmpty(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    // not empty, not a directory, or gone: not render's to remove
  }
}

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

/**
 * A first render killed while it wrote its first record leaves --out holding nothing but that
 * record's staging directory (named by its dead pid, holding at most the record's temp file):
 * removed, so that --out counts as empty again. Anything else there, and --out stays as it is.
 */
function removeDeadFirstRecord(outDir: string): void {
  const entries = fs.readdirSync(outDir);
  const debris = entries.filter((name) => {
    const m = /^\.render-staging-(\d+)-record$/.exec(name);
    if (m === null || Number(m[1]) === process.pid || isAlive(Number(m[1]))) return false;
    const dir = path.join(outDir, name);
    if (fs.lstatSync(dir).isDirectory() !== true) return false;
    return fs.readdirSync(dir).every((f) => isTempFile(f) && f.startsWith(`.${RENDER_RECORD}.`) && fs.lstatSync(path.join(dir, f)).isFile());
  });
  if (debris.length === 0 || debris.length !== entries.length) return;
  for (const name of debris) fs.rmSync(path.join(outDir, name), { recursive: true, force: true });
}

/** The record of what render wrote into --out (paths relative to --out, `host/...`). */
export const RENDER_RECORD = '.ovn-deploy-render.json';
/** 1,000 hosts of ~30 files each take ~2 MB. */
const RECORD_MAX_BYTES = 64 * 1024 * 1024;

interface RenderRecord {
  /** Every file render wrote and still owns, relative to --out. */
  files: Set<string>;
  /** Read from --out (false: --out is new or empty). */
  stored: boolean;
  /** Set only after a render that completed: the digest of its inputs and each file's stamp then. */
  inputs?: string;
  stamps?: Map<string, string>;
}

async function readRecord(outDir: string): Promise<RenderRecord | undefined> {
  const file = path.join(outDir, RENDER_RECORD);
  if (fs.lstatSync(file, { throwIfNoEntry: false }) === undefined) return undefined;
  const text = await readInputText(file, { what: 'render record', maxBytes: RECORD_MAX_BYTES });
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = undefined;
  }
  const d = (data ?? {}) as { format?: unknown; files?: unknown; inputs?: unknown; stamps?: unknown };
  const safe = (f: unknown): f is string => typeof f === 'string' && f !== '' && !path.isAbsolute(f) && path.normalize(f) === f && !f.split('/').includes('..');
  if (d.format !== 1 || !Array.isArray(d.files) || !d.files.every(safe)) {
    throw inputError(`not a render record of ovn-deploy (expected {"format": 1, "files": [relative paths]}): remove it only if you know where it came from`, '', file);
  }
  const record: RenderRecord = { files: new Set(d.files), stored: true };
  // A digest or stamps of another shape only mean "render again": they grant no ownership.
  const stamps = d.stamps !== null && typeof d.stamps === 'object' ? Object.entries(d.stamps as Record<string, unknown>) : [];
  if (typeof d.inputs === 'string' && /^[0-9a-f]{64}$/.test(d.inputs) && stamps.every(([k, v]) => record.files.has(k) && typeof v === 'string')) {
    record.inputs = d.inputs;
    record.stamps = new Map(stamps as [string, string][]);
  }
  return record;
}

/**
 * 0600: with `inputs` the record holds a digest over the metadata secret too; a weak secret must
 * not be open to guessing by every local user.
 */
async function writeRecord(outDir: string, files: Iterable<string>, done?: { inputs: string; stamps: Map<string, string> }): Promise<void> {
  const sorted = [...files].sort();
  const body = {
    format: 1,
    generator: `ovn-deploy ${packageVersion()}`,
    files: sorted,
    ...(done === undefined ? {} : { inputs: done.inputs, stamps: Object.fromEntries(sorted.map((f) => [f, done.stamps.get(f) ?? ''])) }),
  };
  // Staged like the bundles: a render killed while it writes the record leaves a directory the
  // next one removes by its dead pid, not a temp file beside the record.
  await writeFilesAtomic([{ file: path.join(outDir, RENDER_RECORD), content: `${JSON.stringify(body)}\n`, mode: 0o600 }], {
    stagingDir: path.join(outDir, `${STAGING}${process.pid}-record`),
  });
}

/** Whether the last render completed with these inputs and every file it wrote is still as it left it. */
function upToDate(outDir: string, record: RenderRecord, inputs: string): boolean {
  if (record.inputs !== inputs || record.stamps === undefined || record.stamps.size !== record.files.size) return false;
  for (const [rel, stamp] of record.stamps) if (fileStamp(path.join(outDir, rel)) !== stamp) return false;
  return true;
}

/**
 * Refuses (InputError, nothing written) a path under --out that render may not touch: one that
 * passes through a symbolic link or a non-directory, or an existing file that is not render's.
 */
function checkOwnedPath(outDir: string, rel: string, owned: ReadonlySet<string>, checkedDirs: Map<string, boolean>): void {
  const parts = rel.split('/');
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    const known = checkedDirs.get(dir);
    // Nothing exists below a missing directory: no file there to refuse.
    if (known === false) return;
    if (known === true) continue;
    const st = fs.lstatSync(path.join(outDir, dir), { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) throw inputError(`${dir} is a symbolic link: render never writes or removes through one (${rel})`, '--out', outDir);
    if (st !== undefined && !st.isDirectory()) throw inputError(`${dir} is not a directory (where ${rel} goes)`, '--out', outDir);
    checkedDirs.set(dir, st !== undefined);
    if (st === undefined) return;
  }
  const st = fs.lstatSync(path.join(outDir, rel), { throwIfNoEntry: false });
  if (st === undefined) return;
  if (st.isSymbolicLink() || !st.isFile()) throw inputError(`${rel} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}: render does not replace it`, '--out', outDir);
  if (!owned.has(rel)) throw inputError(`${rel} exists and was not written by render (not in ${RENDER_RECORD}): move it away, or render into another directory`, '--out', outDir);
}

/** What render already owns in --out, after checking that it may write there at all. */
async function ownedFiles(outDir: string): Promise<RenderRecord> {
  const st = fs.lstatSync(outDir, { throwIfNoEntry: false });
  if (st === undefined) return { files: new Set(), stored: false };
  if (!st.isDirectory() && !(st.isSymbolicLink() && fs.statSync(outDir, { throwIfNoEntry: false })?.isDirectory())) {
    throw inputError('is not a directory: --out names the directory the bundles go into', '--out', outDir);
  }
  const record = await readRecord(outDir);
  if (record !== undefined) return record;
  removeDeadFirstRecord(outDir);
  if (fs.readdirSync(outDir).length > 0) {
    throw inputError(`${outDir} is not empty and was not written by render (it has no ${RENDER_RECORD}): give a new or empty directory`, '--out');
  }
  return { files: new Set(), stored: false };
}

/** A file of ours in --out, read for comparison only: never through a symbolic link, at most `max` bytes. */
function readForCompare(file: string, max: number): Buffer | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    return st.isFile() && st.size <= max ? fs.readFileSync(fd) : undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Each host's manifest.sig: the one already in --out when it is exactly the signature of these
 * manifest bytes by this CA (signing again would give the same bytes), else a new one, signed on
 * the threadpool (the caller groups the rendered files meanwhile). A re-render of a site where
 * few hosts changed then costs a verify per unchanged host, not a sign.
 */
async function signBundles(plans: ReadonlyMap<string, RenderedFiles>, hosts: readonly string[], outDir: string, signer: { key: KeyObject; certPem: string }): Promise<Map<string, string>> {
  const sigs = new Map<string, string>();
  await Promise.all(
    hosts.map(async (host) => {
      const manifest = plans.get(host)?.get(MANIFEST_FILE);
      if (manifest === undefined) return;
      const bytes = Buffer.from(manifest.content);
      const same = readForCompare(path.join(outDir, host, MANIFEST_FILE), bytes.length)?.equals(bytes) === true;
      const kept = same ? readForCompare(path.join(outDir, host, SIGNATURE_FILE), 8192)?.toString('utf8') : undefined;
      sigs.set(host, kept !== undefined && isSignatureOf(bytes, kept, signer.certPem) ? kept : await signManifestAsync(bytes, signer.key, signer.certPem));
    }),
  );
  return sigs;
}

export async function renderToDir(o: RenderOutOptions): Promise<RenderSummary> {
  const { inventory: inv, warnings: invWarnings } = await loadInventory(o.inventory);
  const { pki, warnings } = await readSitePki(o.pki);
  const metadataSecret = await readMetadataSecret(o.metadataSecretFile);
  const signer = await bundleSigner(o.pki);
  const generator = `ovn-deploy ${packageVersion()}`;
  const outDir = path.resolve(o.out);
  const outExisted = fs.existsSync(outDir);
  const record = await ownedFiles(outDir);
  const owned = record.files;
  const summary: RenderSummary = { out: outDir, hosts: [], removedBundles: [], warnings: [...invWarnings.map((w) => `${o.inventory}: ${w}`), ...warnings] };
  const inputs = renderInputsDigest({ inventory: inv, caBundlePem: pki.caBundlePem, crlPem: pki.crlPem, signerCertPem: signer.certPem, metadataSecret, generator });
  if (upToDate(outDir, record, inputs)) {
    // A run killed after its last record left at most an empty staging directory.
    removeDeadStaging(outDir);
    return unchangedSummary(summary, inv.hosts.map((h) => h.name), owned);
  }

  const checkedDirs = new Map<string, boolean>();
  const fresh = newBundleDirs(outDir, inv.hosts.map((h) => h.name), checkedDirs);
  const staging = path.join(outDir, `${STAGING}${process.pid}-${Date.now()}`);
  const job: RenderJob = { inv, pki, metadataSecret, signer, generator, outDir, record, inputs, summary, checkedDirs, fresh, staging, freshBundles: undefined, published: false };
  let firstRecord = false;
  let madeStaging = false;
  try {
    if (fresh.size > 0) {
      // The staging directory is in --out before the first render finishes: a record must make
      // --out render's first, or a render killed now would leave a directory the next one refuses.
      if (!record.stored) {
        mkdirs(outDir);
        await writeRecord(outDir, owned);
        firstRecord = true;
      }
      removeDeadStaging(outDir);
      makeStagingDir(staging);
      madeStaging = true;
      job.freshBundles = new FreshBundles(outDir, staging);
    }
    return await renderInto(job);
  } catch (err) {
    await job.freshBundles?.abort();
    if (madeStaging) fs.rmSync(staging, { recursive: true, force: true });
    // Failed before anything reached --out: it is left as it was found (no record, or no directory, of ours).
    if (!job.published) {
      if (firstRecord) fs.rmSync(path.join(outDir, RENDER_RECORD), { force: true });
      if (!outExisted) removeIfEmpty(outDir);
    }
    throw err;
  }
}

interface RenderJob {
  inv: Inventory;
  pki: SitePki;
  metadataSecret: string | undefined;
  signer: { key: KeyObject; certPem: string };
  generator: string;
  outDir: string;
  record: RenderRecord;
  inputs: string;
  summary: RenderSummary;
  checkedDirs: Map<string, boolean>;
  fresh: ReadonlySet<string>;
  staging: string;
  freshBundles: FreshBundles | undefined;
  /** Set once the record covers what is about to be renamed into --out: from then on a failure leaves the record. */
  published: boolean;
}

async function renderInto(j: RenderJob): Promise<RenderSummary> {
  const { inv, outDir, record, summary, checkedDirs, fresh, freshBundles } = j;
  const owned = record.files;
  // A new host's bundle goes to the writer thread as soon as it is rendered (and signed on the
  // threadpool meanwhile); the others are compared with what --out has once all are rendered.
  const plans = new Map<string, RenderedFiles>();
  renderSiteEach(inv, j.pki, { generator: j.generator, ...(j.metadataSecret === undefined ? {} : { metadataSecret: j.metadataSecret }) }, (host, bundle) => {
    const manifest = bundle.files.get(MANIFEST_FILE);
    if (freshBundles !== undefined && fresh.has(host) && manifest !== undefined) {
      freshBundles.add(host, bundle.files, signManifestAsync(Buffer.from(manifest.content), j.signer.key, j.signer.certPem));
    } else plans.set(host, bundle.files);
  });
  // Signed here, where the bundles already in --out can be compared.
  // Awaited together: whichever fails first is the error, and the other's failure is handled too
  // (an unhandled rejection would end the process before renderToDir cleans up).
  const [sigs, done] = await Promise.all([signBundles(plans, [...plans.keys()], outDir, j.signer), freshBundles?.finish()]);
  for (const [host, sig] of sigs) plans.get(host)?.set(SIGNATURE_FILE, { content: sig, mode: 0o644 });

  const files: FileWrite[] = [];
  const manifests: FileWrite[] = [];
  for (const host of inv.hosts) {
    const written = done?.written.get(host.name);
    if (written !== undefined) {
      summary.hosts.push({ host: host.name, written, unchanged: 0, removed: [] });
      continue;
    }
    const hostDir = path.join(outDir, host.name);
    const { writes, unchanged } = plannedWrites(hostDir, plans.get(host.name) ?? new Map());
    for (const w of writes) (path.basename(w.file) === MANIFEST_FILE && path.dirname(w.file) === hostDir ? manifests : files).push(w);
    summary.hosts.push({ host: host.name, written: writes.map((w) => path.relative(hostDir, w.file)), unchanged: unchanged.length, removed: [] });
  }
  // Every check before the first write into --out (the new bundles are still in staging): what is written, and what is removed.
  const wanted = new Set<string>();
  for (const [host, plan] of plans) for (const rel of plan.keys()) wanted.add(`${host}/${rel}`);
  for (const [host, rels] of done?.written ?? []) for (const rel of rels) wanted.add(`${host}/${rel}`);
  const stale = [...owned].filter((rel) => !wanted.has(rel));
  for (const w of [...files, ...manifests]) checkOwnedPath(outDir, path.relative(outDir, w.file), owned, checkedDirs);
  for (const rel of stale) checkOwnedPath(outDir, rel, owned, checkedDirs);

  if (freshBundles === undefined) removeDeadStaging(outDir);
  // A new bundle's directory must still not exist when the record claims it: one made meanwhile
  // (by someone else: render made none) is refused before anything of ours goes there.
  for (const host of done?.written.keys() ?? []) {
    if (fs.lstatSync(path.join(outDir, host), { throwIfNoEntry: false }) !== undefined) {
      throw inputError(`${host} appeared while render ran (it was not there when render began): render does not write into a directory it did not make`, '--out', outDir);
    }
  }
  const widened = [...wanted].some((rel) => !owned.has(rel));
  if (widened || record.inputs !== undefined) {
    // Before the first rename into --out: a render killed from here on leaves a record that
    // covers its files and claims no completed render (the next one compares every file again).
    fs.mkdirSync(outDir, { recursive: true });
    await writeRecord(outDir, new Set([...owned, ...wanted]));
  }
  j.published = true;
  // The new bundles first, then the other files, manifests last: a reader that finds a new
  // manifest finds the files it lists.
  await writeFilesAtomic([...files, ...manifests], { stagingDir: j.staging, stagingMade: freshBundles !== undefined, staged: done?.trees ?? [] });

  const byHost = new Map(summary.hosts.map((h) => [h.host, h]));
  const left = new Set<string>();
  for (const rel of stale) {
    const [host = '', ...rest] = rel.split('/');
    fs.rmSync(path.join(outDir, rel), { force: true });
    pruneEmptyParents(outDir, path.dirname(rel));
    const h = byHost.get(host);
    if (h !== undefined) h.removed.push(rest.join('/'));
    else left.add(host);
  }
  // A host that left the site: its bundle is gone when nothing but render's files was in it.
  for (const host of [...left].sort()) if (!fs.existsSync(path.join(outDir, host))) summary.removedBundles.push(host);
  const stamps = new Map<string, string>();
  for (const rel of wanted) stamps.set(rel, done?.stamps.get(rel) ?? fileStamp(path.join(outDir, rel)) ?? '');
  await writeRecord(outDir, wanted, { inputs: j.inputs, stamps });
  return summary;
}

/** The summary of a render that had nothing to do: every host's files as the record lists them. */
function unchangedSummary(summary: RenderSummary, hosts: readonly string[], owned: ReadonlySet<string>): RenderSummary {
  const count = new Map<string, number>();
  for (const rel of owned) {
    const host = rel.slice(0, rel.indexOf('/'));
    count.set(host, (count.get(host) ?? 0) + 1);
  }
  for (const host of hosts) summary.hosts.push({ host, written: [], unchanged: count.get(host) ?? 0, removed: [] });
  return summary;
}
