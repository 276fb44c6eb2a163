/**
 * `ovn-deploy deploy --inventory site.yaml --pki DIR`: every host's bundle over SSH, `apply` there,
 * CSRs signed here. Exit 0 when every host converged, 1 when any did not (each one reported).
 */
import { Command } from './commander.js';
import { err, out, positiveInt, printJson, throwIfProblems } from './cli-io.js';
import type { Problem } from '../errors.js';
import { addDeployOutputOptions, addSshOptions, hostList, sshSettingsOf, type SshCliOptions } from '../deploy/cli-options.js';

/** The options every deploying command (`deploy`, `central add`, `central remove --redeploy`) takes. */
export interface DeployRunCliOptions extends SshCliOptions {
  concurrency?: string;
  metadataSecretFile?: string;
  json?: boolean;
  plain?: boolean;
  quiet?: boolean;
  /** `deploy --renew-certificates` only. */
  renewCertificates?: boolean;
}

interface DeployCliOptions extends DeployRunCliOptions {
  inventory: string;
  pki: string;
  hosts?: string[];
}

/**
 * Deploys `target.inventoryFile` (only `hosts`, or in `central add` order with `addCentral`),
 * printing warnings and the summary table unless --json; returns the JSON result for the caller.
 */
export async function deployFromCli(
  opts: DeployRunCliOptions,
  target: { inventoryFile: string; pkiDir: string; hosts?: string[]; addCentral?: string },
): Promise<{ ok: boolean; json: object }> {
  const problems: Problem[] = [];
  const concurrency = positiveInt(opts.concurrency, '--concurrency', problems);
  const ssh = sshSettingsOf(opts, problems);
  throwIfProblems(problems);
  const { prepareDeploy } = await import('../deploy/prepare.js');
  const { runDeploy } = await import('../deploy/run.js');
  const { deployJson, deploySummaryLines } = await import('../deploy/summary.js');
  const prepared = await prepareDeploy({
    ...target,
    ssh,
    ...(concurrency === undefined ? {} : { concurrency }),
    ...(opts.metadataSecretFile === undefined ? {} : { metadataSecretFile: opts.metadataSecretFile }),
  });
  for (const w of prepared.warnings) err(`warning: ${w}`);
  const result = await runDeploy({
    ...prepared.run,
    progress: opts.quiet === true ? 'silent' : opts.plain === true || opts.json === true ? 'plain' : 'auto',
    progressToStderr: opts.json === true,
    ...(opts.renewCertificates === true ? { renewCertificates: true } : {}),
  });
  if (opts.json !== true) for (const line of deploySummaryLines(result)) out(line);
  return { ok: result.ok, json: deployJson(result) };
}

export function deployCommand(): Command {
  const cmd = new Command('deploy')
    .description('push every host its bundle over SSH and apply it there; host CSRs are checked and signed here (exit 0 all converged, 1 any host not)')
    .requiredOption('--inventory <file>', 'site inventory (site.yaml)')
    .requiredOption('--pki <dir>', 'PKI directory of the site CA (`ovn-deploy pki init`); its key never leaves this machine')
    .option('--concurrency <n>', 'hosts deployed at the same time', '4')
    .option('--hosts <names...>', 'only these hosts (comma-separated or repeated)')
    .option('--metadata-secret-file <file>', "file holding the metadata agents' shared secret")
    .option('--renew-certificates', "rotate every host's certificate now: a new key and certificate each, picked up by reload (no connection dropped)");
  return addDeployOutputOptions(addSshOptions(cmd))
    .action(async (opts: DeployCliOptions) => {
      const hosts = hostList(opts.hosts);
      const { ok, json } = await deployFromCli(opts, { inventoryFile: opts.inventory, pkiDir: opts.pki, ...(hosts === undefined ? {} : { hosts }) });
      if (opts.json === true) printJson(json);
      process.exitCode = ok ? 0 : 1;
    });
}
