/** One file per command; each exports a function that returns its commander Command. */
import type { Command } from 'commander';

export function registerCommands(program: Command): void {
  // Commands are added here, one line each.
  void program;
}
