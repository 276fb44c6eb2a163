/**
 * `ovn-deploy certs ...`: the certificate lifecycle of a deployment (today: the `up` sandbox):
 * status, rotate, ca-rollover, revoke, and the renewal timer. Prints serials, dates and paths,
 * never key material.
 */
import path from 'node:path';
import { Command, Option } from './commander.js';
import type { Problem } from '../errors.js';
import { defaultSandboxDir } from '../paths.js';
import { REVOCATION_REASONS, type RevocationReason } from '../pki/types.js';
import { err, out, positiveInt, printJson, throwIfProblems } from './cli-io.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((v) => v.trim()).filter((v) => v !== '')];

async function deployment(dir: string) {
  // Loaded on use: the sandbox, PKI and probes are not needed by other commands.
  const { sandboxDeployment } = await import('../certs/sandbox-deployment.js');
  return sandboxDeployment(dir);
}

function dirOption(): Option {
  return new Option('--dir <dir>', 'state directory of the sandbox').default(defaultSandboxDir());
}

function statusSub(): Command {
  return new Command('status')
    .description('every certificate in use: host, role, serial, not-after, days left, the serial each listener serves; warnings for due certificates and CRLs')
    .addOption(dirOption())
    .option('--json', 'print the report as JSON')
    .option('--window-days <n>', 'renewal window in days (default: the last third of the lifetime, at least 7 days)')
    .option('--no-probe', 'read the files only; do not connect to the listeners and tunnels')
    .action(async (o: { dir: string; json?: boolean; windowDays?: string; probe: boolean }) => {
      const problems: Problem[] = [];
      const windowDays = positiveInt(o.windowDays, '--window-days', problems);
      throwIfProblems(problems);
      const { certsStatus, renderCertsStatus } = await import('../certs/status.js');
      const report = await certsStatus(await deployment(o.dir), { ...(windowDays === undefined ? {} : { windowDays }), noProbe: !o.probe });
      if (o.json === true) printJson(report);
      else {
        process.stdout.write(renderCertsStatus(report));
        for (const w of report.warnings) err(`warning: ${w}`);
      }
    });
}

function rotateSub(): Command {
  return new Command('rotate')
    .description('renew the certificates that are due (or --force) with fresh keys, reload stunnel, verify the new serial is in use; roll back on failure')
    .addOption(dirOption())
    .option('--host <host>', 'only this host (repeatable, or comma-separated)', collect)
    .option('--force', 'renew even when not due')
    .option('--days <n>', 'lifetime of the new certificates in days (default: the site policy)')
    .option('--window-days <n>', 'renewal window in days (default: the last third of the lifetime, at least 7 days)')
    .option('--json', 'print the result as JSON')
    .action(async (o: { dir: string; host?: string[]; force?: boolean; days?: string; windowDays?: string; json?: boolean }) => {
      const problems: Problem[] = [];
      const validityDays = positiveInt(o.days, '--days', problems);
      const windowDays = positiveInt(o.windowDays, '--window-days', problems);
      throwIfProblems(problems);
      const { rotateCertificates, RotationError } = await import('../certs/rotate.js');
      const d = await deployment(o.dir);
      const opts = {
        ...(o.host === undefined ? {} : { hosts: o.host }),
        force: o.force === true,
        ...(validityDays === undefined ? {} : { validityDays }),
        ...(windowDays === undefined ? {} : { windowDays }),
        ...(o.json === true ? {} : { say: out }),
      };
      try {
        const r = await rotateCertificates(d, opts);
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
  return new Command('ca-rollover')
    .description('replace the CA in three phases, each checked on every host first: (1) trust the new CA, (2) re-issue leaves from it, (3) retire the old CA; resumable')
    .addOption(dirOption())
    .addOption(new Option('--phase <phase>', 'run only this phase').choices(['trust', 'issue', 'retire']))
    .option('--host <host>', 'only this host (repeatable, or comma-separated); the next phase still needs every host', collect)
    .option('--key-bits <n>', 'key size of the new CA (default: the current CA\'s)')
    .option('--ca-days <n>', 'lifetime of the new CA in days (default: the current CA\'s)')
    .option('--status', 'show where the rollover stands; change nothing')
    .option('--json', 'print the result as JSON')
    .action(async (o: { dir: string; phase?: 'trust' | 'issue' | 'retire'; host?: string[]; keyBits?: string; caDays?: string; status?: boolean; json?: boolean }) => {
      const problems: Problem[] = [];
      const keyBits = positiveInt(o.keyBits, '--key-bits', problems);
      const validityDays = positiveInt(o.caDays, '--ca-days', problems);
      throwIfProblems(problems);
      const { caRollover, rolloverStatus } = await import('../certs/ca-rollover.js');
      const d = await deployment(o.dir);
      if (o.status === true) {
        const s = await rolloverStatus(d);
        if (o.json === true) printJson(s);
        else if (s.state === undefined) out(`no CA rollover has run; the issuer is ${s.issuer}`);
        else {
          out(`CA rollover ${s.state.oldCa.commonName} (${s.state.oldCa.serial}) -> ${s.state.newCa.commonName} (${s.state.newCa.serial}), started ${s.state.startedAt}${s.state.completedAt === undefined ? '' : `, completed ${s.state.completedAt}`}`);
          for (const [phase, hosts] of Object.entries(s.pending ?? {})) out(`  ${phase}: ${hosts.length === 0 ? 'done on every host' : `pending on ${hosts.join(', ')}`}`);
        }
        return;
      }
      const r = await caRollover(d, {
        ...(o.phase === undefined ? {} : { phase: o.phase }),
        ...(o.host === undefined ? {} : { hosts: o.host }),
        ...(keyBits === undefined ? {} : { keyBits }),
        ...(validityDays === undefined ? {} : { validityDays }),
        ...(o.json === true ? {} : { say: out }),
      });
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
  return new Command('revoke')
    .description("revoke every certificate of HOST, publish fresh CRLs to every stunnel, reload them, and confirm HOST can no longer connect")
    .argument('<host>', 'host whose certificates are revoked')
    .addOption(dirOption())
    .addOption(new Option('--reason <reason>', 'CRL reason').choices(Object.keys(REVOCATION_REASONS)))
    .option('--json', 'print the result as JSON')
    .action(async (host: string, o: { dir: string; reason?: RevocationReason; json?: boolean }) => {
      const { revokeHost } = await import('../certs/revoke.js');
      const r = await revokeHost(await deployment(o.dir), host, { ...(o.reason === undefined ? {} : { reason: o.reason }), ...(o.json === true ? {} : { say: out }) });
      if (o.json === true) {
        printJson(r);
        return;
      }
      for (const c of r.checks) out(`  ${c.what}: ${c.outcome.ok ? 'accepted' : 'refused'} (expected ${c.expected}) - ${c.outcome.detail}`);
      out(`${host} revoked and locked out in ${(r.durationMs / 1000).toFixed(1)} s; connections it already had stay open until they close`);
    });
}

function timerSub(): Command {
  return new Command('timer')
    .description('the renewal timer: systemd units that run `certs rotate` daily (printed, or written with --out), or a cron line with --cron')
    .addOption(dirOption())
    .option('--out <dir>', 'write the units into this directory (e.g. /etc/systemd/system)')
    .option('--cron', 'print a line for /etc/cron.d instead (hosts without systemd)')
    .option('--bin <path>', 'the ovn-deploy program the units run (default: ovn-deploy on PATH, else this CLI)')
    .action(async (o: { dir: string; out?: string; cron?: boolean; bin?: string }) => {
      const { defaultProgram, renderCronLine, renderRenewalUnits } = await import('../certs/timer.js');
      const { canonicalDir } = await import('../sandbox/naming.js');
      const dir = canonicalDir(o.dir);
      const spec = { deployment: `sandbox ${dir}`, program: o.bin === undefined ? defaultProgram() : [path.resolve(o.bin)], selector: ['--dir', dir] };
      if (o.cron === true) {
        out(renderCronLine(spec));
        return;
      }
      const files = renderRenewalUnits(spec);
      if (o.out === undefined) {
        for (const [name, f] of files) out(`# ${name}\n${String(f.content)}`);
        return;
      }
      const { applyFiles } = await import('../fsx.js');
      const r = await applyFiles(o.out, files);
      for (const f of r.written) out(`wrote ${f}`);
      for (const f of r.unchanged) out(`unchanged ${f}`);
      out('enable it with: systemctl daemon-reload && systemctl enable --now ovn-deploy-cert-renew.timer');
    });
}

export function certsCommand(): Command {
  return new Command('certs')
    .description('certificate lifecycle of the sandbox: status, rotate, ca-rollover, revoke, renewal timer')
    .addCommand(statusSub())
    .addCommand(rotateSub())
    .addCommand(caRolloverSub())
    .addCommand(revokeSub())
    .addCommand(timerSub());
}
