/**
 * Whether systemd runs this machine: apply then installs its rendered units with systemctl;
 * everywhere else (containers, CI, the sandbox's hosts) ovn-deploy's own supervisor runs them.
 */
import { existsSync, readFileSync } from 'node:fs';

export type { ServiceSpec, ServiceStatus, Supervisor } from './types.js';

/**
 * sd_booted(3)'s test (/run/systemd/system exists) plus PID 1 being systemd: synchronous, so the
 * kind is known at once.
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
