/**
 * The systemd backend: one transient unit per service (`systemd-run`), used when systemd is PID 1.
 *
 * Transient units rather than unit files in /run/systemd/system + daemon-reload: nothing to write
 * or clean up, no reload of the whole manager per change, and they vanish on reboot just like the
 * own supervisor's services (the sandbox is recreated by `up`). A transient unit cannot be edited,
 * so a changed service is stopped and created again; its Description carries the spec hash that
 * tells whether it changed. Restart=always (not on-failure) so both backends restart a daemon
 * whatever way it died, and systemd's start limit plays the part of the own supervisor's give-up.
 */
import { mkdirSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { ExitError } from '../errors.js';
import type { Runner } from '../runner.js';
import { Systemctl, serviceOfUnit, unitName, type UnitProps } from '../tools/systemctl.js';
import { logTail } from './log-tail.js';
import { sleep } from './proc.js';
import { serviceHash, startOrder, validateServices } from './spec.js';
import type { ServiceSpec, ServiceStatus, Supervisor } from './types.js';

export interface SystemdSupervisorOptions {
  ensureTimeoutMs?: number;
  /** Between `systemctl show` polls while waiting for units; default 100 ms. */
  pollMs?: number;
}

const START_RETRIES = 3;
const DEFAULT_SETTLE_MS = 300;
const SHOWN = ['Id', 'Description', 'MainPID', 'ActiveState', 'NRestarts', 'ExecMainStartTimestamp', 'ExecMainExitTimestamp', 'ExecMainCode', 'ExecMainStatus'];

export class SystemdSupervisor implements Supervisor {
  readonly kind = 'systemd' as const;
  private checked = false;
  private readonly systemctl: Systemctl;

  constructor(
    private readonly runner: Runner,
    /** Unit names are `<prefix><service>.service`; every unit with the prefix is ours. */
    private readonly prefix: string,
    private readonly opts: SystemdSupervisorOptions = {},
  ) {
    this.systemctl = new Systemctl(runner);
  }

  unitName(service: string): string {
    return unitName(service, this.prefix);
  }

  /** The systemd-run command line that creates a service's unit. */
  runArgv(spec: ServiceSpec): string[] {
    const argv = [
      'systemd-run',
      `--unit=${this.unitName(spec.name)}`,
      `--description=ovn-deploy ${spec.name} [${serviceHash(spec)}]`,
      '--collect',
      '--quiet',
      '--service-type=exec',
      '--property=Restart=always',
      '--property=RestartSec=1',
      `--property=StandardOutput=append:${spec.logFile}`,
      `--property=StandardError=append:${spec.logFile}`,
    ];
    if (spec.netns !== undefined) argv.push(`--property=NetworkNamespacePath=/run/netns/${spec.netns}`);
    if (spec.cwd !== undefined) argv.push(`--working-directory=${spec.cwd}`);
    if (spec.stopSignal !== undefined) argv.push(`--property=KillSignal=${spec.stopSignal}`);
    for (const dep of spec.after ?? []) argv.push(`--property=After=${this.unitName(dep)}`);
    for (const [key, value] of Object.entries(spec.env ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
      argv.push(`--setenv=${key}=${value}`);
    }
    return [...argv, '--', ...spec.argv];
  }

  async ensure(services: ServiceSpec[]): Promise<void> {
    validateServices(services);
    await this.checkSystemd();
    const current = await this.show(await this.listUnits());
    const wanted = new Map(services.map((s) => [s.name, s]));
    const keep = new Set<string>();
    for (const [name, props] of current) {
      const spec = wanted.get(name);
      const sameSpec = spec !== undefined && props.Description?.endsWith(`[${serviceHash(spec)}]`) === true;
      if (sameSpec && (props.ActiveState === 'active' || props.ActiveState === 'activating')) keep.add(name);
    }
    await this.stopUnits([...current.keys()].filter((n) => !keep.has(n)));
    const fresh = startOrder(services).filter((s) => !keep.has(s.name));
    for (const spec of fresh) {
      mkdirSync(path.dirname(spec.logFile), { recursive: true });
      const r = await this.runner.run(this.runArgv(spec), { mutates: true, allowFailure: true });
      if (r.exitCode !== 0) {
        throw new ExitError(`cannot start ${spec.name}: ${r.stderr.trim()}\ntail of ${spec.logFile}:\n${await logTail(spec.logFile)}`);
      }
    }
    await this.waitStarted(services, new Set(fresh.map((s) => s.name)));
  }

  async stop(names?: string[]): Promise<void> {
    await this.checkSystemd();
    await this.stopUnits(names ?? (await this.listUnits()));
  }

  async status(): Promise<ServiceStatus[]> {
    await this.checkSystemd();
    const shown = await this.show(await this.listUnits());
    return [...shown].map(([name, p]) => toStatus(name, p));
  }

  async signal(name: string, signal: NodeJS.Signals): Promise<void> {
    await this.checkSystemd();
    const props = (await this.show([name])).get(name);
    if (props?.ActiveState !== 'active') throw new ExitError(`cannot send ${signal} to ${name}: ${this.unitName(name)} is not running`);
    await this.systemctl.kill(this.unitName(name), signal);
  }

  /** PID 1 being systemd is not enough in some containers: the manager must answer too. */
  private async checkSystemd(): Promise<void> {
    if (this.checked) return;
    const { state, error } = await this.systemctl.systemState();
    if (state === '' || state === 'offline' || state === 'unknown') {
      throw new ExitError(`systemd does not answer (systemctl is-system-running: ${state || error})`);
    }
    this.checked = true;
  }

  /** Service names of every unit with our prefix, loaded in any state. */
  private async listUnits(): Promise<string[]> {
    const units = await this.systemctl.listServiceUnits(`${this.prefix}*`);
    return units.map((u) => serviceOfUnit(u, this.prefix)).filter((n): n is string => n !== undefined);
  }

  private async show(names: string[]): Promise<Map<string, UnitProps>> {
    const shown = new Map<string, UnitProps>();
    const byId = await this.systemctl.show(names.map((n) => this.unitName(n)), SHOWN, { unixTimestamps: true });
    for (const [id, props] of byId) {
      const name = serviceOfUnit(id, this.prefix);
      if (name !== undefined) shown.set(name, props);
    }
    return shown;
  }

  /** One `systemctl stop` for all: systemd orders the stop jobs by After= (dependents first). */
  private async stopUnits(names: string[]): Promise<void> {
    if (names.length === 0) return;
    const units = names.map((n) => this.unitName(n));
    await this.systemctl.stop(units);
    await this.systemctl.resetFailed(units);
  }

  private async waitStarted(services: ServiceSpec[], fresh: Set<string>): Promise<void> {
    const deadline = Date.now() + (this.opts.ensureTimeoutMs ?? 15_000);
    const firstSeen = new Map<string, { pid: string; at: number }>();
    for (;;) {
      const shown = await this.show(services.map((s) => s.name));
      const waiting: string[] = [];
      for (const spec of services) {
        const p = shown.get(spec.name);
        const restarts = Number(p?.NRestarts ?? 0);
        if (fresh.has(spec.name) && (p?.ActiveState === 'failed' || restarts >= START_RETRIES)) {
          throw new ExitError(`service ${spec.name} failed to start (${this.unitName(spec.name)} restarted ${restarts} times); tail of ${spec.logFile}:\n${await logTail(spec.logFile)}`);
        }
        const pid = p?.MainPID ?? '0';
        if (p?.ActiveState !== 'active' || pid === '0') {
          waiting.push(spec.name);
          continue;
        }
        const seen = firstSeen.get(spec.name);
        if (seen?.pid !== pid) firstSeen.set(spec.name, { pid, at: Date.now() });
        const since = seen?.pid === pid ? seen.at : Date.now();
        if (fresh.has(spec.name) && Date.now() - since < (spec.settleMs ?? DEFAULT_SETTLE_MS)) waiting.push(spec.name);
      }
      if (waiting.length === 0) return;
      if (Date.now() > deadline) throw new ExitError(`systemd units not running in time: ${waiting.map((n) => this.unitName(n)).join(', ')}`);
      await sleep(this.opts.pollMs ?? 100);
    }
  }
}

function toStatus(name: string, p: UnitProps): ServiceStatus {
  const pid = Number(p.MainPID ?? 0);
  const running = p.ActiveState === 'active' && pid > 0;
  const at = (stamp: string | undefined): string | undefined =>
    stamp?.startsWith('@') ? new Date(Number(stamp.slice(1)) * 1000).toISOString() : undefined;
  const started = at(p.ExecMainStartTimestamp);
  const exited = at(p.ExecMainExitTimestamp);
  // ExecMainCode: 1 exited (status = exit code), 2 killed / 3 dumped (status = signal number).
  const code = Number(p.ExecMainCode ?? 0);
  const status = Number(p.ExecMainStatus ?? 0);
  const signal = Object.entries(constants.signals as Record<string, number>).find(([, n]) => n === status)?.[0] ?? `signal ${status}`;
  return {
    name,
    running,
    ...(running ? { pid } : {}),
    restarts: Number(p.NRestarts ?? 0),
    ...(started === undefined ? {} : { startedAt: started }),
    ...(exited === undefined || code === 0
      ? {}
      : { lastExit: code === 1 ? { code: status, signal: null, at: exited } : { code: null, signal, at: exited } }),
  };
}
