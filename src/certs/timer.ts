/**
 * The admin machine's timers: `ovn-deploy certs rotate` (the renewal timer) or `ovn-deploy
 * backup` run daily. On hosts with systemd, a oneshot service and a timer unit (rendered here
 * from templates/systemd/); elsewhere, one line for /etc/cron.d. Pure renderers; `certs timer`
 * and `backup --timer` write or print what they return.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { InputError, type Problem } from '../errors.js';
import type { RenderedFiles } from '../fsx.js';
import { backupUnits, cliPath, renewalUnits, systemdTemplatesDir } from '../paths.js';
import { loadTemplate } from '../templates.js';

/** What a timer runs: `PROGRAM ...args SELECTOR ...extra`, its units and where cron logs it. */
export interface TimerJob {
  units: { service: string; timer: string };
  args: string[];
  extra?: string[];
  cronLog: string;
}

export interface TimerSpec {
  /** Default: the renewal timer. */
  job?: TimerJob;
  /** What the units are for, in their descriptions (`sandbox 1609 (/var/lib/...)`). */
  deployment: string;
  /** The program and its arguments up to the subcommand: `/usr/bin/ovn-deploy` or `node /…/cli.js`. */
  program: string[];
  /** Arguments selecting the deployment: `--dir DIR`. */
  selector: string[];
  /** systemd OnCalendar= (default daily). */
  onCalendar?: string;
  /** systemd RandomizedDelaySec= (default 1h). */
  randomizedDelaySec?: string;
}

/** Where the cron line sends its output (cron mails it otherwise, or drops it). */
export const CRON_LOG = '/var/log/ovn-deploy-cert-renew.log';

export const RENEWAL_JOB: TimerJob = { units: renewalUnits, args: ['certs', 'rotate'], cronLog: CRON_LOG };

/** The scheduled backup: `backup SELECTOR --out DIR [--keep N]`. */
export function backupJob(outDir: string, keep: number | undefined): TimerJob {
  return { units: backupUnits, args: ['backup'], extra: ['--out', outDir, ...(keep === undefined ? [] : ['--keep', String(keep)])], cronLog: '/var/log/ovn-deploy-backup.log' };
}

interface UnitView {
  deployment: string;
  execStart: string;
  onCalendar: string;
  randomizedDelaySec: string;
  serviceUnit: string;
  timerUnit: string;
}

/** The command the timer runs (the renewal timer: rotate what is due, for this deployment). */
export function renewalCommand(spec: TimerSpec): string[] {
  const job = spec.job ?? RENEWAL_JOB;
  return [...spec.program, ...job.args, ...spec.selector, ...(job.extra ?? [])];
}

function controlCharacters(value: string): boolean {
  return [...value].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20 || ch === '\u007f');
}

function check(spec: TimerSpec): void {
  const problems: Problem[] = [];
  const all: [string, string][] = [
    ['deployment', spec.deployment],
    ...spec.program.map((p, i): [string, string] => [`program[${i}]`, p]),
    ...spec.selector.map((p, i): [string, string] => [`selector[${i}]`, p]),
    ...(spec.job?.extra ?? []).map((p, i): [string, string] => [`extra[${i}]`, p]),
  ];
  for (const [where, value] of all) if (controlCharacters(value)) problems.push({ path: where, message: `must be one line without control characters (got ${JSON.stringify(value)})` });
  if (spec.program.length === 0 || !path.isAbsolute(spec.program[0] ?? '')) problems.push({ path: 'program', message: `must start with an absolute path (got ${JSON.stringify(spec.program[0] ?? '')})` });
  if (problems.length > 0) throw new InputError(problems);
}

/** systemd's quoting for one ExecStart= word: specifiers (%) and variables ($) are escaped. */
export function systemdWord(arg: string): string {
  const escaped = arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return arg === '' || /[\s"'\\]/.test(arg) ? `"${escaped}"` : escaped;
}

/** A shell word for cron (`%` ends a cron command unless escaped). */
export function cronWord(arg: string): string {
  const quoted = /^[A-Za-z0-9_./:=@+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
  return quoted.replace(/%/g, '\\%');
}

export function renderRenewalUnits(spec: TimerSpec): RenderedFiles {
  check(spec);
  const units = (spec.job ?? RENEWAL_JOB).units;
  const view: UnitView = {
    deployment: spec.deployment.replace(/%/g, '%%'),
    execStart: renewalCommand(spec).map(systemdWord).join(' '),
    onCalendar: spec.onCalendar ?? 'daily',
    randomizedDelaySec: spec.randomizedDelaySec ?? '1h',
    serviceUnit: units.service,
    timerUnit: units.timer,
  };
  const render = (unit: string): string => loadTemplate<UnitView>(systemdTemplatesDir, `${unit}.hbs`)(view);
  return new Map([
    [units.service, { content: render(units.service), mode: 0o644 }],
    [units.timer, { content: render(units.timer), mode: 0o644 }],
  ]);
}

/**
 * One /etc/cron.d line (with the user field). The time is fixed per deployment but differs
 * between deployments (from a hash of the selector), like the timer's random delay.
 */
export function renderCronLine(spec: TimerSpec): string {
  check(spec);
  const h = createHash('sha256').update(spec.selector.join('\0')).digest();
  const minute = (h[0] ?? 0) % 60;
  const hour = 1 + ((h[1] ?? 0) % 5);
  return `${minute} ${hour} * * * root ${renewalCommand(spec).map(cronWord).join(' ')} >>${(spec.job ?? RENEWAL_JOB).cronLog} 2>&1`;
}

/** The installed `ovn-deploy` when it is on PATH, else this checkout's CLI run by this node. */
export function defaultProgram(pathEnv = process.env.PATH ?? ''): string[] {
  for (const dir of pathEnv.split(path.delimiter)) {
    if (!path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, 'ovn-deploy');
    try {
      accessSync(candidate, constants.X_OK);
      return [candidate];
    } catch {
      // not here
    }
  }
  return [process.execPath, cliPath];
}
