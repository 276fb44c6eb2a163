/**
 * Logs of long build steps: each command's merged output is appended to the step's log file, and
 * a failure becomes a StepFailed that carries the log's tail, so CI shows why without digging.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ExitError } from '../errors.js';
import { explainExitCode, type RunResult, type Runner } from '../runner.js';
import { runMerged } from './rpm.js';

export const LOG_TAIL_LINES = 40;

export function tailLines(text: string, n = LOG_TAIL_LINES): string {
  return text.replace(/\s+$/, '').split('\n').slice(-n).join('\n');
}

/** A build step failed: which one, where its full log is, and the log's last lines. */
export class StepFailed extends ExitError {
  constructor(
    readonly step: string,
    readonly reason: string,
    readonly logFile?: string,
    readonly logTail?: string,
  ) {
    super(
      `build step "${step}" failed: ${reason}` +
        (logFile === undefined ? '' : `\nfull log: ${logFile}`) +
        (logTail === undefined || logTail === '' ? '' : `\n--- last lines of the log ---\n${logTail}`),
      1,
    );
    this.name = 'StepFailed';
  }
}

export async function appendLog(file: string, text: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.appendFile(file, text);
}

export interface LoggedRunOptions {
  step: string;
  log: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs: number;
}

/** Runs `argv` (stderr merged into stdout), appends the output to the log; throws StepFailed on failure. */
export async function runLogged(runner: Runner, argv: readonly string[], opts: LoggedRunOptions): Promise<RunResult> {
  await appendLog(opts.log, `$ ${argv.join(' ')}\n`);
  const r = await runMerged(runner, argv, { timeoutMs: opts.timeoutMs, ...(opts.env === undefined ? {} : { env: opts.env }), ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) });
  await appendLog(opts.log, r.stdout + (r.stderr === '' ? '' : `\n${r.stderr}`) + `\n[exit ${r.exitCode}]\n`);
  if (r.exitCode !== 0) {
    throw new StepFailed(opts.step, `${path.basename(argv[0] ?? '?')} ${explainExitCode(r.exitCode)} (exit ${r.exitCode})`, opts.log, tailLines(r.stdout + r.stderr));
  }
  return r;
}
