/**
 * Builds the commander program and is the one place that turns errors into output and exit codes
 * (ExitError -> its code; usage mistakes -> 2; anything else -> 70, an internal error).
 */
import { Command, CommanderError } from './commands/commander.js';
import { ExitError } from './errors.js';
import { packageVersion } from './version.js';
import { registerCommands } from './commands/index.js';

export const EXIT_INTERNAL = 70;


export function buildProgram(): Command {
  const program = new Command('ovn-deploy')
    .description('Build, package, deploy and secure OVN: PKI, TLS-1.2 stunnel, a local sandbox and real hosts')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  const exitOverrideAll = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(exitOverrideAll);
  };
  exitOverrideAll(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
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
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`ovn-deploy: internal error: ${detail}\n`);
    return EXIT_INTERNAL;
  }
}
