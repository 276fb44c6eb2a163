/**
 * `ovn-deploy restore (--dir DIR | --inventory site.yaml [--pki DIR]) --from BACKUP [--force]`:
 * verifies the backup, then restores the NB into the running cluster or, on a site where no
 * central has its database any more, creates a new cluster from it (src/backup/restore.ts).
 */
import { Command } from './commander.js';
import type { Problem } from '../errors.js';
import { err, out, printJson } from './cli-io.js';
import { addDbTargetOptions, dbTargetOf, sshOf, type DbTargetOptions } from './db-target.js';

export function restoreCommand(): Command {
  return addDbTargetOptions(new Command('restore'))
    .description('restore the NB from a backup: into the running cluster in one transaction (row UUIDs kept; --force over an NB in use), or, when no central has its database, as a new cluster created from it (needs --pki: the site is deployed again)')
    .requiredOption('--from <dir>', 'a backup directory (made by `ovn-deploy backup`)')
    .option('--pki <dir>', "with --inventory: the site's PKI directory, for a disaster recovery")
    .option('--force', 'replace an NB that holds logical switches, routers, ports...')
    .option('--json', 'print the result as JSON')
    .action(async (o: DbTargetOptions & { from: string; pki?: string; force?: boolean; json?: boolean }) => {
      const problems: Problem[] = [];
      if (o.pki !== undefined && o.inventory === undefined) problems.push({ path: '--pki', message: 'only with --inventory' });
      const open = dbTargetOf(o, problems);
      const [{ restoreBackup }, { verifyBackup }] = await Promise.all([import('../backup/restore.js'), import('../backup/manifest.js')]);
      // Before anything is opened: a bad backup is refused (exit 2) without a connection to any host.
      const backup = await verifyBackup(o.from);
      const target = await open();
      const { pki, inventory } = o;
      const deploySite =
        pki === undefined || inventory === undefined
          ? undefined
          : async () => {
              const { prepareDeploy } = await import('../deploy/prepare.js');
              const { runDeploy } = await import('../deploy/run.js');
              const { deploySummaryLines } = await import('../deploy/summary.js');
              const ssh = sshOf(o, []);
              const prepared = await prepareDeploy({ inventoryFile: inventory, pkiDir: pki, ssh });
              for (const w of prepared.warnings) err(`warning: ${w}`);
              const result = await runDeploy({ ...prepared.run, progress: 'plain', progressToStderr: true });
              return { ok: result.ok, summary: deploySummaryLines(result) };
            };
      try {
        const r = await restoreBackup(target, backup, { ...(o.force === true ? { force: true } : {}), ...(deploySite === undefined ? {} : { deploySite }), log: err });
        if (o.json === true) printJson(r);
        else {
          out(`restored ${o.from} (${r.case}) via ${r.central} in ${(r.ms / 1000).toFixed(1)} s`);
          out(`  NB rows: ${Object.entries(r.rows).map(([t, n]) => `${t} ${n}`).join(', ')}`);
          for (const line of r.deploy ?? []) out(`  ${line}`);
        }
      } finally {
        await target.close();
      }
    });
}
