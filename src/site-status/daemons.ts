/**
 * A host's daemons in the status: each service its service manager runs (`apply --check` reports
 * them), healthy when it runs supervised and every health check about it passes (the report says
 * which service each check is about). Pure: the same for a site's hosts and the sandbox's.
 */
import type { ServiceStatus } from '../supervisor/types.js';

export interface DaemonView {
  /** The service's name on its host (`ovn-controller`). */
  name: string;
  running: boolean;
  /** Its pid, also when it runs without its supervisor. */
  pid: number | null;
  restarts: number;
  healthy: boolean;
  detail: string;
}

function describeDown(s: ServiceStatus): string {
  if (s.unsupervisedPid !== undefined) return `runs (pid ${s.unsupervisedPid}) without its supervisor: nothing restarts it until the next apply`;
  if (s.lastExit === undefined) return 'not running';
  return `not running (last exit ${s.lastExit.signal ?? `code ${s.lastExit.code ?? '?'}`} at ${s.lastExit.at})`;
}

/** `health`: the host's checks, each naming the service it is about (apply's serviceOf). */
export function judgeDaemons(services: readonly ServiceStatus[], health: readonly { check: string; ok: boolean; detail: string; service?: string }[]): DaemonView[] {
  return services.map((s): DaemonView => {
    // Its own checks besides "it runs", which the service manager's view already answers.
    const checks = health.filter((c) => c.service === s.name && !c.check.startsWith('service-running '));
    const bad = checks.filter((c) => !c.ok);
    const base = { name: s.name, running: s.running || s.unsupervisedPid !== undefined, pid: s.pid ?? s.unsupervisedPid ?? null, restarts: s.restarts };
    if (!s.running) return { ...base, healthy: false, detail: describeDown(s) };
    if (bad.length > 0) return { ...base, healthy: false, detail: bad.map((c) => `${c.check}: ${c.detail}`).join('; ') };
    return { ...base, healthy: true, detail: checks.map((c) => `${c.check}: ${c.detail}`).join('; ') || 'running' };
  });
}
