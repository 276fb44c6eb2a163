/**
 * A host's daemons in the status: each service its service manager runs (`apply --check` reports
 * them), healthy when it runs supervised and every health check about it passes. Pure: the same
 * for a site's hosts and the sandbox's.
 */
import { METADATA_PROXY_SOCKET } from '../render/metadata-runtime.js';
import { SERVICE } from '../render/services.js';
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

/**
 * The service a health check is about, or undefined for a check of the host (a listener: which
 * daemon serves it depends on the TLS mode).
 */
export function serviceOfCheck(check: string): string | undefined {
  const [kind, arg = ''] = check.split(' ', 2);
  switch (kind) {
    case 'service-running':
      return arg;
    case 'raft-member':
      return arg === 'OVN_Northbound' ? SERVICE.nbOvsdb : SERVICE.sbOvsdb;
    case 'ovn-controller-connected':
      return SERVICE.controller;
    case 'metadata-registered':
    case 'container-healthy':
      return SERVICE.metadataAgent;
    case 'unix-listen':
      return arg.endsWith(`/${METADATA_PROXY_SOCKET}`) ? SERVICE.metadataAgent : undefined;
    default:
      return undefined;
  }
}

function describeDown(s: ServiceStatus): string {
  if (s.unsupervisedPid !== undefined) return `runs (pid ${s.unsupervisedPid}) without its supervisor: nothing restarts it until the next apply`;
  if (s.lastExit === undefined) return 'not running';
  return `not running (last exit ${s.lastExit.signal ?? `code ${s.lastExit.code ?? '?'}`} at ${s.lastExit.at})`;
}

export function judgeDaemons(services: readonly ServiceStatus[], health: readonly { check: string; ok: boolean; detail: string }[]): DaemonView[] {
  return services.map((s): DaemonView => {
    // Its own checks besides "it runs", which the service manager's view already answers.
    const checks = health.filter((c) => serviceOfCheck(c.check) === s.name && !c.check.startsWith('service-running '));
    const bad = checks.filter((c) => !c.ok);
    const base = { name: s.name, running: s.running || s.unsupervisedPid !== undefined, pid: s.pid ?? s.unsupervisedPid ?? null, restarts: s.restarts };
    if (!s.running) return { ...base, healthy: false, detail: describeDown(s) };
    if (bad.length > 0) return { ...base, healthy: false, detail: bad.map((c) => `${c.check}: ${c.detail}`).join('; ') };
    return { ...base, healthy: true, detail: checks.map((c) => `${c.check}: ${c.detail}`).join('; ') || 'running' };
  });
}
