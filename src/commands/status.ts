/**
 * `ovn-deploy status`: health of a sandbox. Exit code 0 when healthy, 1 when not, 3 when there
 * is no sandbox in the directory. `--json` prints the report for scripts (`healthy`, `stateDir`,
 * `pkiDir`, `endpoints`, `daemons`, `chassis`, `ports`, `certificates`...).
 *
 * With `--inventory site.yaml` it is the status of a real site over SSH instead: per host
 * reachable + `apply --check`, the RAFT clusters as every reachable central sees them, the
 * chassis. Exit 0 healthy, 1 degraded, 3 no host reachable.
 */
import { existsSync, statSync } from 'node:fs';
import { Command } from './commander.js';
import { defaultSandboxDir, sandboxPaths } from '../paths.js';
import { canonicalDir, STATUS_EXIT } from '../sandbox/naming.js';
import { inputError, type Problem } from '../errors.js';
import { addSshOptions, sshSettingsOf, type SshCliOptions } from '../deploy/cli-options.js';
import { positiveInt, throwIfProblems } from './cli-io.js';

async function siteStatusAction(opts: SshCliOptions & { inventory: string; json?: boolean; concurrency?: string }): Promise<void> {
  const problems: Problem[] = [];
  const ssh = sshSettingsOf(opts, problems);
  const concurrency = positiveInt(opts.concurrency, '--concurrency', problems);
  throwIfProblems(problems);
  const { loadInventory } = await import('../inventory/index.js');
  const { sshConnector } = await import('../deploy/ssh-connect.js');
  const { collectSiteStatus } = await import('../site-status/collect.js');
  const { SITE_STATUS_EXIT } = await import('../site-status/judge.js');
  const { renderSiteStatus } = await import('../site-status/render.js');
  const { inventory } = await loadInventory(opts.inventory);
  const connect = sshConnector({ ...ssh, shipTool: false });
  const status = await collectSiteStatus(inventory, connect, concurrency ?? 8);
  process.stdout.write(opts.json === true ? `${JSON.stringify(status, null, 2)}\n` : renderSiteStatus(status));
  process.exitCode = SITE_STATUS_EXIT[status.verdict];
}

export function statusCommand(): Command {
  const cmd = new Command('status')
    .description('health of the sandbox: daemons, NB/SB through TLS, chassis, ports, certificates (exit 0 healthy, 1 unhealthy, 3 none); with --inventory: a real site over SSH (exit 0 healthy, 1 degraded, 3 nothing reachable)')
    .option('--dir <dir>', 'state directory of the sandbox', defaultSandboxDir())
    .option('--inventory <file>', 'status of the real site in this inventory (over SSH) instead of the sandbox')
    .option('--concurrency <n>', 'with --inventory: hosts asked at the same time', '8');
  return addSshOptions(cmd)
    .option('--json', 'print the report as JSON')
    .action(async (opts: SshCliOptions & { dir: string; json?: boolean; inventory?: string; concurrency?: string }) => {
      if (opts.inventory !== undefined) {
        await siteStatusAction({ ...opts, inventory: opts.inventory });
        return;
      }
      if (statSync(opts.dir, { throwIfNoEntry: false })?.isDirectory() === false) {
        throw inputError('is not a directory: --dir names the sandbox state directory', '--dir', opts.dir);
      }
      // No state file, no sandbox: answered without loading the collector (monitoring loops ask often).
      const exists = existsSync(sandboxPaths(canonicalDir(opts.dir)).state);
      const report = exists ? await (await import('../sandbox/status-command.js')).sandboxStatus(opts.dir) : undefined;
      if (report === undefined) {
        if (opts.json === true) process.stdout.write(`${JSON.stringify({ healthy: false, exists: false, stateDir: opts.dir }, null, 2)}\n`);
        else process.stderr.write(`ovn-deploy: no sandbox in ${opts.dir} (run ovn-deploy up)\n`);
        process.exitCode = STATUS_EXIT.noSandbox;
        return;
      }
      const { renderStatusTable } = await import('../sandbox/status-verdict.js');
      process.stdout.write(opts.json === true ? `${JSON.stringify({ exists: true, ...report }, null, 2)}\n` : renderStatusTable(report));
      process.exitCode = report.healthy ? STATUS_EXIT.healthy : STATUS_EXIT.unhealthy;
    });
}
