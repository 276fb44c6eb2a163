/**
 * The bundles of hosts whose directory under --out does not exist yet: each is written whole
 * into a copy below the staging directory by a second thread while the next host renders
 * (TreeWriter), then made durable and renamed into place once by the batch (fsx.ts). A reader
 * sees all of a new bundle or none of it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { inputError } from '../errors.js';
import type { RenderedFiles, StagedTree } from '../fsx.js';
import { SIGNATURE_FILE } from './signature.js';
import { TreeWriter, type NewFile } from './tree-writer.js';

/**
 * Which hosts' bundle directories do not exist yet (marked false in `checkedDirs`, existing ones
 * true). A host's path that is a symbolic link or not a directory is refused before anything is written.
 */
export function newBundleDirs(outDir: string, hosts: readonly string[], checkedDirs: Map<string, boolean>): Set<string> {
  const fresh = new Set<string>();
  for (const host of hosts) {
    const st = fs.lstatSync(path.join(outDir, host), { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) throw inputError(`${host} is a symbolic link: render never writes or removes through one (${host}/)`, '--out', outDir);
    if (st !== undefined && !st.isDirectory()) throw inputError(`${host} is not a directory (where its bundle goes)`, '--out', outDir);
    checkedDirs.set(host, st !== undefined);
    if (st === undefined) fresh.add(host);
  }
  return fresh;
}

export interface FreshResult {
  trees: StagedTree[];
  /** Per host, the files of its bundle (relative to it), sorted. */
  written: Map<string, string[]>;
  /** `host/rel` -> fileStamp, taken when the file was written (a directory's rename keeps its files' stamps). */
  stamps: Map<string, string>;
}

export class FreshBundles {
  private readonly writer = new TreeWriter();
  private readonly trees = new Map<string, StagedTree & { files: string[] }>();
  private readonly written = new Map<string, string[]>();
  /** `host/rel` of every queued file, in the order queued (the writer's stamps come in that order). */
  private readonly queued: string[] = [];
  private readonly signing: Promise<void>[] = [];

  /** `staging` is a directory makeStagingDir just made for this batch. */
  constructor(
    private readonly outDir: string,
    private readonly staging: string,
  ) {}

  /** Queues a host's rendered files, and its manifest.sig once `signature` is done. */
  add(host: string, files: RenderedFiles, signature: Promise<string>): void {
    const copy = path.join(this.staging, `tree-${this.trees.size}`);
    const tree = { dir: path.join(this.outDir, host), copy, files: [] as string[] };
    this.trees.set(host, tree);
    const rels = [...files.keys()].sort((a, b) => a.localeCompare(b));
    this.written.set(host, [...rels, SIGNATURE_FILE].sort((a, b) => a.localeCompare(b)));
    this.queue(host, tree, rels.map((rel) => [rel, files.get(rel)?.content ?? '', files.get(rel)?.mode ?? 0o644]));
    this.signing.push(signature.then((sig) => this.queue(host, tree, [[SIGNATURE_FILE, sig, 0o644]])));
  }

  private queue(host: string, tree: { copy: string; files: string[] }, files: [string, string | Uint8Array, number][]): void {
    const batch: NewFile[] = files.map(([rel, content, mode]) => {
      const file = path.join(tree.copy, rel);
      tree.files.push(file);
      this.queued.push(`${host}/${rel}`);
      return [file, content, mode];
    });
    this.writer.write(batch);
  }

  /** Waits for every signature and every file. */
  async finish(): Promise<FreshResult> {
    try {
      await Promise.all(this.signing);
    } catch (err) {
      await this.writer.abort();
      throw err;
    }
    const stamps = await this.writer.finish();
    return { trees: [...this.trees.values()], written: this.written, stamps: new Map(this.queued.map((rel, i) => [rel, stamps[i] ?? ''])) };
  }

  async abort(): Promise<void> {
    await Promise.allSettled(this.signing);
    await this.writer.abort();
  }
}
