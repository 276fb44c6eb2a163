/**
 * The commander program without its commands, and the one place that turns errors into output
 * and exit codes (ExitError -> its code; usage mistakes -> 2; a full disk, a read-only mount or
 * no permission -> 1; anything else -> 70, an internal error). main.ts gives it its commands.
 */
import { Command, CommanderError } from './commands/commander.js';
import { ExitError } from './errors.js';
import { packageVersion } from './version.js';

export const EXIT_INTERNAL = 70;

/**
 * A path the user gave that is the wrong kind of thing (a file where a directory must be...):
 * bad input (exit 2, one line), not an internal error. Nothing of ours makes these on its own paths.
 */
const PATH_MISTAKES: Record<string, string> = {
  ENOTDIR: 'a part of this path is a file, expected a directory',
  EISDIR: 'is a directory, expected a file',
  ENAMETOOLONG: 'the path is too long',
  ELOOP: 'too many levels of symbolic links',
};

/**
 * The machine said no (a full disk, a read-only mount, no permission): one line naming the path
 * and the reason, exit 1, no stack trace; nothing about it is ours to debug.
 */
const ENVIRONMENT_REFUSALS: Record<string, string> = {
  ENOSPC: 'no space left on its file system (no free blocks or inodes)',
  EDQUOT: 'the disk quota is exhausted',
  EROFS: 'its file system is mounted read-only',
  EACCES: 'permission denied (most commands that change a host need root)',
  EPERM: 'operation not permitted (most commands that change a host need root)',
};

function environmentRefusal(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof Error) || typeof e.code !== 'string') return undefined;
  const why = ENVIRONMENT_REFUSALS[e.code];
  if (why === undefined) return undefined;
  return typeof e.path === 'string' ? `${e.path}: ${why}` : `${e.syscall ?? 'a system call'}: ${why}`;
}

function pathMistake(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof Error) || typeof e.code !== 'string' || typeof e.path !== 'string') return undefined;
  const why = PATH_MISTAKES[e.code] ?? (e.code === 'EEXIST' && e.syscall === 'mkdir' ? 'exists and is not a directory' : undefined);
  return why === undefined ? undefined : `${e.path}: ${why}`;
}


export function buildProgramWith(register: (program: Command) => void): Command {
  const program = new Command('ovn-deploy')
    .description('Build, package, deploy and secure OVN: PKI, TLS-1.2 stunnel, a local sandbox and real hosts')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  register(program);
  const exitOverrideAll = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(exitOverrideAll);
  };
  exitOverrideAll(program);
  return program;
}

export async function runProgram(program: Command, argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with exit code 0; usage mistakes are bad input.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof ExitError) {
      process.stderr.write(`ovn-deploy: ${err.message}\n`);
      return err.exitCode;
    }
    const mistake = pathMistake(err);
    if (mistake !== undefined) {
      process.stderr.write(`ovn-deploy: ${mistake}\n`);
      return 2;
    }
    const refusal = environmentRefusal(err);
    if (refusal !== undefined) {
      process.stderr.write(`ovn-deploy: ${refusal}\n`);
      return 1;
    }
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`ovn-deploy: internal error: ${detail}\n`);
    return EXIT_INTERNAL;
  }
}
