/** The program with the commands a command line needs (every one, or the one it names). */
import type { Command } from 'commander';
import { commandsFor, loadCommands } from './commands/index.js';
import { buildProgramWith, runProgram } from './program.js';

export { EXIT_INTERNAL } from './program.js';

/** `names`: the commands to declare; every command when omitted. */
export async function buildProgram(names?: readonly string[]): Promise<Command> {
  const commands = await loadCommands(names);
  return buildProgramWith((program) => {
    for (const { command, hidden } of commands) program.addCommand(command, { hidden });
  });
}

export async function main(argv: string[]): Promise<number> {
  return runProgram(await buildProgram(commandsFor(argv.slice(2))), argv);
}
