/** How `backup` and `restore` pick what they work on: the sandbox (`--dir`, the default) or a site (`--inventory`). */
import { Command, Option } from './commander.js';
import type { Problem } from '../errors.js';
import { defaultSandboxDir } from '../paths.js';
import { addSshOptions, sshSettingsOf, type SshCliOptions } from '../deploy/cli-options.js';
import type { DbTarget } from '../backup/target.js';
import { throwIfProblems } from './cli-io.js';

export interface DbTargetOptions extends Partial<SshCliOptions> {
  dir?: string;
  inventory?: string;
}

export function addDbTargetOptions(cmd: Command): Command {
  cmd.addOption(new Option('--dir <dir>', `state directory of the sandbox (default ${defaultSandboxDir()})`));
  cmd.option('--inventory <file>', 'a site of real hosts (the inventory `deploy` uses), reached over SSH');
  return addSshOptions(cmd);
}

export function sshOf(o: DbTargetOptions, problems: Problem[]) {
  return sshSettingsOf({ knownHosts: o.knownHosts ?? '', ...(o.identity === undefined ? {} : { identity: o.identity }), ...(o.connectTimeout === undefined ? {} : { connectTimeout: o.connectTimeout }) }, problems);
}

/** Checks the selection (problems collected with the caller's) and returns how to open it. */
export function dbTargetOf(o: DbTargetOptions, problems: Problem[]): () => Promise<DbTarget> {
  if (o.inventory !== undefined && o.dir !== undefined) problems.push({ path: '--dir', message: 'either --dir (the sandbox) or --inventory (a site), not both' });
  const ssh = o.inventory === undefined ? undefined : sshOf(o, problems);
  throwIfProblems(problems);
  const inventoryFile = o.inventory;
  if (inventoryFile === undefined || ssh === undefined) return async () => (await import('../backup/target.js')).sandboxTarget(o.dir ?? defaultSandboxDir());
  return async () => (await import('../backup/target.js')).siteTarget({ inventoryFile, ssh });
}
