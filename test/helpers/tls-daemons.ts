/**
 * Daemons a TLS test starts itself: free loopback ports, child processes tracked by pid (and
 * only those are stopped), waiting for a listener.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** A port the kernel just handed out on `host`; free unless another process grabs it meanwhile. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Distinct free ports (the kernel may hand out a port again once it is closed). */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort(host));
  return [...ports];
}

export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export async function waitForListener(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await canConnect(host, port))) {
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Children of one test file; stopAll() ends exactly these (by pid), nothing else. */
export class Daemons {
  private readonly children: ChildProcess[] = [];

  start(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new Error('empty argv');
    // stdio ignored: a foreground stunnel also logs to stderr, and an unread pipe would block it.
    const child = spawn(cmd, args, { stdio: 'ignore', ...opts });
    // A program that cannot be spawned shows up as a listener that never comes, not a crash.
    child.on('error', (err) => console.error(`cannot start ${cmd}: ${err.message}`));
    this.children.push(child);
    return child;
  }

  async stop(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.children.map((c) => this.stop(c)));
  }
}

/** Programs of `names` that are not on PATH (for it.skipIf with a reason). */
export function missingPrograms(names: string[]): string[] {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  return names.filter(
    (name) =>
      !dirs.some((d) => {
        try {
          accessSync(path.join(d, name), constants.X_OK);
          return true;
        } catch {
          return false;
        }
      }),
  );
}
