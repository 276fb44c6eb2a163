/**
 * `ovn-deploy backup (--dir DIR | --inventory site.yaml) --out DIR [--keep N]`: a consistent NB
 * and SB snapshot from the running cluster with its manifest (src/backup/take.ts). The hidden
 * `backup host ...` is the central's side of a site restore, run there over SSH.
 */
import { Command } from './commander.js';
import { ExitError, type Problem } from '../errors.js';
import { err, out, positiveInt, printJson, readStdin } from './cli-io.js';
import { addDbTargetOptions, dbTargetOf, type DbTargetOptions } from './db-target.js';

/** A restore transaction or seed of a very large NB; beyond this a backup is refused anyway. */
const MAX_HOST_STDIN = 1536 * 1024 * 1024;

const dbArg = (db: string): 'nb' | 'sb' => {
  if (db !== 'nb' && db !== 'sb') throw new ExitError(`expected nb or sb, got ${JSON.stringify(db.slice(0, 20))}`, 2);
  return db;
};

function hostCommand(): Command {
  const host = new Command('host').description('the central side of `restore` on a site (run over SSH)');
  host
    .command('transact')
    .argument('<db>', 'nb | sb')
    .description('one transaction (a JSON array of operations on stdin) on the local ovsdb-server')
    .action(async (db: string) => {
      const { transactOnHost } = await import('../backup/host.js');
      await transactOnHost(dbArg(db), (await readStdin(MAX_HOST_STDIN)).toString('utf8'));
    });
  host
    .command('seed')
    .argument('<db>', 'nb | sb')
    .description('the backup (base64 on stdin) the next create-cluster of this central starts from')
    .action(async (db: string) => {
      const { placeSeedOnHost } = await import('../backup/host.js');
      await placeSeedOnHost(dbArg(db), Buffer.from((await readStdin(MAX_HOST_STDIN)).toString('latin1'), 'base64'));
    });
  host
    .command('unseed')
    .argument('<db>', 'nb | sb')
    .description('removes the seed again')
    .action(async (db: string) => {
      const { removeSeedOnHost } = await import('../backup/host.js');
      await removeSeedOnHost(dbArg(db));
    });
  return host;
}

/** The units or cron line that run this same backup daily (absolute paths: the timer runs elsewhere). */
async function printTimer(o: DbTargetOptions & { out: string; timerOut?: string; cron?: boolean; bin?: string }, keep: number | undefined): Promise<void> {
  const path = (await import('node:path')).default;
  const { backupJob, defaultProgram } = await import('../certs/timer.js');
  const { emitTimer } = await import('./timer-output.js');
  const { defaultSandboxDir } = await import('../paths.js');
  let deployment: string;
  let selector: string[];
  if (o.inventory === undefined) {
    const dir = (await import('../sandbox/naming.js')).canonicalDir(o.dir ?? defaultSandboxDir());
    deployment = `sandbox ${dir}`;
    selector = ['--dir', dir];
  } else {
    deployment = `site ${path.resolve(o.inventory)}`;
    selector = [
      '--inventory',
      path.resolve(o.inventory),
      '--known-hosts',
      path.resolve(o.knownHosts ?? ''),
      ...(o.identity === undefined ? [] : ['--identity', path.resolve(o.identity)]),
      ...(o.connectTimeout === undefined ? [] : ['--connect-timeout', o.connectTimeout]),
    ];
  }
  const spec = { deployment, selector, job: backupJob(path.resolve(o.out), keep), program: o.bin === undefined ? defaultProgram() : [path.resolve(o.bin)] };
  await emitTimer(spec, { ...(o.cron === undefined ? {} : { cron: o.cron }), ...(o.timerOut === undefined ? {} : { outDir: o.timerOut }) });
}

export function backupCommand(): Command {
  const cmd = addDbTargetOptions(new Command('backup'))
    .description('a consistent snapshot of the NB and SB from the running cluster (the leader), with a manifest (sha256, versions, schema, cluster id, members); --keep prunes older backups')
    .option('--out <dir>', 'where the backup directory (ovn-backup-TIME) is made (required)')
    .option('--keep <n>', 'keep only the newest N backups in --out (only directories backup made)')
    .option('--json', 'print the result as JSON')
    .option('--timer', 'take no backup: print systemd units that run this backup daily (written with --timer-out)')
    .option('--timer-out <dir>', 'with --timer: write the units into this directory (e.g. /etc/systemd/system)')
    .option('--cron', 'take no backup: print a line for /etc/cron.d that runs this backup daily')
    .option('--bin <path>', 'with --timer/--cron: the ovn-deploy program to run (default: ovn-deploy on PATH, else this CLI)')
    .action(async (o: DbTargetOptions & { out?: string; keep?: string; json?: boolean; timer?: boolean; timerOut?: string; cron?: boolean; bin?: string }) => {
      const problems: Problem[] = [];
      // Not a commander requiredOption: commander checks an ancestor's mandatory options for its
      // subcommands too, so the hidden `backup host ...` (run over SSH, no --out) would be refused.
      const outDir = o.out ?? '';
      if (outDir === '') problems.push({ path: '--out', message: 'is required: where the backup directory is made' });
      const keep = positiveInt(o.keep, '--keep', problems);
      if (o.timerOut !== undefined && o.timer !== true) problems.push({ path: '--timer-out', message: 'only with --timer' });
      const open = dbTargetOf(o, problems);
      if (o.timer === true || o.cron === true) {
        await printTimer({ ...o, out: outDir }, keep);
        return;
      }
      const { takeBackup } = await import('../backup/take.js');
      const target = await open();
      try {
        const r = await takeBackup(target, outDir, keep === undefined ? {} : { keep });
        if (o.json === true) printJson(r);
        else {
          const nb = r.manifest.databases.nb;
          const sb = r.manifest.databases.sb;
          out(`backup ${r.dir} (${(r.ms / 1000).toFixed(1)} s)`);
          out(`  NB: ${nb.bytes} bytes from ${nb.takenFrom}, schema ${nb.schemaVersion}, cluster ${nb.clusterId}, ${nb.members.length} members`);
          out(`  SB: ${sb.bytes} bytes from ${sb.takenFrom}, schema ${sb.schemaVersion}, cluster ${sb.clusterId}, ${sb.members.length} members`);
          for (const p of r.pruned) out(`  pruned ${p}`);
        }
        for (const k of r.keptForeign) err(`warning: not pruned: ${k}`);
      } finally {
        await target.close();
      }
    });
  cmd.addCommand(hostCommand(), { hidden: true });
  return cmd;
}
