/** One file per command; each exports a function that returns its commander Command. */
import type { Command } from 'commander';
import { initCommand } from './init.js';
import { schemaCommand } from './schema.js';
import { superviseCommand } from './supervise.js';
import { validateCommand } from './validate.js';

export function registerCommands(program: Command): void {
  program.addCommand(initCommand());
  program.addCommand(validateCommand());
  program.addCommand(schemaCommand());
  program.addCommand(superviseCommand(), { hidden: true });
}
