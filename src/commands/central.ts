/**
 * `ovn-deploy central add HOST` / `central remove HOST`: growing and shrinking the RAFT clusters.
 *
 * add: HOST is already a central in the inventory. The existing centrals are deployed first (their
 * stunnel clients learn the new peer), then HOST (its apply joins the running clusters), then the
 * workers (their remote lists gain HOST).
 * remove: HOST leaves both clusters cleanly, stops its central services and moves its databases
 * aside (`central leave-local`, run on HOST over SSH); then it must leave the inventory and the
 * others be deployed again (`--redeploy` does that with an inventory that no longer lists it).
 */
import { Command } from './commander.js';
import type { Problem } from '../errors.js';
import { ExitError } from '../errors.js';
import { addDeployOutputOptions, addSshOptions, sshSettingsOf } from '../deploy/cli-options.js';
import { out, printJson, throwIfProblems } from './cli-io.js';
import { deployFromCli, type DeployRunCliOptions } from './deploy.js';

interface CentralCliOptions extends DeployRunCliOptions {
  inventory: string;
  pki?: string;
  redeploy?: string;
}

function addSub(): Command {
  const cmd = new Command('add')
    .description('add HOST (listed as a central in the inventory) to the running clusters: existing centrals, then HOST, then the workers')
    .argument('<host>', 'the new central (already in the inventory with role central)')
    .requiredOption('--inventory <file>', 'site inventory that lists HOST as a central')
    .requiredOption('--pki <dir>', 'PKI directory of the site CA')
    .option('--concurrency <n>', 'hosts deployed at the same time', '4')
    .option('--metadata-secret-file <file>', "file holding the metadata agents' shared secret");
  return addDeployOutputOptions(addSshOptions(cmd))
    .action(async (host: string, opts: CentralCliOptions) => {
      const { ok, json } = await deployFromCli(opts, { inventoryFile: opts.inventory, pkiDir: opts.pki as string, addCentral: host });
      if (opts.json === true) printJson(json);
      process.exitCode = ok ? 0 : 1;
    });
}

function removeSub(): Command {
  const cmd = new Command('remove')
    .description('HOST leaves both RAFT clusters cleanly, stops its central services and moves its databases aside')
    .argument('<host>', 'the central to remove')
    .requiredOption('--inventory <file>', 'site inventory that still lists HOST (to reach it)')
    .option('--redeploy <file>', 'then deploy this inventory (the site without HOST as a central) to every host')
    .option('--pki <dir>', 'PKI directory of the site CA (needed with --redeploy)')
    .option('--concurrency <n>', 'hosts deployed at the same time (with --redeploy)', '4')
    .option('--metadata-secret-file <file>', "file holding the metadata agents' shared secret (with --redeploy)");
  return addDeployOutputOptions(addSshOptions(cmd))
    .action(async (hostName: string, opts: CentralCliOptions) => {
      const problems: Problem[] = [];
      const ssh = sshSettingsOf(opts, problems);
      if (opts.redeploy !== undefined && opts.pki === undefined) problems.push({ path: '--pki', message: 'required with --redeploy' });
      throwIfProblems(problems);
      const { loadInventory } = await import('../inventory/index.js');
      const { sshConnector } = await import('../deploy/ssh-connect.js');
      const { removeCentral } = await import('../deploy/central-remove.js');
      const { inventory } = await loadInventory(opts.inventory);
      // The inventory to redeploy is checked before anything changes: a mistake there must not
      // leave a central that left the cluster while the others still list it.
      if (opts.redeploy !== undefined) {
        const { inventory: next } = await loadInventory(opts.redeploy);
        if (next.hosts.some((h) => h.name === hostName && h.roles.includes('central'))) {
          throw new ExitError(`${opts.redeploy} still lists ${hostName} as a central: remove it (or its central role) before --redeploy`, 2);
        }
      }
      const report = await removeCentral(inventory, hostName, sshConnector({ ...ssh, shipTool: false }));
      if (opts.json !== true) {
        for (const d of report.dbs) out(`${hostName} ${d.db}: ${d.outcome} (${d.detail})`);
        out(`${hostName}: stopped ${report.stopped.join(', ')}; databases moved aside: ${report.movedAside.join(', ') || 'none'}`);
      }
      if (opts.redeploy === undefined) {
        if (opts.json === true) printJson({ removed: report });
        else out(`next: remove ${hostName} (or its central role) from ${opts.inventory} and run \`ovn-deploy deploy\` so the other hosts drop it from their remote lists`);
        return;
      }
      const { ok, json } = await deployFromCli(opts, { inventoryFile: opts.redeploy, pkiDir: opts.pki as string });
      if (opts.json === true) printJson({ removed: report, deploy: json });
      process.exitCode = ok ? 0 : 1;
    });
}

function leaveLocalSub(): Command {
  return new Command('leave-local')
    .description('(internal, run on a central by `central remove`) leave both clusters, stop the central services, move the databases aside')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { ZxRunner } = await import('../runner.js');
      const { leaveClusterLocally } = await import('../deploy/central-leave.js');
      const report = await leaveClusterLocally(new ZxRunner());
      if (opts.json === true) printJson(report);
      else for (const d of report.dbs) out(`${d.db}: ${d.outcome} (${d.detail})`);
    });
}

export function centralCommand(): Command {
  return new Command('central')
    .description('grow or shrink the clustered central (RAFT): add / remove a central host')
    .addCommand(addSub())
    .addCommand(removeSub())
    .addCommand(leaveLocalSub(), { hidden: true });
}
