/**
 * Picks the daemon supervisor: transient systemd units when systemd runs this machine, else
 * ovn-deploy's own supervisor (containers, CI, machines without systemd as PID 1).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ZxRunner, type Runner } from '../runner.js';
import { OwnSupervisor, type OwnSupervisorOptions } from './own.js';
import { SystemdSupervisor } from './systemd.js';
import type { Supervisor } from './types.js';

export type { ServiceSpec, ServiceStatus, Supervisor } from './types.js';

export interface CreateSupervisorOptions extends OwnSupervisorOptions {
  runner?: Runner;
  /** 'auto' (default): systemd when it is PID 1 and booted the machine, else own. */
  prefer?: 'own' | 'systemd' | 'auto';
  /** systemd unit name prefix; default `ovn-deploy-<hash of stateDir>-` so sandboxes never collide. */
  unitPrefix?: string;
}

export function createSupervisor(stateDir: string, opts: CreateSupervisorOptions = {}): Supervisor {
  const prefer = opts.prefer ?? 'auto';
  if (prefer === 'own' || (prefer === 'auto' && !systemdIsInit())) return new OwnSupervisor(stateDir, opts);
  const prefix = opts.unitPrefix ?? defaultUnitPrefix(stateDir);
  return new SystemdSupervisor(opts.runner ?? new ZxRunner(), prefix, opts);
}

export function defaultUnitPrefix(stateDir: string): string {
  return `ovn-deploy-${createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 8)}-`;
}

/**
 * sd_booted(3)'s test (/run/systemd/system exists) plus PID 1 being systemd: synchronous, so the
 * kind is known at once. The systemd backend still asks `systemctl is-system-running` before its
 * first action and fails clearly if the manager does not answer.
 */
export function systemdIsInit(): boolean {
  let comm: string;
  try {
    comm = readFileSync('/proc/1/comm', 'utf8').trim();
  } catch {
    return false;
  }
  return comm === 'systemd' && existsSync('/run/systemd/system');
}
