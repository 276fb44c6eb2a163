/** Types shared by `up`'s entry point and its steps. */
import type { Inventory, TlsMode } from '../inventory/types.js';
import type { Runner } from '../runner.js';
import type { StepTiming } from '../ui/dag.js';
import type { ProgressMode } from '../ui/listr.js';
import type { PkiOutcome } from './certs.js';
import type { HostsOutcome } from './hosts.js';
import type { Datapath, SandboxPlan } from './plan.js';
import type { SandboxSite } from './site.js';
import type { HeldLock, SandboxState } from './state.js';
import type { PingResult, TraceResult } from './verify.js';

export interface UpOptions {
  stateDir: string;
  workers: number;
  datapath: Datapath | 'auto';
  supervisor: 'auto' | 'own' | 'systemd';
  dryRun: boolean;
  progress: ProgressMode;
  /** Skip the system package check/installation. */
  installPackages: boolean;
  /** Lines for stdout (results, dry-run commands). */
  print: (line: string) => void;
  runner?: Runner;
  /** `native`: ovsdb-server's own TLS with SB RBAC; undefined keeps what the sandbox had (stunnel for a new one). */
  tls?: TlsMode;
  /** Run the metadata agent on every worker; undefined keeps what the sandbox had. */
  metadataAgent?: boolean;
  /** Run the agents in containers of this podman image; undefined keeps what the sandbox had ('' = processes). */
  metadataImage?: string;
  /** Seconds to wait for logical ports to come up. */
  portsUpTimeoutSec?: number;
}

export interface UpResult {
  plan: SandboxPlan;
  durationMs: number;
  supervisor: 'own' | 'systemd';
  pki?: PkiOutcome;
  hosts?: HostsOutcome;
  pings: PingResult[];
  traces: TraceResult[];
  /** When each step started and ended (ms since the steps began): where the time goes. */
  timings: StepTiming[];
}

export interface UpContext {
  opts: UpOptions;
  dryRun: boolean;
  runner: Runner;
  plan: SandboxPlan;
  inv: Inventory;
  site: SandboxSite;
  state: SandboxState;
  lock?: HeldLock;
  /** Every namespace on the machine when this `up` began (ours among them: leftovers). */
  namespacesBefore: string[];
  /** Workers of the previous `up` of this sandbox (0 for a new one). */
  workersBefore: number;
  pki?: PkiOutcome;
  hosts?: HostsOutcome;
  pings: PingResult[];
  traces: TraceResult[];
}
