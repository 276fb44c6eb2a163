/**
 * The system OpenSSH client, typed, through the Runner seam. Host keys are always checked
 * (StrictHostKeyChecking=yes against an explicit known_hosts file when given), never a password
 * prompt (BatchMode), one multiplexed connection per host (ControlMaster) so that the many small
 * calls of a deploy pay the handshake once.
 *
 * Failures are told apart by `SshError.kind`: ssh's own failures exit 255 and say why on stderr
 * (unreachable, host key, authentication); anything else is the remote command's exit status.
 */
import { lstatSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExitError } from '../errors.js';
import { ZxRunner, type RunResult, type Runner } from '../runner.js';

export interface SshTarget {
  /** Inventory host name (for messages). */
  name: string;
  user: string;
  /** Address or DNS name to connect to (what known_hosts must list). */
  host: string;
  port: number;
}

export interface SshOptions {
  /** known_hosts to check the host key against; default: the user's own (~/.ssh/known_hosts). */
  knownHostsFile?: string;
  /** Private key; with it, only this key is offered (IdentitiesOnly). */
  identityFile?: string;
  /** TCP connect + handshake deadline; default 5 s. */
  connectTimeoutSec?: number;
  /** Directory for the ControlMaster socket; default a private mkdtemp dir, removed by close(). */
  controlDir?: string;
  /** How long the master connection stays after the last call; default 60 s. */
  controlPersistSec?: number;
  runner?: Runner;
}

export type SshErrorKind =
  /** No TCP connection (refused, timed out, no route, name unknown) or the connection dropped. */
  | 'unreachable'
  /** The host's key is unknown or differs from known_hosts: possibly a different machine. */
  | 'host-key'
  /** Connected and the host key matched, but the server refused our key. */
  | 'auth'
  /** The remote command ran and exited non-zero. */
  | 'command-failed'
  /** The call took longer than its timeout and was killed. */
  | 'timeout';

export class SshError extends ExitError {
  constructor(
    readonly kind: SshErrorKind,
    readonly target: SshTarget,
    message: string,
    readonly result?: RunResult,
  ) {
    super(message, 1);
    this.name = 'SshError';
  }
}

export interface SshRunOptions {
  input?: string;
  /** Stdin streamed from a local file (binary-safe). */
  inputFile?: string;
  /** Default 60 s. */
  timeoutMs?: number;
  /** Return a remote non-zero exit instead of throwing (ssh's own failures still throw). */
  allowFailure?: boolean;
  /** False for a read-only query: a dry-run runner still runs it. Default true. */
  mutates?: boolean;
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes one argument for a POSIX shell (the remote login shell parses what ssh sends). */
export function shellQuote(arg: string): string {
  if (arg !== '' && SAFE_WORD.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The command line ssh hands to the remote shell for an argv. */
export function remoteCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('remote command must not be empty');
  return argv.map(shellQuote).join(' ');
}

/**
 * What ssh's exit 255 means, from its stderr. OpenSSH has no machine-readable reason, but these
 * messages have been stable for many releases.
 */
export function classifySshFailure(stderr: string): Exclude<SshErrorKind, 'command-failed' | 'timeout'> {
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known|host key .* has changed|Host key for .* has changed/i.test(stderr)) {
    return 'host-key';
  }
  if (/Permission denied|Too many authentication failures|no mutual signature algorithm/i.test(stderr)) return 'auth';
  return 'unreachable';
}

function lastLines(text: string, n = 6): string {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '' && !/^Warning: Permanently added/.test(l))
    .slice(-n)
    .join('\n');
}

export class Ssh {
  private readonly runner: Runner;
  private readonly controlDir: string;
  private readonly ownsControlDir: boolean;
  private readonly connectTimeoutSec: number;

  constructor(
    readonly target: SshTarget,
    private readonly opts: SshOptions = {},
  ) {
    this.runner = opts.runner ?? new ZxRunner();
    this.connectTimeoutSec = opts.connectTimeoutSec ?? 5;
    if (opts.controlDir !== undefined) {
      this.controlDir = opts.controlDir;
      this.ownsControlDir = false;
    } else {
      // Private (0700) and short: a unix socket path must stay under ~108 bytes.
      this.controlDir = mkdtempSync(path.join(os.tmpdir(), 'od-ssh-'));
      this.ownsControlDir = true;
    }
  }

  /** `user@host` plus everything before it: the ssh argv without the remote command. */
  baseArgv(): string[] {
    const o = this.opts;
    if (this.ownsControlDir) this.ensureControlDir();
    const args = [
      'ssh',
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', `ConnectTimeout=${this.connectTimeoutSec}`,
      '-o', 'ServerAliveInterval=5',
      '-o', 'ServerAliveCountMax=3',
      '-o', 'ControlMaster=auto',
      // %C: a hash of local host, remote host, port and user: short and unique per target.
      '-o', `ControlPath=${path.join(this.controlDir, '%C')}`,
      '-o', `ControlPersist=${o.controlPersistSec ?? 60}`,
      '-o', 'LogLevel=ERROR',
      '-p', String(this.target.port),
    ];
    if (o.knownHostsFile !== undefined) args.push('-o', `UserKnownHostsFile=${o.knownHostsFile}`, '-o', 'GlobalKnownHostsFile=/dev/null');
    if (o.identityFile !== undefined) args.push('-o', 'IdentitiesOnly=yes', '-i', o.identityFile);
    args.push('-l', this.target.user, this.target.host);
    return args;
  }

  /** close() removes our private socket dir; a later call recreates it (and checks it is still ours). */
  private ensureControlDir(): void {
    mkdirSync(this.controlDir, { recursive: true, mode: 0o700 });
    const st = lstatSync(this.controlDir);
    if (!st.isDirectory() || (st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) {
      throw new Error(`ssh control directory ${this.controlDir} is not a private directory of ours`);
    }
  }

  private describe(): string {
    const t = this.target;
    return `${t.name} (${t.user}@${t.host}:${t.port})`;
  }

  /**
   * Runs argv on the host (quoted for the remote shell). Throws SshError: `unreachable`,
   * `host-key`, `auth` (ssh exit 255), `timeout`, or `command-failed` unless allowFailure.
   * A remote command that itself exits 255 is indistinguishable from ssh failing (and one that
   * exits 124 from a timeout): avoid those codes. The command runs under the host's `timeout`.
   * Processes it leaves running must not keep its stdout/stderr open, or the call lasts until they
   * exit (ssh waits for every holder of the session's pipes): daemons must redirect their stdio.
   */
  async run(remoteArgv: readonly string[], o: SshRunOptions = {}): Promise<RunResult> {
    const timeoutMs = o.timeoutMs ?? 60_000;
    // The deadline is enforced on the host (coreutils `timeout`, exit 124): killing the local ssh
    // alone does not end the call, because a multiplexed session's stdio was handed to the master
    // connection, which keeps it open until the remote command exits. The local kill (runner
    // timeout) is the backstop for a host that stops answering.
    const remoteSec = Math.max(1, Math.ceil(timeoutMs / 1000));
    const argv = [...this.baseArgv(), '--', remoteCommand(['timeout', '-k', '5', String(remoteSec), ...remoteArgv])];
    const started = Date.now();
    const r = await this.runner.run(argv, {
      ...(o.input === undefined ? {} : { input: o.input }),
      ...(o.inputFile === undefined ? {} : { inputFile: o.inputFile }),
      timeoutMs: timeoutMs + 5_000 + this.connectTimeoutSec * 1000,
      allowFailure: true,
      mutates: o.mutates ?? true,
    });
    if (r.exitCode === 0) return r;
    if (r.exitCode === 127 && /ENOENT|spawn ssh/.test(r.stderr)) throw new ExitError('the OpenSSH client (ssh) is not installed on this machine', 1);
    const cmd = remoteCommand(remoteArgv);
    const shortCmd = cmd.length > 200 ? `${cmd.slice(0, 200)}...` : cmd;
    // 124: the remote `timeout` fired; 137 past the deadline: it (or the runner) had to SIGKILL.
    if (r.exitCode === 124 || (r.exitCode === 137 && Date.now() - started >= timeoutMs)) {
      throw new SshError('timeout', this.target, `ssh to ${this.describe()}: \`${shortCmd}\` timed out after ${timeoutMs} ms`, r);
    }
    if (r.exitCode === 255) {
      const kind = classifySshFailure(r.stderr);
      const why =
        kind === 'host-key'
          ? `host key check failed (the host's key is not the one in ${this.opts.knownHostsFile ?? 'known_hosts'}: a different or reinstalled machine?)`
          : kind === 'auth'
            ? `authentication refused for user ${this.target.user}${this.opts.identityFile === undefined ? '' : ` with key ${this.opts.identityFile}`}`
            : `host unreachable`;
      throw new SshError(kind, this.target, `ssh to ${this.describe()}: ${why}\n${lastLines(r.stderr)}`.trimEnd(), r);
    }
    if (o.allowFailure) return r;
    throw new SshError(
      'command-failed',
      this.target,
      `on ${this.target.name}: \`${shortCmd}\` failed (exit ${r.exitCode})\n${lastLines(r.stderr, 8)}`.trimEnd(),
      r,
    );
  }

  /**
   * Whether the host answers over SSH (connect, host key, login, `true`). False when it cannot be
   * reached in time; a host-key or authentication problem throws (it is reachable but wrong).
   */
  async reachable(): Promise<boolean> {
    try {
      await this.run(['true'], { timeoutMs: (this.connectTimeoutSec + 10) * 1000 });
      return true;
    } catch (err) {
      if (err instanceof SshError && (err.kind === 'unreachable' || err.kind === 'timeout')) return false;
      throw err;
    }
  }

  /**
   * Replaces remoteDir by the contents of localDir: a tar stream over ssh is extracted into
   * `remoteDir.new`, then the old directory is moved away and the new one into place (two
   * renames; apply never reads the directory while deploy pushes it). Modes are kept; owner is
   * the remote user.
   */
  async pushDirectory(localDir: string, remoteDir: string, o: { timeoutMs?: number; runner?: Runner } = {}): Promise<void> {
    if (!path.posix.isAbsolute(remoteDir) || remoteDir === '/' || /[\n\0]/.test(remoteDir)) throw new Error(`pushDirectory: remote directory must be absolute, not /: ${remoteDir}`);
    const dir = remoteDir.replace(/\/+$/, '');
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'od-push-'));
    const archive = path.join(tmp, 'dir.tar.gz');
    try {
      await (o.runner ?? this.runner).run(['tar', '-C', localDir, '--owner=0', '--group=0', '--numeric-owner', '-czf', archive, '.'], {
        timeoutMs: 120_000,
        mutates: false,
      });
      await this.run(['sh', '-c', PUSH_SCRIPT, 'ovn-deploy-push', dir], { inputFile: archive, timeoutMs: o.timeoutMs ?? 300_000 });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  /** Ends the multiplexed master connection (if any) and removes its private socket dir. */
  async close(): Promise<void> {
    await this.runner.run([...this.baseArgv().slice(0, -1), '-O', 'exit', this.target.host], { timeoutMs: 10_000, allowFailure: true, mutates: true });
    if (this.ownsControlDir) rmSync(this.controlDir, { recursive: true, force: true });
  }
}

/** Remote side of pushDirectory: $1 = target directory; stdin = gzipped tar. */
const PUSH_SCRIPT = [
  'set -e',
  'd="$1"',
  'mkdir -p "$(dirname "$d")"',
  'rm -rf "$d.new" "$d.old"',
  'mkdir -m 0755 "$d.new"',
  'tar -xzf - -C "$d.new" --no-same-owner',
  'if [ -e "$d" ]; then mv "$d" "$d.old"; fi',
  'mv "$d.new" "$d"',
  'rm -rf "$d.old"',
].join('\n');
