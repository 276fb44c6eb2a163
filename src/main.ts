/** The program with every command (the CLI's entry for all but `pki ...`, see cli.ts). */
import { registerCommands } from './commands/index.js';
import { buildProgramWith, runProgram } from './program.js';

export { EXIT_INTERNAL } from './program.js';

export function buildProgram(): ReturnType<typeof buildProgramWith> {
  return buildProgramWith(registerCommands);
}

export async function main(argv: string[]): Promise<number> {
  return runProgram(buildProgram(), argv);
}
