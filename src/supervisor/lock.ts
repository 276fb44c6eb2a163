/**
 * One supervisor per state directory, enforced by the kernel: the supervisor binds an abstract
 * unix socket named after the directory. Unlike a lock file it can never go stale, because the
 * kernel releases it the moment the holder dies, `kill -9` included.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';

/** Abstract socket names are per network namespace: clients and supervisors run in the host's. */
export function lockName(stateDir: string): string {
  const digest = createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 32);
  return `\0ovn-deploy-supervise-${digest}`;
}

/** The held lock, or undefined when another live supervisor holds it. */
export async function acquireLock(stateDir: string): Promise<net.Server | undefined> {
  const server = net.createServer((socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve(undefined);
      else reject(err);
    });
    server.listen(lockName(stateDir), () => resolve(server));
  });
}
