/**
 * `ovn-deploy up`: a local sandbox (1 central + N workers in network namespaces, the seed post's
 * topology, a ping and ovn-trace across it). Idempotent: run it again to re-check or repair.
 */
import { Command, Option } from './commander.js';
import { inputError } from '../errors.js';
// Type only: the declarations load nothing but commander (cli-startup.test).
import type { TlsMode } from '../inventory/types.js';
import { defaultSandboxDir } from '../paths.js';
import { MAX_WORKERS, MIN_WORKERS } from '../sandbox/naming.js';
import { out } from './cli-io.js';

export function parseWorkers(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < MIN_WORKERS || n > MAX_WORKERS) {
    throw inputError(`expected a whole number from ${MIN_WORKERS} to ${MAX_WORKERS}, got "${value}"`, '--workers');
  }
  return n;
}

export function upCommand(): Command {
  return new Command('up')
    .description('start a local sandbox: central + workers in network namespaces, TLS via stunnel or native OVSDB TLS, the seed topology, ping and ovn-trace')
    .option('--workers <n>', `number of workers (${MIN_WORKERS}-${MAX_WORKERS})`, '2')
    .option('--dir <dir>', 'state directory of the sandbox', defaultSandboxDir())
    .addOption(new Option('--datapath <kind>', 'OVS datapath: kernel (system) when the openvswitch module is loaded, else userspace (netdev)').choices(['auto', 'netdev', 'system']).default('auto'))
    .addOption(new Option('--supervisor <kind>', 'who runs the daemons: the sandbox\'s hosts always run under ovn-deploy\'s own supervisor, one per host (systemd is refused: its units are what apply installs on real hosts)').choices(['auto', 'own', 'systemd']).default('auto'))
    .option('--metadata-agent', "also run Neutron's OVN metadata agent on every worker (after its ovn-controller) with a Neutron-shaped demo network and VM; kept by later `up` runs")
    .option('--no-metadata-agent', 'remove the metadata agents and their demo network')
    .option('--metadata-image <image>', "run the metadata agents in podman containers of this image (built from containers/ovn-metadata-agent; podman's settings from CONTAINERS_CONF / CONTAINERS_STORAGE_CONF); '' for supervised processes")
    .addOption(new Option('--tls <mode>', "stunnel: TLS terminated by stunnel (CRL, per-port name checks); native: ovsdb-server's own TLS with Southbound RBAC (no CRL). Kept by later `up` runs").choices(['stunnel', 'native'] satisfies TlsMode[]))
    .option('--no-install', 'do not check or install system packages')
    .option('--plain', 'plain progress output (default when not on a terminal or under CI)')
    .option('--quiet', 'no progress output, only the result')
    .option('--dry-run', 'print the commands that would run; change nothing')
    .option('--timings', 'print when each step started and ended')
    .action(async (opts: { workers: string; dir: string; datapath: 'auto' | 'netdev' | 'system'; supervisor: 'auto' | 'own' | 'systemd'; install: boolean; metadataAgent?: boolean; metadataImage?: string; tls?: 'stunnel' | 'native'; plain?: boolean; quiet?: boolean; dryRun?: boolean; timings?: boolean }) => {
      const dryRun = opts.dryRun === true;
      const workers = parseWorkers(opts.workers);
      if (!dryRun) (await import('../sandbox/early-ca.js')).startSandboxCaKey(opts.dir);
      // Loaded on use: the sandbox pulls in the PKI, stunnel and listr, which other commands do not need.
      const { assertRoot, timingLines, up, upSummary } = await import('../sandbox/up.js');
      await assertRoot(dryRun, opts.install);
      const result = await up({
        stateDir: opts.dir,
        workers,
        datapath: opts.datapath,
        supervisor: opts.supervisor,
        dryRun,
        progress: opts.quiet === true ? 'silent' : opts.plain === true ? 'plain' : 'auto',
        installPackages: opts.install,
        ...(opts.metadataAgent === undefined ? {} : { metadataAgent: opts.metadataAgent }),
        ...(opts.metadataImage === undefined ? {} : { metadataImage: opts.metadataImage }),
        ...(opts.tls === undefined ? {} : { tls: opts.tls }),
        print: out,
      });
      if (!dryRun) for (const line of upSummary(result)) out(line);
      if (opts.timings === true) for (const line of timingLines(result)) out(line);
    });
}
