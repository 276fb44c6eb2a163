/** What every command shares: printing (only commands print) and option checks that collect problems. */
import { ExitError, InputError, type Problem } from '../errors.js';

export const out = (line: string): void => void process.stdout.write(`${line}\n`);
export const err = (line: string): void => void process.stderr.write(`${line}\n`);
export const printJson = (value: unknown): void => out(JSON.stringify(value, null, 2));

/** A positive whole-number option; a bad value is added to `problems` under the option's name. */
export function positiveInt(value: string | undefined, option: string, problems: Problem[]): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim()) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    problems.push({ path: option, message: `must be a positive integer (got ${JSON.stringify(value)})` });
    return undefined;
  }
  return Number(value);
}

/** Throws every collected option problem at once (exit code 2). */
export function throwIfProblems(problems: Problem[]): void {
  if (problems.length > 0) throw new InputError(problems);
}

/** The bounded reader of user files (src/input-file.ts), loaded by the action that reads one: start-up stays commander and the declarations. */
export const readInputText: typeof import('../input-file.js').readInputText = async (file, o) => (await import('../input-file.js')).readInputText(file, o);

/** Standard input, at most `max` bytes (more is bad input, exit 2). */
export async function readStdin(max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    size += (c as Buffer).length;
    if (size > max) throw new ExitError(`stdin: more than ${max} bytes`, 2);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
