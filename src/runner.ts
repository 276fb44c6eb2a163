/**
 * The one process seam. Everything that runs a program goes through a Runner so that tests can
 * swap in a recorder and `--dry-run` can print the plan instead of acting.
 */
import { createReadStream } from 'node:fs';
import type { ProcessOutput } from 'zx/core';
import { ExitError } from './errors.js';

export interface RunOptions {
  /** Run inside this network namespace (`ip netns exec NS ...`). */
  netns?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
  /** Stdin from this file, streamed (binary-safe, e.g. a tar archive); overrides `input`. */
  inputFile?: string;
  /** Milliseconds before the process is killed; default 30 s. */
  timeoutMs?: number;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  /** Mutating command: skipped (only printed) by a dry-run runner. Read-only queries still run. */
  mutates?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface Runner {
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

/** What an exit code usually means, for error messages. */
export function explainExitCode(code: number): string {
  if (code === 124) return 'timed out';
  if (code === 126) return 'found but not executable';
  if (code === 127) return 'command not found';
  if (code > 128 && code < 160) {
    const signals: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 15: 'SIGTERM' };
    return `killed by ${signals[code - 128] ?? `signal ${code - 128}`}`;
  }
  return 'failed';
}

export class CommandError extends ExitError {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult,
  ) {
    const tail = result.stderr.trim().split('\n').slice(-8).join('\n');
    super(
      `command ${explainExitCode(result.exitCode)} (exit ${result.exitCode}): ${argv.join(' ')}` +
        (tail === '' ? '' : `\n${tail}`),
      1,
    );
    this.name = 'CommandError';
  }
}

export function withNetns(argv: readonly string[], netns: string | undefined): string[] {
  return netns === undefined ? [...argv] : ['ip', 'netns', 'exec', netns, ...argv];
}

// Loaded on the first run: zx costs ~60 ms of start-up that the supervisor daemon (which imports
// withNetns) and commands that never spawn would pay for nothing.
let zx: Promise<typeof import('zx/core')> | undefined;

/** Runs real processes with zx. */
export class ZxRunner implements Runner {
  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const full = withNetns(argv, opts.netns);
    const { $ } = await (zx ??= import('zx/core'));
    const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
    let out: ProcessOutput;
    try {
      out = await $({
        quiet: true,
        nothrow: true,
        env,
        ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
        // No input means stdin is closed (EOF), never inherited: a program that reads stdin
        // (openssl s_client, ovsdb-client) must not hang until its timeout.
        ...(opts.inputFile !== undefined
          ? { input: createReadStream(opts.inputFile) }
          : opts.input === undefined || opts.input === ''
            ? { stdio: ['ignore', 'pipe', 'pipe'] as const }
            : { input: opts.input }),
        timeout: opts.timeoutMs ?? 30_000,
        timeoutSignal: 'SIGKILL',
      })`${full}`;
    } catch (err) {
      // zx throws (even with nothrow) when the program cannot be spawned at all.
      const result = { stdout: '', stderr: String(err), exitCode: 127 };
      if (opts.allowFailure) return result;
      throw new CommandError(full, result);
    }
    const exitCode = out.exitCode ?? (out.signal ? 128 + signalNumber(out.signal) : 1);
    const result = { stdout: out.stdout, stderr: out.stderr, exitCode };
    if (exitCode !== 0 && !opts.allowFailure) throw new CommandError(full, result);
    return result;
  }
}

function signalNumber(sig: string): number {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGTERM: 15 };
  return table[sig] ?? 0;
}

/** Prints mutating commands instead of running them; read-only queries go to `inner`. */
export class DryRunRunner implements Runner {
  readonly planned: string[][] = [];
  constructor(
    private readonly inner: Runner,
    private readonly print: (line: string) => void,
  ) {}
  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    if (opts.mutates === false) return this.inner.run(argv, opts);
    const full = withNetns(argv, opts.netns);
    this.planned.push(full);
    this.print(`would run: ${full.join(' ')}${opts.inputFile === undefined ? '' : ` < ${opts.inputFile}`}`);
    return { stdout: '', stderr: '', exitCode: 0 };
  }
}

/** Test double: records every call and answers from a scripted responder. */
export class RecordingRunner implements Runner {
  readonly calls: { argv: string[]; opts: RunOptions }[] = [];
  constructor(private readonly respond: (argv: string[]) => Partial<RunResult> = () => ({})) {}
  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const full = withNetns(argv, opts.netns);
    this.calls.push({ argv: full, opts });
    const r = { stdout: '', stderr: '', exitCode: 0, ...this.respond(full) };
    if (r.exitCode !== 0 && !opts.allowFailure) throw new CommandError(full, r);
    return r;
  }
}
