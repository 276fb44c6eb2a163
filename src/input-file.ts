/**
 * The one reader of files a user names (site files, bundles, certificates, secrets, CA files).
 * The tool runs as root, so it never follows a symlink at the last component (a link to
 * /etc/shadow would put its lines into error messages), reads only regular files (a FIFO would
 * hang, a device would never end), checks the size with fstat before reading and reads at most
 * that much, and refuses binary content where text is expected. Errors are InputErrors naming the
 * file: exit 2, no stack trace. The PKI can use it for CSRs (see `maxBytes`).
 */
import { constants, promises as fs } from 'node:fs';
import { InputError } from './errors.js';

/** Site files, manifests, PEM files: far below this. */
export const DEFAULT_INPUT_LIMIT = 1024 * 1024;

export interface ReadInputOptions {
  /** What the file is, for messages: "site file", "certificate". */
  what: string;
  maxBytes?: number;
  /** Text expected: a NUL byte means this is not the file it should be. Default true. */
  text?: boolean;
  /** The option that named the file (`--inventory`), shown instead of a dot-path. */
  option?: string;
}

function describeOpenError(err: unknown, what: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ELOOP') return `is a symbolic link: give the ${what} itself`;
  if (code === 'EISDIR') return `is a directory, expected a ${what}`;
  if (code === 'ENOTDIR') return 'a part of the path is not a directory';
  if (code === 'ENXIO') return `is a socket or FIFO, expected a ${what}`;
  return code ?? (err instanceof Error ? err.message : String(err));
}

function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'something other than a regular file';
}

/** The bytes of `file`, or an InputError saying why it is not an acceptable input file. */
export async function readInputFile(file: string, o: ReadInputOptions): Promise<Buffer> {
  const max = o.maxBytes ?? DEFAULT_INPUT_LIMIT;
  const fail = (message: string): InputError => new InputError([{ file, path: o.option ?? '', message: `cannot read the ${o.what}: ${message}` }]);
  let handle: fs.FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO with no writer must not hang (fstat refuses it right after).
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw fail(describeOpenError(err, o.what));
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw fail(`is ${kindOf(st)}, expected a ${o.what}`);
    if (st.size > max) throw fail(`is ${st.size} bytes, more than the ${max} a ${o.what} may have`);
    // Read at most max+1 bytes whatever the size said: the file may grow while we read.
    const buf = Buffer.alloc(Math.min(st.size, max) + 1);
    let got = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (got > max) throw fail(`is more than the ${max} bytes a ${o.what} may have`);
      if (got === buf.length) break;
    }
    const data = buf.subarray(0, got);
    if (o.text !== false && data.includes(0)) throw fail(`is a binary file (a NUL byte at offset ${data.indexOf(0)}), expected text`);
    return data;
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw fail(describeOpenError(err, o.what));
  } finally {
    await handle.close();
  }
}

export async function readInputText(file: string, o: ReadInputOptions): Promise<string> {
  return (await readInputFile(file, o)).toString('utf8');
}

/** At most `max` characters of untrusted text for a message, on one line (line breaks shown as ↵, other control characters as �). */
export function excerpt(text: string, max = 40): string {
  const head = [...text.slice(0, max + 1)];
  const clean = head.slice(0, max).map((c) => (c === '\n' ? '↵' : c < ' ' || c === '\x7f' ? '\ufffd' : c)).join('');
  return head.length > max ? `${clean}…` : clean;
}
