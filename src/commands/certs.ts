/**
 * `ovn-deploy certs ...`: the certificate lifecycle of a deployment, the `up` sandbox (`--dir`)
 * or a site of real hosts over SSH (`--inventory` + `--pki`, as `deploy`): status, rotate,
 * ca-rollover, revoke, reinstate, and the renewal timer. One implementation (src/certs/); only
 * the Deployment differs. Prints serials, dates and paths, never key material.
 */
import path from 'node:path';
import { Command, Option } from './commander.js';
import { inputError, type Problem } from '../errors.js';
import { defaultSandboxDir } from '../paths.js';
import { REVOCATION_REASONS, type RevocationReason } from '../pki/types.js';
import type { Deployment } from '../certs/deployment.js';
import { addSshOptions, sshSettingsOf, type SshCliOptions } from '../deploy/cli-options.js';
import { err, out, positiveInt, printJson, throwIfProblems } from './cli-io.js';
import { certsHostCommand } from './certs-host.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((v) => v.trim()).filter((v) => v !== '')];

interface SelectOptions extends Partial<SshCliOptions> {
  dir?: string;
  inventory?: string;
  pki?: string;
}

type Selection = { kind: 'sandbox'; dir: string } | { kind: 'site'; sel: import('../certs/site-deployment.js').SiteSelection };

/** `--dir` (the sandbox, the default) or `--inventory` + `--pki` (a site); never both. */
function selection(o: SelectOptions): Selection {
  const problems: Problem[] = [];
  if (o.inventory === undefined) {
    if (o.pki !== undefined) problems.push({ path: '--pki', message: 'only with --inventory (a sandbox keeps its PKI in its state directory)' });
    throwIfProblems(problems);
    return { kind: 'sandbox', dir: o.dir ?? defaultSandboxDir() };
  }
  if (o.dir !== undefined) problems.push({ path: '--dir', message: 'either --dir (the sandbox) or --inventory (a site), not both' });
  if (o.pki === undefined) problems.push({ path: '--pki', message: "expected the site's PKI directory (the one `deploy --pki` uses)" });
  const ssh = sshSettingsOf({ knownHosts: o.knownHosts ?? '', ...(o.identity === undefined ? {} : { identity: o.identity }), ...(o.connectTimeout === undefined ? {} : { connectTimeout: o.connectTimeout }) }, problems);
  throwIfProblems(problems);
  if (o.pki === undefined) throw inputError('expected --pki', '--pki');
  return { kind: 'site', sel: { inventoryFile: o.inventory, pkiDir: o.pki, ssh } };
}

/** Loaded on use: the sandbox, SSH, PKI and probes are not needed by other commands. */
async function open(s: Selection): Promise<Deployment> {
  if (s.kind === 'site') return (await import('../certs/site-deployment.js')).siteDeployment(s.sel);
  return (await import('../certs/sandbox-deployment.js')).sandboxDeployment(s.dir);
}

async function withDeployment<T>(o: SelectOptions, fn: (d: Deployment) => Promise<T>): Promise<T> {
  const d = await open(selection(o));
  try {
    return await fn(d);
  } finally {
    await d.close?.();
  }
}

/** The options that select a deployment, on every subcommand. */
function selectOptions(cmd: Command): Command {
  cmd.addOption(new Option('--dir <dir>', `state directory of the sandbox (default ${defaultSandboxDir()})`));
  cmd.option('--inventory <file>', 'a site of real hosts (the inventory `deploy` uses), reached over SSH');
  cmd.option('--pki <dir>', "with --inventory: the site's PKI directory");
  return addSshOptions(cmd);
}

function statusSub(): Command {
  return selectOptions(new Command('status'))
    .description('every certificate in use: host, role, serial, not-after, days left, the serial and issuer each listener serves, the trusted CAs and CRLs; due and critical warnings (exit 1)')
    .option('--json', 'print the report as JSON')
    .option('--window-days <n>', 'renewal window in days (default: the last third of the lifetime, at least 7 days)')
    .option('--no-probe', 'read the files only; do not connect to the listeners and tunnels')
    .action(async (o: SelectOptions & { json?: boolean; windowDays?: string; probe: boolean }) => {
      const problems: Problem[] = [];
      const windowDays = positiveInt(o.windowDays, '--window-days', problems);
      throwIfProblems(problems);
      const { certsStatus, renderCertsStatus } = await import('../certs/status.js');
      const report = await withDeployment(o, (d) => certsStatus(d, { ...(windowDays === undefined ? {} : { windowDays }), noProbe: !o.probe }));
      if (o.json === true) printJson(report);
      else {
        process.stdout.write(renderCertsStatus(report));
        for (const w of report.warnings) err(`${report.critical.includes(w) ? 'CRITICAL' : 'warning'}: ${w}`);
      }
      // Monitoring reads the exit code: something due or critical is not "ok".
      if (report.warnings.length > 0) process.exitCode = 1;
    });
}

function rotateSub(): Command {
  return selectOptions(new Command('rotate'))
    .description('renew the certificates that are due (or --force) with fresh keys made on their hosts, reload stunnel, verify the new serial is in use; roll back on failure; re-sign CRLs near nextUpdate')
    .option('--host <host>', 'only this host (repeatable, or comma-separated)', collect)
    .option('--concurrency <n>', 'hosts renewed at the same time (default 1; centrals always one at a time)')
    .option('--force', 'renew even when not due')
    .option('--days <n>', 'lifetime of the new certificates in days (default: the site policy)')
    .option('--window-days <n>', 'renewal window in days (default: the last third of the lifetime, at least 7 days)')
    .option('--json', 'print the result as JSON')
    .action(async (o: SelectOptions & { host?: string[]; concurrency?: string; force?: boolean; days?: string; windowDays?: string; json?: boolean }) => {
      const problems: Problem[] = [];
      const validityDays = positiveInt(o.days, '--days', problems);
      const windowDays = positiveInt(o.windowDays, '--window-days', problems);
      const concurrency = positiveInt(o.concurrency, '--concurrency', problems);
      throwIfProblems(problems);
      const { rotateCertificates, RotationError } = await import('../certs/rotate.js');
      const opts = {
        ...(o.host === undefined ? {} : { hosts: o.host }),
        ...(concurrency === undefined ? {} : { concurrency }),
        force: o.force === true,
        ...(validityDays === undefined ? {} : { validityDays }),
        ...(windowDays === undefined ? {} : { windowDays }),
        ...(o.json === true ? {} : { say: out }),
      };
      try {
        const r = await withDeployment(o, (d) => rotateCertificates(d, opts));
        if (o.json === true) printJson(r);
        else {
          const renewed = r.outcomes.filter((x) => x.action === 'renewed');
          for (const x of r.outcomes.filter((y) => y.action === 'skipped')) out(`${x.certName}: ${x.reason}`);
          out(`${renewed.length} certificate(s) renewed, ${r.outcomes.length - renewed.length} not due, in ${(r.durationMs / 1000).toFixed(1)} s${r.crlRefreshed === null ? '' : '; CRLs re-signed'}`);
        }
      } catch (e) {
        if (e instanceof RotationError && o.json === true) printJson({ ...e.result, error: e.message });
        throw e;
      }
    });
}

function caRolloverSub(): Command {
  return selectOptions(new Command('ca-rollover'))
    .description('replace the CA in three phases, each checked on every host first: (1) trust the new CA, (2) re-issue leaves from it, (3) retire the old CA; resumable')
    .addOption(new Option('--phase <phase>', 'run only this phase').choices(['trust', 'issue', 'retire']))
    .option('--host <host>', 'only this host (repeatable, or comma-separated); the next phase still needs every host', collect)
    .option('--concurrency <n>', 'phase issue: hosts re-issued at the same time (default 1; centrals always one at a time)')
    .option('--key-bits <n>', 'key size of the new CA (default: the current CA\'s)')
    .option('--ca-days <n>', 'lifetime of the new CA in days (default: the current CA\'s)')
    .option('--status', 'show where the rollover stands; change nothing')
    .option('--json', 'print the result as JSON')
    .action(async (o: SelectOptions & { phase?: 'trust' | 'issue' | 'retire'; host?: string[]; concurrency?: string; keyBits?: string; caDays?: string; status?: boolean; json?: boolean }) => {
      const problems: Problem[] = [];
      const concurrency = positiveInt(o.concurrency, '--concurrency', problems);
      const keyBits = positiveInt(o.keyBits, '--key-bits', problems);
      const validityDays = positiveInt(o.caDays, '--ca-days', problems);
      throwIfProblems(problems);
      const { caRollover, rolloverStatus } = await import('../certs/ca-rollover.js');
      if (o.status === true) {
        const s = await withDeployment(o, (d) => rolloverStatus(d));
        if (o.json === true) printJson(s);
        else if (s.state === undefined) out(`no CA rollover has run; the issuer is ${s.issuer}`);
        else {
          out(`CA rollover ${s.state.oldCa.commonName} (${s.state.oldCa.serial}) -> ${s.state.newCa.commonName} (${s.state.newCa.serial}), started ${s.state.startedAt}${s.state.completedAt === undefined ? '' : `, completed ${s.state.completedAt}`}`);
          for (const [phase, hosts] of Object.entries(s.pending ?? {})) out(`  ${phase}: ${hosts.length === 0 ? 'done on every host' : `pending on ${hosts.join(', ')}`}`);
        }
        return;
      }
      const r = await withDeployment(o, (d) => caRollover(d, {
        ...(o.phase === undefined ? {} : { phase: o.phase }),
        ...(o.host === undefined ? {} : { hosts: o.host }),
        ...(concurrency === undefined ? {} : { concurrency }),
        ...(keyBits === undefined ? {} : { keyBits }),
        ...(validityDays === undefined ? {} : { validityDays }),
        ...(o.json === true ? {} : { say: out }),
      }));
      if (o.json === true) printJson(r);
      else {
        for (const n of r.notes) err(`note: ${n}`);
        for (const run of r.ran) out(`phase ${run.phase}: ${run.hosts.join(', ')} in ${(run.ms / 1000).toFixed(1)} s`);
        const next = Object.entries(r.pending).find(([, hosts]) => hosts.length > 0);
        out(r.complete ? `CA rollover complete in ${(r.durationMs / 1000).toFixed(1)} s` : `CA rollover paused: phase ${next?.[0] ?? '?'} pending on ${next?.[1].join(', ') ?? '?'}`);
      }
    });
}

function revokeSub(): Command {
  return selectOptions(new Command('revoke'))
    .description("revoke every certificate of HOST, publish fresh CRLs to every stunnel, reload them, and confirm HOST can no longer connect; HOST gets no new certificate until `certs reinstate`")
    .argument('<host>', 'host whose certificates are revoked')
    .addOption(new Option('--reason <reason>', 'CRL reason').choices(Object.keys(REVOCATION_REASONS)))
    .option('--json', 'print the result as JSON')
    .action(async (host: string, o: SelectOptions & { reason?: RevocationReason; json?: boolean }) => {
      const { revokeHost } = await import('../certs/revoke.js');
      const r = await withDeployment(o, (d) => revokeHost(d, host, { ...(o.reason === undefined ? {} : { reason: o.reason }), ...(o.json === true ? {} : { say: out }) }));
      if (o.json === true) {
        printJson(r);
        return;
      }
      for (const c of r.checks) out(`  ${c.what}: ${c.outcome.ok ? 'accepted' : 'refused'} (expected ${c.expected}) - ${c.outcome.detail}`);
      out(`${host} revoked and locked out in ${(r.durationMs / 1000).toFixed(1)} s; connections it already had stay open until they close`);
    });
}

function timerSub(): Command {
  return selectOptions(new Command('timer'))
    .description('the renewal timer: systemd units that run `certs rotate` daily with a random delay (printed, or written with --out), or a cron line with --cron; on the admin machine for a site')
    .option('--out <dir>', 'write the units into this directory (e.g. /etc/systemd/system)')
    .option('--cron', 'print a line for /etc/cron.d instead (hosts without systemd)')
    .option('--bin <path>', 'the ovn-deploy program the units run (default: ovn-deploy on PATH, else this CLI)')
    .action(async (o: SelectOptions & { out?: string; cron?: boolean; bin?: string }) => {
      const { defaultProgram } = await import('../certs/timer.js');
      const { emitTimer } = await import('./timer-output.js');
      const s = selection(o);
      let what: { deployment: string; selector: string[] };
      if (s.kind === 'sandbox') {
        const dir = (await import('../sandbox/naming.js')).canonicalDir(s.dir);
        what = { deployment: `sandbox ${dir}`, selector: ['--dir', dir] };
      } else {
        const { siteSelector } = await import('../certs/site-deployment.js');
        what = { deployment: `site ${path.resolve(s.sel.inventoryFile)}`, selector: siteSelector(s.sel) };
      }
      const spec = { ...what, program: o.bin === undefined ? defaultProgram() : [path.resolve(o.bin)] };
      await emitTimer(spec, { ...(o.cron === undefined ? {} : { cron: o.cron }), ...(o.out === undefined ? {} : { outDir: o.out }) });
    });
}

function reinstateSub(): Command {
  return selectOptions(new Command('reinstate'))
    .description('let a host revoked by `certs revoke` get certificates again (its next `certs rotate --host HOST --force` or deploy renews it)')
    .argument('<host>', 'the revoked host')
    .action(async (host: string, o: SelectOptions) => {
      const s = selection(o);
      const pkiDir = s.kind === 'site' ? s.sel.pkiDir : (await import('../paths.js')).sandboxPaths((await import('../sandbox/naming.js')).canonicalDir(s.dir)).pki;
      const { reinstateHost } = await import('../pki/host-revocation.js');
      const was = await reinstateHost(pkiDir, host);
      if (was === undefined) throw inputError(`${host} is not a revoked host of the PKI in ${pkiDir}`, 'HOST');
      out(`${host} reinstated (revoked ${was.revokedAt}); renew it with \`ovn-deploy certs rotate ${[...(s.kind === 'site' ? ['--inventory', s.sel.inventoryFile, '--pki', s.sel.pkiDir] : ['--dir', s.dir])].join(' ')} --host ${host} --force\``);
    });
}

export function certsCommand(): Command {
  return new Command('certs')
    .description('certificate lifecycle of the sandbox (--dir) or a site over SSH (--inventory, --pki): status, rotate, ca-rollover, revoke, reinstate, renewal timer')
    .addCommand(statusSub())
    .addCommand(rotateSub())
    .addCommand(caRolloverSub())
    .addCommand(revokeSub())
    .addCommand(reinstateSub())
    .addCommand(timerSub())
    .addCommand(certsHostCommand(), { hidden: true });
}
