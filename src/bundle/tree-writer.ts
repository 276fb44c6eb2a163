/**
 * A thread that creates files while this one renders: `render` into a new bundle directory spends
 * about as long in open/write/close (ext4 inode creation) as in rendering, and the two overlap on
 * a second core. It only creates new files below a staging directory the caller made; nothing
 * it writes is visible in --out before the caller's flush and rename (fsx.ts).
 */
import { Worker } from 'node:worker_threads';

/** [absolute path, content, mode]: a file that must not exist yet (its directories may not either). */
export type NewFile = [file: string, content: string | Uint8Array, mode: number];

/** What crosses to the thread: every file's bytes in one transferred buffer (no copy, no second encoding there). */
interface Batch {
  paths: string[];
  modes: number[];
  lengths: number[];
  data: Uint8Array;
}

/**
 * The thread's whole program. Run from its source text (`eval`), so that it works the same from
 * dist/ and from the TypeScript sources under test: it may use nothing but `require` and its
 * arguments. Each file is created exclusively with its final mode (fchmod when the umask narrowed
 * it), and its stamp (inode, size, ctime: what fileStamp reads) is taken last, before close.
 */
function treeWriterThread(): void {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const fs = require('node:fs') as typeof import('node:fs');
  const path = require('node:path') as typeof import('node:path');
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const umask = (workerData as { umask: number }).umask;
  const made = new Set<string>();
  const stamps: string[] = [];
  let failed: Record<string, unknown> | undefined;
  const mkdirs = (dir: string): void => {
    if (made.has(dir)) return;
    try {
      fs.mkdirSync(dir, 0o755);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // An existing directory is used, never a link to one.
      if (code === 'EEXIST' && fs.lstatSync(dir).isDirectory()) {
        made.add(dir);
        return;
      }
      if (code !== 'ENOENT') throw err;
      mkdirs(path.dirname(dir));
      fs.mkdirSync(dir, 0o755);
    }
    made.add(dir);
  };
  parentPort?.on('message', (batch: Batch | null) => {
    if (batch === null) {
      parentPort.postMessage(failed === undefined ? { stamps } : { error: failed });
      return;
    }
    if (failed !== undefined) return;
    try {
      let offset = 0;
      for (const [i, file] of batch.paths.entries()) {
        const mode = batch.modes[i] ?? 0o644;
        const end = offset + (batch.lengths[i] ?? 0);
        mkdirs(path.dirname(file));
        const fd = fs.openSync(file, 'wx', mode);
        try {
          while (offset < end) offset += fs.writeSync(fd, batch.data, offset, end - offset);
          if ((mode & umask) !== 0) fs.fchmodSync(fd, mode);
          const st = fs.fstatSync(fd, { bigint: true });
          stamps.push(`${st.ino}:${st.size}:${st.ctimeNs}`);
        } finally {
          fs.closeSync(fd);
        }
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      failed = { message: e.message, code: e.code, path: e.path, syscall: e.syscall };
    }
  });
}

export class TreeWriter {
  private readonly worker: Worker;
  private count = 0;
  private crashed: Error | undefined;

  constructor() {
    this.worker = new Worker(`(${treeWriterThread.toString()})()`, { eval: true, workerData: { umask: process.umask() } });
    // Kept for finish(): an error event nobody listens to would end the process.
    this.worker.on('error', (err) => {
      this.crashed = err;
    });
  }

  /** Queues files; they are written in the order given, across calls. */
  write(files: readonly NewFile[]): void {
    const lengths = files.map(([, content]) => (typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength));
    // Its own memory (not the shared pool's), so that it can be transferred.
    const data = Buffer.allocUnsafeSlow(lengths.reduce((a, b) => a + b, 0));
    let offset = 0;
    for (const [i, [, content]] of files.entries()) {
      if (typeof content === 'string') data.write(content, offset);
      else data.set(content, offset);
      offset += lengths[i] ?? 0;
    }
    const batch: Batch = { paths: files.map(([file]) => file), modes: files.map(([, , mode]) => mode), lengths, data };
    this.count += files.length;
    this.worker.postMessage(batch, [data.buffer]);
  }

  /**
   * Waits until every queued file is written and stops the thread. Returns each file's stamp in
   * the order queued; throws the first error (with its code and path, as a system call's).
   */
  async finish(): Promise<string[]> {
    try {
      if (this.crashed !== undefined) throw this.crashed;
      const reply = await new Promise<{ stamps?: string[]; error?: { message: string; code?: string; path?: string; syscall?: string } }>((resolve, reject) => {
        this.worker.once('message', resolve);
        this.worker.once('error', reject);
        this.worker.once('exit', (code) => reject(new Error(`the file writer thread exited (${code}) before it was done`)));
        this.worker.postMessage(null);
      });
      if (reply.error !== undefined) throw Object.assign(new Error(reply.error.message), reply.error);
      if (reply.stamps?.length !== this.count) throw new Error(`the file writer thread wrote ${reply.stamps?.length ?? 0} of ${this.count} files`);
      return reply.stamps;
    } finally {
      await this.worker.terminate();
    }
  }

  /** Stops the thread, whatever it was doing (its files are in the caller's staging directory). */
  async abort(): Promise<void> {
    await this.worker.terminate();
  }
}
