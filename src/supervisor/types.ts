/**
 * The contract between whoever deploys daemons (the `up` sandbox, `apply`) and whatever keeps them
 * running: ovn-deploy's own supervisor (`ovn-deploy supervise`), one per host: the sandbox's hosts
 * and real hosts where systemd is not PID 1. Under systemd, apply installs rendered units instead.
 */

/** How long a service waits for its `waitFor` sockets before it starts anyway. */
export const WAIT_FOR_MS = 10_000;

export interface ServiceSpec {
  /** Unique within one supervisor, e.g. `ovn-nb-ovsdb`, `ovn-controller`. */
  name: string;
  /** The daemon in the FOREGROUND (no --detach): the supervisor owns the process. */
  argv: string[];
  /** Run inside this network namespace. */
  netns?: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Where the daemon's stdout/stderr go (appended). */
  logFile: string;
  /** Started after these services (by name); stopped before them. */
  after?: string[];
  /** Signal used for a graceful stop; default SIGTERM. */
  stopSignal?: NodeJS.Signals;
  /**
   * How long after stopSignal it may take before SIGKILL; default the supervisor's (5 s). podman
   * takes longer: it removes its container after the container exits, and a SIGKILL then leaves
   * the container behind.
   */
  stopGraceMs?: number;
  /**
   * A fresh process must stay alive this long before ensure() counts it as started, so a daemon
   * that exits at once on a bad config fails ensure() instead of passing it; default 300 ms.
   */
  settleMs?: number;
  /**
   * Unix sockets the daemon binds and leaves behind when it dies (stunnel): removed before each
   * start, if they are sockets (never through a symlink, nothing else).
   */
  unixListeners?: string[];
  /** Unix sockets to wait for (bounded) before each spawn: see BundleService.waitFor. */
  waitFor?: string[];
}

export interface ServiceStatus {
  name: string;
  /** Running right now (process alive and is the one we started). */
  running: boolean;
  pid?: number;
  /** Not running under its supervisor, yet its recorded process lives: its supervisor died (own supervisor only). */
  unsupervisedPid?: number;
  /** How often the supervisor restarted it after it died. */
  restarts: number;
  startedAt?: string;
  lastExit?: { code: number | null; signal: string | null; at: string };
}

export interface Supervisor {
  /** 'own' (ovn-deploy supervise) or 'systemd' (transient units). */
  readonly kind: 'own' | 'systemd';
  /**
   * Converges to exactly `services`: starts what is missing or dead, restarts what changed (argv,
   * env, netns), stops services it manages that are not listed. Resolves once each listed service
   * has a live process (not that it is healthy: callers check health with the tool wrappers).
   */
  ensure(services: ServiceSpec[]): Promise<void>;
  /** Stops the named services (all when omitted), in reverse `after` order, and waits for them. */
  stop(names?: string[]): Promise<void>;
  status(): Promise<ServiceStatus[]>;
  /** Sends a signal to a running service (e.g. SIGHUP to stunnel to reload certificates). */
  signal(name: string, signal: NodeJS.Signals): Promise<void>;
}
