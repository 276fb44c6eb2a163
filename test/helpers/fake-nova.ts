/**
 * Starts test/helpers/fake-nova.mjs (Nova's metadata API stand-in that checks the HMAC signature)
 * inside a network namespace, and reads back the requests it answered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fake-nova.mjs');

export interface NovaRequest {
  path: string;
  instanceId: string | null;
  projectId: string | null;
  forwardedFor: string | null;
  status: number;
}

export interface FakeNova {
  requests(): NovaRequest[];
  stop(): Promise<void>;
}

/** `netns` undefined: in this process's namespace (e.g. on a test site's management bridge). */
export async function startFakeNova(netns: string | undefined, host: string, port: number, secretFile: string): Promise<FakeNova> {
  const node = [process.execPath, script, host, String(port), secretFile];
  const [cmd, ...args] = netns === undefined ? node : ['ip', 'netns', 'exec', netns, ...node];
  const child: ChildProcess = spawn(cmd ?? '', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fake nova did not start: ${err}`)), 10_000);
    const check = () => {
      if (out.includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fake nova exited ${String(code)}: ${err}`));
    });
  });
  return {
    requests: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as NovaRequest),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
