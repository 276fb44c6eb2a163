/**
 * One file per command; each exports a function that returns its commander Command. Each is
 * loaded only when needed: a run of one command declares that command alone (the others'
 * declarations and their imports cost about 40 ms of every start), help and unknown commands get
 * them all.
 */
import type { Command } from 'commander';

const COMMANDS: Record<string, () => Promise<Command>> = {
  up: async () => (await import('./up.js')).upCommand(),
  apply: async () => (await import('./apply.js')).applyCommand(),
  status: async () => (await import('./status.js')).statusCommand(),
  deploy: async () => (await import('./deploy.js')).deployCommand(),
  central: async () => (await import('./central.js')).centralCommand(),
  down: async () => (await import('./down.js')).downCommand(),
  certs: async () => (await import('./certs.js')).certsCommand(),
  backup: async () => (await import('./backup.js')).backupCommand(),
  restore: async () => (await import('./restore.js')).restoreCommand(),
  pki: async () => (await import('./pki.js')).pkiCommand(),
  build: async () => (await import('./build.js')).buildCommand(),
  init: async () => (await import('./init.js')).initCommand(),
  validate: async () => (await import('./validate.js')).validateCommand(),
  schema: async () => (await import('./schema.js')).schemaCommand(),
  render: async () => (await import('./render.js')).renderCommand(),
  supervise: async () => (await import('./supervise.js')).superviseCommand(),
};

/** Started by `up` and `apply`, not by users: left out of the help. */
const HIDDEN = new Set(['supervise']);

/** The commands a command line needs: its own when it names one, otherwise every command. */
export function commandsFor(args: readonly string[]): string[] {
  const first = args[0];
  return first !== undefined && Object.hasOwn(COMMANDS, first) ? [first] : Object.keys(COMMANDS);
}

/** The declarations of `names`, in the order given (help lists them so). */
export async function loadCommands(names: readonly string[] = Object.keys(COMMANDS)): Promise<{ command: Command; hidden: boolean }[]> {
  return Promise.all(
    names.map(async (name) => {
      const load = COMMANDS[name];
      if (load === undefined) throw new Error(`no command ${name}`);
      return { command: await load(), hidden: HIDDEN.has(name) };
    }),
  );
}
