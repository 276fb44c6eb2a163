/** SSH and inventory options shared by `deploy`, `status --inventory` and `central add/remove`. */
import path from 'node:path';
import os from 'node:os';
import type { Command } from 'commander';
import type { Problem } from '../errors.js';

export interface SshCliOptions {
  /** Has a default (~/.ssh/known_hosts). */
  knownHosts: string;
  identity?: string;
  connectTimeout?: string;
}

export const DEFAULT_CONNECT_TIMEOUT_SEC = 10;

export function addSshOptions(cmd: Command): Command {
  return cmd
    .option('--known-hosts <file>', "known_hosts file with the hosts' SSH keys (host keys are always checked)", path.join(os.homedir(), '.ssh', 'known_hosts'))
    .option('--identity <file>', 'SSH private key to log in with (default: the ssh client\'s own)')
    .option('--connect-timeout <sec>', 'seconds before an unreachable host is given up', String(DEFAULT_CONNECT_TIMEOUT_SEC));
}

/** Output options of every deploying command (`deploy`, `central add`, `central remove`). */
export function addDeployOutputOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'print the result as JSON (progress goes to stderr)')
    .option('--plain', 'plain progress output (default when not on a terminal or under CI)')
    .option('--quiet', 'no progress output, only the result');
}

export function parseConnectTimeout(value: string | undefined, problems: Problem[]): number {
  if (value === undefined) return DEFAULT_CONNECT_TIMEOUT_SEC;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 600) {
    problems.push({ path: '--connect-timeout', message: `expected whole seconds from 1 to 600 (got ${JSON.stringify(value)})` });
    return DEFAULT_CONNECT_TIMEOUT_SEC;
  }
  return n;
}

/** `--hosts a,b --hosts c` -> [a, b, c]. */
export function hostList(values: string[] | string | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const list = Array.isArray(values) ? values : [values];
  return list.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

/** The SSH settings of the parsed options; a bad --connect-timeout is added to `problems`. */
export function sshSettingsOf(opts: SshCliOptions, problems: Problem[]): { knownHostsFile: string; identityFile?: string; connectTimeoutSec: number } {
  return {
    knownHostsFile: opts.knownHosts,
    ...(opts.identity === undefined ? {} : { identityFile: opts.identity }),
    connectTimeoutSec: parseConnectTimeout(opts.connectTimeout, problems),
  };
}
