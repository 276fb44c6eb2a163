/** fsx's batched atomic writes: all-or-nothing before the renames, unchanged files untouched, no temp files left. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { fileStamp } from '../src/bundle/render-inputs.js';
import { TreeWriter } from '../src/bundle/tree-writer.js';
import { applyFiles, isTempFile, makeStagingDir, writeFilesAtomic, type RenderedFiles, type StagedTree } from '../src/fsx.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'od-fsx-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function all(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

const plan = (n: number, tag: string): RenderedFiles =>
  new Map(Array.from({ length: n }, (_, i) => [`d${i % 5}/f${i}.conf`, { content: `${tag} ${i}\n`, mode: i % 7 === 0 ? 0o600 : 0o644 }]));

describe('applyFiles / writeFilesAtomic', () => {
  it('writes a large batch (one filesystem sync), then leaves unchanged files alone and rewrites only what changed', async () => {
    const root = path.join(tmp, 'big');
    const first = await applyFiles(root, plan(40, 'v1'));
    expect(first.written).toHaveLength(40);
    expect(all(root).filter(isTempFile)).toEqual([]);
    expect(fs.readFileSync(path.join(root, 'd2/f7.conf'), 'utf8')).toBe('v1 7\n');
    expect(fs.statSync(path.join(root, 'd2/f7.conf')).mode & 0o777).toBe(0o600);

    const ino = fs.statSync(path.join(root, 'd1/f1.conf')).ino;
    const rename = vi.spyOn(fs, 'renameSync');
    try {
      const again = await applyFiles(root, plan(40, 'v1'));
      expect(again.written).toEqual([]);
      expect(again.unchanged).toHaveLength(40);
      expect(rename).not.toHaveBeenCalled();
      const next = plan(40, 'v1');
      next.set('d1/f1.conf', { content: 'v2 1\n', mode: 0o644 });
      next.set('d3/f3.conf', { content: 'v1 3\n', mode: 0o640 }); // mode only
      const changed = await applyFiles(root, next);
      expect(changed.written.map((f) => path.relative(root, f))).toEqual(['d1/f1.conf', 'd3/f3.conf']);
      expect(rename).toHaveBeenCalledTimes(2);
    } finally {
      rename.mockRestore();
    }
    expect(fs.statSync(path.join(root, 'd1/f1.conf')).ino).not.toBe(ino);
    expect(fs.statSync(path.join(root, 'd3/f3.conf')).mode & 0o777).toBe(0o640);
  });

  it('a failure before the renames changes nothing and removes its temp files (beside the targets or in a staging dir)', async () => {
    for (const staging of [undefined, path.join(tmp, 'fail-staging')]) {
      const root = path.join(tmp, staging === undefined ? 'fail' : 'fail-s');
      await applyFiles(root, plan(20, 'old'));
      fs.writeFileSync(path.join(root, 'not-a-dir'), 'x');
      const writes = [...plan(20, 'new')].map(([rel, f]) => ({ file: path.join(root, rel), ...f }));
      writes.splice(10, 0, { file: path.join(root, 'not-a-dir', 'child.conf'), content: 'nope', mode: 0o644 });
      await expect(writeFilesAtomic(writes, staging === undefined ? {} : { stagingDir: staging })).rejects.toThrow(/ENOTDIR|EEXIST/);
      for (const [rel] of plan(20, 'x')) expect(fs.readFileSync(path.join(root, rel), 'utf8')).toMatch(/^old /);
      expect(all(root).filter(isTempFile)).toEqual([]);
      if (staging !== undefined) expect(fs.existsSync(staging)).toBe(false);
    }
  });

  it('renames in the order given', async () => {
    const root = path.join(tmp, 'order');
    const rename = vi.spyOn(fs, 'renameSync');
    try {
      await writeFilesAtomic(['c', 'a', 'b'].map((n) => ({ file: path.join(root, n), content: n })));
      expect(rename.mock.calls.map((c) => path.basename(String(c[1])))).toEqual(['c', 'a', 'b']);
    } finally {
      rename.mockRestore();
    }
  });

  it('thenRename: existing files are renamed onto their targets right after the writes, and not at all when a write fails', async () => {
    const root = path.join(tmp, 'then');
    fs.mkdirSync(root);
    fs.writeFileSync(path.join(root, 'key.next'), 'new key');
    fs.writeFileSync(path.join(root, 'key'), 'old key');
    fs.writeFileSync(path.join(root, 'not-a-dir'), 'x');
    const thenRename = [{ from: path.join(root, 'key.next'), to: path.join(root, 'key') }];
    await expect(writeFilesAtomic([{ file: path.join(root, 'not-a-dir', 'cert'), content: 'c' }], { thenRename })).rejects.toThrow(/ENOTDIR|EEXIST/);
    expect(fs.readFileSync(path.join(root, 'key'), 'utf8')).toBe('old key');
    expect(fs.existsSync(path.join(root, 'key.next'))).toBe(true);
    const rename = vi.spyOn(fs, 'renameSync');
    try {
      await writeFilesAtomic([{ file: path.join(root, 'cert'), content: 'new cert' }], { thenRename });
      expect(rename.mock.calls.map((c) => path.basename(String(c[1])))).toEqual(['cert', 'key']);
    } finally {
      rename.mockRestore();
    }
    expect(fs.readFileSync(path.join(root, 'key'), 'utf8')).toBe('new key');
    expect(fs.existsSync(path.join(root, 'key.next'))).toBe(false);
    expect(all(root).filter(isTempFile)).toEqual([]);
  });

  /** `files` written by the TreeWriter thread into a copy of `dir` below a staging dir made for the batch. */
  async function stageTree(staging: string, dir: string, files: RenderedFiles): Promise<{ tree: StagedTree; stamps: string[] }> {
    makeStagingDir(staging);
    const copy = path.join(staging, 'tree-0');
    const writer = new TreeWriter();
    const list = [...files].map(([rel, f]): [string, string | Uint8Array, number] => [path.join(copy, rel), f.content, f.mode ?? 0o644]);
    writer.write(list.slice(0, 7));
    writer.write(list.slice(7));
    const stamps = await writer.finish();
    return { tree: { dir, copy, files: list.map(([f]) => f) }, stamps };
  }

  it('staged: a directory that does not exist yet, written whole by the writer thread in the staging dir, is renamed into place once; modes kept, stamps hold, staging gone', async () => {
    const root = path.join(tmp, 'trees');
    await applyFiles(root, plan(5, 'old'));
    const staging = path.join(root, '.staging-trees');
    const fresh = path.join(root, 'host-new');
    const { tree, stamps } = await stageTree(staging, fresh, plan(30, 'new'));
    const writes = [{ file: path.join(root, 'd1', 'f1.conf'), content: 'changed\n', mode: 0o644 }];
    const rename = vi.spyOn(fs, 'renameSync');
    try {
      await writeFilesAtomic(writes, { stagingDir: staging, stagingMade: true, staged: [tree] });
      // One rename for the 30 files of the new directory, one for the file in an existing one.
      expect(rename.mock.calls.map((c) => path.relative(root, String(c[1])))).toEqual(['host-new', 'd1/f1.conf']);
    } finally {
      rename.mockRestore();
    }
    for (const [rel] of plan(30, 'x')) expect(fs.readFileSync(path.join(fresh, rel), 'utf8')).toMatch(/^new /);
    expect(fs.statSync(path.join(fresh, 'd0/f0.conf')).mode & 0o777).toBe(0o600);
    // What render records: a file's stamp taken when it was written is still its stamp in place.
    expect([...plan(30, 'x').keys()].map((rel) => fileStamp(path.join(fresh, rel)))).toEqual(stamps);
    expect(fs.readFileSync(path.join(root, 'd1', 'f1.conf'), 'utf8')).toBe('changed\n');
    expect(fs.existsSync(staging)).toBe(false);
  });

  it('staged: a directory that appeared meanwhile with files in it is not replaced; the batch fails and its staging is removed', async () => {
    const root = path.join(tmp, 'trees-race');
    const fresh = path.join(root, 'host-new');
    fs.mkdirSync(fresh, { recursive: true });
    fs.writeFileSync(path.join(fresh, 'theirs'), 'keep');
    const staging = path.join(root, '.staging');
    const { tree } = await stageTree(staging, fresh, plan(20, 'new'));
    await expect(writeFilesAtomic([], { stagingDir: staging, stagingMade: true, staged: [tree] })).rejects.toThrow(/ENOTEMPTY|EEXIST/);
    expect(fs.readdirSync(fresh)).toEqual(['theirs']);
    expect(fs.existsSync(staging)).toBe(false);
  });

  it('the writer thread refuses a file that exists already (exclusive create) and reports it with its code and path', async () => {
    const root = path.join(tmp, 'writer-exists');
    fs.mkdirSync(root, { recursive: true });
    fs.writeFileSync(path.join(root, 'there'), 'keep');
    const writer = new TreeWriter();
    writer.write([[path.join(root, 'new'), 'x', 0o644], [path.join(root, 'there'), 'y', 0o644], [path.join(root, 'after'), 'z', 0o644]]);
    await expect(writer.finish()).rejects.toMatchObject({ code: 'EEXIST', path: path.join(root, 'there') });
    expect(fs.readFileSync(path.join(root, 'there'), 'utf8')).toBe('keep');
    expect(fs.existsSync(path.join(root, 'after'))).toBe(false);
  });

  it('the writer thread creates files with their mode even under a umask that would narrow it', async () => {
    const root = path.join(tmp, 'writer-umask');
    const old = process.umask(0o077);
    try {
      const writer = new TreeWriter();
      writer.write([[path.join(root, 'a', 'b', 'open'), 'x', 0o644], [path.join(root, 'key'), 'k', 0o600]]);
      await writer.finish();
    } finally {
      process.umask(old);
    }
    expect(fs.statSync(path.join(root, 'a', 'b', 'open')).mode & 0o777).toBe(0o644);
    expect(fs.statSync(path.join(root, 'key')).mode & 0o777).toBe(0o600);
  });

  it('a staging dir that already exists (here a link planted where the batch will stage) is refused: nothing is written through it', async () => {
    const root = path.join(tmp, 'planted');
    const elsewhere = path.join(tmp, 'planted-target');
    fs.mkdirSync(root, { recursive: true });
    fs.mkdirSync(elsewhere, { recursive: true });
    const staging = path.join(root, '.staging');
    fs.symlinkSync(elsewhere, staging);
    const fresh = path.join(root, 'host-new');
    const writes = [...plan(20, 'new')].map(([rel, f]) => ({ file: path.join(fresh, rel), ...f }));
    await expect(writeFilesAtomic(writes, { stagingDir: staging })).rejects.toThrow(/EEXIST/);
    expect(() => makeStagingDir(staging)).toThrow(/EEXIST/);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
    expect(fs.existsSync(fresh)).toBe(false);
    expect(fs.lstatSync(staging).isSymbolicLink()).toBe(true);
  });
});
