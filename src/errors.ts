/**
 * Errors that reach the CLI's single top-level catch. Library code throws these; only the CLI
 * prints them and turns them into exit codes.
 */

/** An error whose message is meant for the operator, with the exit code to leave with. */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 1,
  ) {
    super(message);
    this.name = 'ExitError';
  }
}

/** One problem found in an input file: where (file + dot-path) and what was expected. */
export interface Problem {
  file?: string;
  /** Dot-path into the document, e.g. `hosts[2].addresses[0]`; empty for the whole document. */
  path: string;
  message: string;
  severity?: 'error' | 'warning';
}

export function formatProblem(p: Problem): string {
  const where = [p.file, p.path].filter((s) => s !== undefined && s !== '').join(': ');
  return where === '' ? p.message : `${where}: ${p.message}`;
}

/** Bad input (a site file, a CSR, a flag): exit code 2, every problem listed. */
export class InputError extends ExitError {
  constructor(readonly problems: Problem[]) {
    super(problems.map(formatProblem).join('\n'), 2);
    this.name = 'InputError';
  }
}

/** Convenience for a single bad-input problem. */
export function inputError(message: string, path = '', file?: string): InputError {
  return new InputError([{ path, message, ...(file === undefined ? {} : { file }) }]);
}
