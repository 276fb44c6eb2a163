/**
 * What `apply` reports: the object `--json` prints (and `deploy` parses) and the exit code that
 * goes with its status. The shape is fixed by the issue-5 design; keep it stable.
 */
import type { ServiceStatus } from '../supervisor/types.js';

export type ChangeKind = 'package' | 'image' | 'file' | 'certificate' | 'db' | 'service' | 'ovs' | 'underlay' | 'raft' | 'firewall';

export interface Change {
  kind: ChangeKind;
  /** What changed: a package name, a path, a service name, an OVS column... */
  target: string;
  /** What was (or, in a dry run, would be) done: install, create, update, start, restart, reload... */
  action: string;
}

export interface HealthResult {
  /** e.g. `service-running ovn-northd`, `raft-member OVN_Northbound`, `tcp-listen 10.0.0.1:6641`. */
  check: string;
  ok: boolean;
  detail: string;
  /** The service the check is about (absent: a check of the host). */
  service?: string;
}

export type ApplyStatus = 'converged' | 'needs-certificate' | 'unhealthy';

export interface ApplyReport {
  host: string;
  status: ApplyStatus;
  dryRun: boolean;
  changes: Change[];
  /** The host's CSR (PEM) when status is needs-certificate. */
  csr?: string;
  /** The admin-side command that signs `csr` (needs-certificate only). */
  signCommand?: string;
  health: HealthResult[];
  /** apply --check: the host's daemons as its service manager sees them (pid, restarts, last exit). */
  services?: ServiceStatus[];
}

/** 0 converged, 1 unhealthy/failed, 2 bad input (thrown as InputError), 3 needs-certificate. */
export const APPLY_EXIT = { converged: 0, unhealthy: 1, badInput: 2, needsCertificate: 3 } as const;

export function exitCodeFor(status: ApplyStatus): number {
  if (status === 'converged') return APPLY_EXIT.converged;
  if (status === 'needs-certificate') return APPLY_EXIT.needsCertificate;
  return APPLY_EXIT.unhealthy;
}
