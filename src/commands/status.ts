/**
 * `ovn-deploy status`: health of a sandbox. Exit code 0 when healthy, 1 when not, 3 when there
 * is no sandbox in the directory. `--json` prints the report for scripts (`healthy`, `stateDir`,
 * `pkiDir`, `endpoints`, `daemons`, `chassis`, `ports`, `certificates`...).
 */
import { Command } from 'commander';
import { defaultSandboxDir } from '../paths.js';

export function statusCommand(): Command {
  return new Command('status')
    .description('health of the sandbox: daemons, NB/SB through TLS, chassis, ports, certificates (exit 0 healthy, 1 unhealthy, 3 none)')
    .option('--dir <dir>', 'state directory of the sandbox', defaultSandboxDir())
    .option('--json', 'print the report as JSON')
    .action(async (opts: { dir: string; json?: boolean }) => {
      const { sandboxStatus } = await import('../sandbox/status-command.js');
      const { STATUS_EXIT } = await import('../sandbox/status.js');
      const { renderStatusTable } = await import('../sandbox/status-verdict.js');
      const report = await sandboxStatus(opts.dir);
      if (report === undefined) {
        if (opts.json === true) process.stdout.write(`${JSON.stringify({ healthy: false, exists: false, stateDir: opts.dir }, null, 2)}\n`);
        else process.stderr.write(`ovn-deploy: no sandbox in ${opts.dir} (run ovn-deploy up)\n`);
        process.exitCode = STATUS_EXIT.noSandbox;
        return;
      }
      process.stdout.write(opts.json === true ? `${JSON.stringify({ exists: true, ...report }, null, 2)}\n` : renderStatusTable(report));
      process.exitCode = report.healthy ? STATUS_EXIT.healthy : STATUS_EXIT.unhealthy;
    });
}
