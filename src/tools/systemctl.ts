/**
 * The one typed wrapper around `systemctl`: every call has a timeout and goes through the Runner,
 * so dry runs, recordings and remote runners see it like any other command. Only the systemd
 * backends (transient units, rendered unit files) use it; test/one-module-per-concept.test.ts checks
 * that no other module spells the command.
 */
import { systemdUnitName } from '../paths.js';
import type { RunResult, Runner } from '../runner.js';

/** The systemd unit of a service, e.g. `ovn-deploy-ovn-northd.service` (paths.ts holds the rule). */
export const unitName = systemdUnitName;

export type UnitProps = Record<string, string>;

/** As a person would type it: plans and hints show exactly what the wrapper runs. */
export function commandLine(args: readonly string[]): string {
  return ['systemctl', ...args].join(' ');
}

// Queries answer at once; jobs (start, stop, enable --now) wait for daemons, which may take long
// under load, but never forever.
const QUERY_TIMEOUT_MS = 30_000;
const JOB_TIMEOUT_MS = 120_000;

export class Systemctl {
  constructor(private readonly runner: Runner) {}

  private query(args: string[], allowFailure = false): Promise<RunResult> {
    return this.runner.run(['systemctl', ...args], { mutates: false, allowFailure, timeoutMs: QUERY_TIMEOUT_MS });
  }

  private job(args: string[], allowFailure = false): Promise<RunResult> {
    return this.runner.run(['systemctl', ...args], { mutates: true, allowFailure, timeoutMs: JOB_TIMEOUT_MS });
  }

  /** `systemctl is-system-running`: the manager's state, '' when it does not answer. */
  async systemState(): Promise<{ state: string; error: string }> {
    const r = await this.query(['is-system-running'], true);
    return { state: r.stdout.trim(), error: r.stderr.trim() || `exit ${r.exitCode}` };
  }

  /** Properties of these units, keyed by unit Id (units systemd does not know still get a block). */
  async show(units: readonly string[], properties: readonly string[], opts: { unixTimestamps?: boolean; allowFailure?: boolean } = {}): Promise<Map<string, UnitProps>> {
    const shown = new Map<string, UnitProps>();
    if (units.length === 0) return shown;
    const r = await this.query(
      ['show', ...(opts.unixTimestamps === true ? ['--timestamp=unix'] : []), `--property=${properties.join(',')}`, ...units],
      opts.allowFailure ?? false,
    );
    for (const block of r.stdout.split(/\n\s*\n/)) {
      const props: UnitProps = {};
      for (const line of block.split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) props[line.slice(0, eq)] = line.slice(eq + 1);
      }
      if (props.Id !== undefined) shown.set(props.Id, props);
    }
    return shown;
  }

  /** Service units matching a glob, loaded in any state. */
  async listServiceUnits(pattern: string): Promise<string[]> {
    const r = await this.query(['list-units', '--all', '--plain', '--no-legend', '--full', '--type=service', pattern]);
    return r.stdout
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[0] ?? '')
      .filter((unit) => unit !== '');
  }

  async enableNow(units: readonly string[]): Promise<void> {
    if (units.length > 0) await this.job(['enable', '--now', ...units]);
  }

  /** `bestEffort`: a unit that is not installed (or fails to stop) is not an error. */
  async disableNow(units: readonly string[], opts: { bestEffort?: boolean } = {}): Promise<void> {
    if (units.length > 0) await this.job(['disable', '--now', ...units], opts.bestEffort ?? false);
  }

  async restart(units: readonly string[]): Promise<void> {
    if (units.length > 0) await this.job(['restart', ...units]);
  }

  async stop(units: readonly string[]): Promise<void> {
    if (units.length > 0) await this.job(['stop', ...units]);
  }

  /** Failed units stay loaded (and block re-creating the name) until reset; best effort. */
  async resetFailed(units: readonly string[]): Promise<void> {
    if (units.length > 0) await this.job(['reset-failed', ...units], true);
  }

  /** `systemctl reload`; the result says whether the unit has an ExecReload= that worked. */
  reload(unit: string): Promise<RunResult> {
    return this.job(['reload', unit], true);
  }

  /** A signal to the unit's main process only (not to helpers it forked). */
  async kill(unit: string, signal: NodeJS.Signals): Promise<void> {
    await this.job(['kill', '--kill-whom=main', `--signal=${signal}`, unit]);
  }

  async daemonReload(): Promise<void> {
    await this.job(['daemon-reload']);
  }
}
