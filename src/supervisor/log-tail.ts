/** The end of a daemon's log, for error messages: why did it not start? */
import { promises as fs } from 'node:fs';

export async function logTail(file: string, lines = 20, maxBytes = 16_384): Promise<string> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, 'r');
    const { size } = await handle.stat();
    const length = Math.min(size, maxBytes);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, size - length);
    const text = buf.toString('utf8').trimEnd();
    return text === '' ? '(empty log)' : text.split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(cannot read the log: ${(err as Error).message})`;
  } finally {
    await handle?.close();
  }
}
