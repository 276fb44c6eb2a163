/**
 * `ovn-deploy apply --bundle DIR`: run ON the host. Converges it to the bundle (packages, files,
 * key + CSR or certificate, database files, services, OVS, health) and reports what changed.
 * Exit 0 converged, 1 unhealthy/failed, 2 bad input, 3 needs-certificate. `--json` prints
 * exactly the report object on stdout (progress goes to stderr).
 */
import { Command } from './commander.js';
import type { Problem } from '../errors.js';
import { err, out, positiveInt, readInputText, throwIfProblems } from './cli-io.js';

interface ApplyCliOptions {
  bundle: string;
  root?: string;
  dryRun?: boolean;
  json?: boolean;
  certificate?: string;
  trustCa?: string;
  renewCertificate?: boolean;
  check?: boolean;
  supervisor: string;
  skipPackages?: boolean;
  firewall?: boolean;
  healthTimeout?: string;
  imageArchive?: string;
  verbose?: boolean;
}

async function readCertificateArg(arg: string): Promise<{ pem: string; from: string }> {
  if (arg === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
    return { pem: Buffer.concat(chunks).toString('utf8'), from: '--certificate -' };
  }
  return { pem: await readInputText(arg, { what: 'certificate', option: '--certificate' }), from: arg };
}

export function applyCommand(): Command {
  return new Command('apply')
    .description('converge THIS host to a bundle made by `render` (exit 0 converged, 1 unhealthy, 2 bad input, 3 needs a certificate)')
    .requiredOption('--bundle <dir>', 'bundle directory (manifest.json + files/)')
    .option('--root <dir>', 'the host root: prefix of every host path; the bundle must be rendered for it', '/')
    .option('--dry-run', 'print the plan; change nothing')
    .option('--json', 'print only the report as JSON on stdout')
    .option('--trust-ca <file>', 'the site CA certificate this host pins on its first apply to check bundle signatures (deploy passes it)')
    .option('--certificate <file>', "install this signed certificate for the host's key ('-' reads stdin)")
    .option('--renew-certificate', 'request a certificate for a new key now, even outside the renewal window (the current one keeps serving until it comes)')
    .option('--check', 'only run the health checks')
    .option('--supervisor <kind>', 'auto | own | systemd', 'auto')
    .option('--skip-packages', 'do not check or install system packages')
    .option('--firewall', "also load the bundle's nftables rules (nft -f /etc/ovn-deploy/firewall.nft)")
    .option('--image-archive <file>', "load this `podman save` archive (named <image id>.tar) when the host lacks the bundle's image (deploy ships it)")
    .option('--health-timeout <seconds>', 'how long health checks may take to pass (default 60; 5 with --check)')
    .option('--verbose', 'print every step to stderr')
    .action(async (o: ApplyCliOptions) => {
      const problems: Problem[] = [];
      if (!['auto', 'own', 'systemd'].includes(o.supervisor)) problems.push({ path: '--supervisor', message: `expected auto, own or systemd (got ${JSON.stringify(o.supervisor)})` });
      const healthSec = positiveInt(o.healthTimeout, '--health-timeout', problems);
      if (o.check === true && (o.certificate !== undefined || o.dryRun === true || o.renewCertificate === true)) {
        problems.push({ path: '--check', message: 'cannot be combined with --certificate, --renew-certificate or --dry-run' });
      }
      throwIfProblems(problems);
      const certificate = o.certificate === undefined ? undefined : await readCertificateArg(o.certificate);
      const trustCa = o.trustCa === undefined ? undefined : { pem: await readInputText(o.trustCa, { what: 'CA certificate', option: '--trust-ca' }), from: o.trustCa };
      const started = Date.now();
      const { runApply } = await import('../apply/index.js');
      const { renderApplyReport } = await import('../apply/render-report.js');
      const outcome = await runApply({
        bundleDir: o.bundle,
        root: o.root ?? '/',
        dryRun: o.dryRun === true,
        check: o.check === true,
        supervisor: o.supervisor as 'auto' | 'own' | 'systemd',
        skipPackages: o.skipPackages === true,
        loadFirewall: o.firewall === true,
        ...(o.imageArchive === undefined ? {} : { imageArchive: o.imageArchive }),
        ...(certificate === undefined ? {} : { certificate }),
        ...(trustCa === undefined ? {} : { trustCa }),
        renewCertificate: o.renewCertificate === true,
        ...(healthSec === undefined ? {} : { healthTimeoutMs: healthSec * 1000 }),
        // Progress never goes to stdout: with --json stdout carries the report only.
        log: (line) => {
          if (o.verbose === true) err(`[+${((Date.now() - started) / 1000).toFixed(2)}s] ${line}`);
          else if (o.dryRun === true && o.json !== true) err(line);
        },
      });
      if (outcome.error !== undefined) err(`ovn-deploy: apply failed: ${outcome.error}`);
      if (o.json === true) out(JSON.stringify(outcome.report, null, 2));
      else process.stdout.write(renderApplyReport(outcome.report));
      process.exitCode = outcome.exitCode;
    });
}
