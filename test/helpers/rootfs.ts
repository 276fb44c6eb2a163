/**
 * The Debian rootfs tarballs of the test images (mmdebstrap: about a minute each, on one core,
 * since dpkg unpacks one package at a time), each built at most once per cache. Every builder
 * holds an flock on `<tar>.lock` while it checks for the tarball and builds it, so the full run's
 * prebuild (test/setup/prebuild-rootfs.ts, in the background while other files run) and a
 * file's own ensure*Image() never build one twice, and a file that needs a tarball still being
 * built waits for it instead of starting a second build.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export interface RootfsRecipe {
  /** The finished tarball (ends in `.tar`: mmdebstrap picks the format from the name). */
  tar: string;
  /** mmdebstrap's argv without its output path, which is appended. */
  argv: readonly string[];
  timeoutMs: number;
}

// Under the lock: done if the tarball exists; else build into `<tar>.partial.tar` (removed on any
// failure) and rename it into place. $1 is the tarball, the rest is mmdebstrap's argv.
const BUILD_SCRIPT = [
  'set -e',
  'r=$1; shift',
  '[ -e "$r" ] && exit 0',
  't="$r.partial.tar"',
  'trap \'rm -f "$t"\' EXIT',
  'rm -f "$t"',
  '"$@" "$t"',
  'mv "$t" "$r"',
].join('\n');

function buildArgv(r: RootfsRecipe): string[] {
  mkdirSync(path.dirname(r.tar), { recursive: true });
  return ['flock', `${r.tar}.lock`, 'sh', '-c', BUILD_SCRIPT, 'sh', r.tar, ...r.argv];
}

/** Builds the tarball unless it exists (waiting while another builder holds it). */
export function ensureRootfs(r: RootfsRecipe): void {
  const [cmd = '', ...args] = buildArgv(r);
  const p = spawnSync(cmd, args, { encoding: 'utf8', timeout: r.timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (p.status !== 0) throw new Error(`building ${r.tar} (${r.argv.slice(0, 3).join(' ')} ...) failed (${String(p.status ?? p.signal)}): ${(p.stderr ?? '').slice(-2000)}`);
}

export interface BackgroundBuild {
  tar: string;
  /** Resolves with the exit code when the builder exits (0: the tarball is there). */
  done: Promise<number>;
  /** SIGTERM to the builder's process group (flock, sh, mmdebstrap). */
  stop(): void;
}

/**
 * The same build as ensureRootfs, started in the background in a process group of its own, its
 * output appended to `log`. A failure is only logged: the file that needs the tarball then
 * builds it itself (under the lock) and reports its own error.
 */
export function startRootfs(r: RootfsRecipe, log: number): BackgroundBuild {
  const [cmd = '', ...args] = buildArgv(r);
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', log, log] });
  const done = new Promise<number>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('exit', (code) => resolve(code ?? -1));
  });
  return {
    tar: r.tar,
    done,
    stop: () => {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    },
  };
}
