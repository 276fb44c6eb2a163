/**
 * A throw-away "host" on this machine for tests that run real daemons as if on a real host: its
 * own network namespace and its own mount namespace in which /etc, /var and /opt are overlays
 * (writes land in a temp dir, the machine's files stay untouched) and /run is a fresh tmpfs.
 * A long-lived holder process keeps both namespaces; commands run in them with nsenter; destroy()
 * kills only the processes inside our network namespace, then deletes it and the temp dirs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ZxRunner, type RunOptions, type RunResult, type Runner } from '../../src/runner.js';
import { pidsInNetns } from '../../src/tools/netns.js';

export interface HostNamespace {
  /** Network namespace name (`ip netns`). */
  netns: string;
  holderPid: number;
  /** Where the overlays' upper dirs live (what the "host" wrote). */
  scratch: string;
  /** A Runner whose every command runs inside the host (nsenter into the holder's namespaces). */
  runner: Runner;
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  destroy(): Promise<void>;
}

/** Overlaid (copy-on-write) in the host: every distro and ovn-deploy path lives below these. */
const OVERLAID = ['/etc', '/var', '/opt'];

export async function createHostNamespace(prefix = 'ovnd-host'): Promise<HostNamespace> {
  const netns = `${prefix}-${randomBytes(3).toString('hex')}`;
  const scratch = mkdtempSync(path.join(os.tmpdir(), `${netns}-`));
  const real = new ZxRunner();
  await real.run(['ip', 'netns', 'add', netns]);
  const mounts = OVERLAID.map((dir) => {
    const name = dir.slice(1);
    const upper = path.join(scratch, `${name}-upper`);
    const work = path.join(scratch, `${name}-work`);
    mkdirSync(upper, { recursive: true });
    mkdirSync(work, { recursive: true });
    return `mount -t overlay overlay -o lowerdir=${dir},upperdir=${upper},workdir=${work} ${dir}`;
  });
  const script = ['set -e', ...mounts, 'mount -t tmpfs -o mode=755 tmpfs /run', 'ip link set lo up', 'echo ready', 'exec sleep 2147483647'].join('\n');
  // ip netns exec and unshare both exec: the child's pid ends up being the sleeping holder.
  const holder: ChildProcess = spawn('ip', ['netns', 'exec', netns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  holder.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`namespace holder not ready: ${stderr}`)), 10_000);
    holder.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    holder.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`namespace holder exited (${code}): ${stderr}`));
    });
  });
  const holderPid = holder.pid ?? 0;
  const inside = (argv: readonly string[]): string[] => ['nsenter', `--target=${holderPid}`, '--mount', '--net', '--', ...argv];
  const runner: Runner = { run: (argv, opts = {}) => real.run(inside(argv), opts) };
  return {
    netns,
    holderPid,
    scratch,
    runner,
    run: (argv, opts) => runner.run(argv, opts),
    destroy: async () => {
      // Only processes inside our own network namespace (the holder, the supervisor, daemons).
      for (let round = 0; round < 20; round++) {
        const pids = pidsInNetns([netns]);
        if (pids.length === 0) break;
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await real.run(['ip', 'netns', 'del', netns], { allowFailure: true });
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
