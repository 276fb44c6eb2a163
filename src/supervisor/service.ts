/**
 * One supervised daemon inside `ovn-deploy supervise`: spawns it (own process group, output
 * appended to its log, `ip netns exec` when it has a namespace), restarts it with backoff when it
 * dies, gives up after repeated quick deaths, and stops it gracefully. A process inherited from a
 * previous supervisor (adopted) is not our child, so its death is noticed by polling /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, lstatSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { withNetns } from '../runner.js';
import { isSameProcess, readProcStat, terminate, type ProcIdentity } from './proc.js';
import { serviceHash } from './spec.js';
import type { ServiceRecord, ServiceState } from './state.js';
import { WAIT_FOR_MS, type ServiceSpec } from './types.js';

export interface Timing {
  /** First restart delay; doubles on each quick death up to maxRestartDelayMs. */
  restartDelayMs: number;
  maxRestartDelayMs: number;
  /** A run at least this long is not a quick death: the backoff starts over. */
  resetAfterMs: number;
  /** Quick deaths in a row before the service is marked failed. */
  maxFailures: number;
  /** stopSignal -> SIGKILL. */
  graceMs: number;
  /** How often an adopted process (not our child) is checked. */
  adoptPollMs: number;
}

export const DEFAULT_TIMING: Timing = {
  restartDelayMs: 200,
  maxRestartDelayMs: 5_000,
  resetAfterMs: 30_000,
  maxFailures: 10,
  graceMs: 5_000,
  adoptPollMs: 500,
};

const WAIT_POLL_MS = 10;

const isSocket = (p: string): boolean => {
  try {
    return lstatSync(p).isSocket();
  } catch {
    return false;
  }
};

/** Services get PATH and their own env only: not whatever shell happened to start the supervisor. */
const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class ManagedService {
  state: ServiceState = 'backoff';
  readonly hash: string;
  private proc?: ProcIdentity;
  private child?: ChildProcess;
  private adopted = false;
  private startedAt?: number;
  private restarts = 0;
  private failures = 0;
  private lastExit?: ServiceRecord['lastExit'];
  private error?: string;
  private wanted = true;
  private timer?: NodeJS.Timeout;
  private poller?: NodeJS.Timeout;
  private exitWaiters: (() => void)[] = [];
  /** Between start() and the spawn: still waiting for its `waitFor` sockets or predecessors. */
  private waiting = false;
  private predecessors: () => readonly ManagedService[] = () => [];

  constructor(
    public spec: ServiceSpec,
    private readonly changed: () => void,
    private readonly log: (line: string) => void,
    private readonly timing: Timing = DEFAULT_TIMING,
  ) {
    this.hash = serviceHash(spec);
  }

  get name(): string {
    return this.spec.name;
  }

  /**
   * Spawns the daemon once its `waitFor` sockets exist and none of `predecessors()` (the services
   * it starts `after`, looked up at each start) is still waiting for its own, or once WAIT_FOR_MS
   * has passed: a predecessor's deferred spawn must not let its dependents overtake it.
   */
  start(predecessors?: () => readonly ManagedService[]): void {
    clearTimeout(this.timer);
    if (predecessors !== undefined) this.predecessors = predecessors;
    this.wanted = true;
    this.waiting = true;
    this.error = undefined;
    this.spawnWhenReady(Date.now() + WAIT_FOR_MS);
  }

  private spawnWhenReady(deadline: number): void {
    const missing = (this.spec.waitFor ?? []).filter((p) => !isSocket(p));
    const behind = this.predecessors().filter((p) => p.waiting).map((p) => p.name);
    if (missing.length + behind.length > 0 && Date.now() < deadline) {
      // On this.timer, so that stop() cancels a start still waiting.
      this.timer = setTimeout(() => this.spawnWhenReady(deadline), WAIT_POLL_MS);
      return;
    }
    if (missing.length > 0) this.log(`${this.name}: starting without ${missing.join(', ')} (not there after ${WAIT_FOR_MS} ms)`);
    if (behind.length > 0) this.log(`${this.name}: starting before ${behind.join(', ')} (still waiting after ${WAIT_FOR_MS} ms)`);
    this.waiting = false;
    this.spawn();
  }

  private spawn(): void {
    const argv = withNetns(this.spec.argv, this.spec.netns);
    let child: ChildProcess;
    let fd: number | undefined;
    try {
      mkdirSync(path.dirname(this.spec.logFile), { recursive: true });
      fd = openSync(this.spec.logFile, 'a', 0o640);
      removeStaleSockets(this.spec.unixListeners ?? []);
      // detached: own session and process group, so a terminal's SIGINT never reaches it.
      child = spawn(argv[0] ?? '', argv.slice(1), {
        detached: true,
        stdio: ['ignore', fd, fd],
        cwd: this.spec.cwd ?? '/',
        env: { PATH: process.env.PATH ?? FALLBACK_PATH, ...this.spec.env },
      });
    } catch (err) {
      this.noteToLog(`cannot start: ${(err as Error).message}`, fd);
      if (fd !== undefined) closeSync(fd);
      this.exited(null, null);
      return;
    }
    closeSync(fd);
    const pid = child.pid;
    child.on('error', (err) => {
      if (child.pid !== undefined) return; // errors after a successful spawn (kill) are not deaths
      this.noteToLog(`cannot start ${argv[0] ?? ''}: ${err.message}`);
      if (this.child === child) this.exited(null, null);
    });
    this.child = child;
    this.startedAt = Date.now();
    this.state = 'running';
    this.adopted = false;
    if (pid === undefined) return; // the 'error' event follows
    // Not reaped before our own 'exit' handler runs, so its stat is there even if it already died.
    this.proc = { pid, startTicks: readProcStat(pid)?.startTicks ?? 0 };
    child.once('exit', (code, signal) => {
      if (this.child === child) this.exited(code, signal);
    });
    this.log(`${this.name}: started pid ${pid}`);
    this.changed();
  }

  /** Takes over a live process a previous supervisor started (identity already proven). */
  adopt(id: ProcIdentity, previous: ServiceRecord): void {
    this.proc = id;
    this.adopted = true;
    this.state = 'running';
    this.restarts = previous.restarts;
    this.lastExit = previous.lastExit;
    this.startedAt = previous.startedAt === undefined ? Date.now() : Date.parse(previous.startedAt);
    this.poller = setInterval(() => {
      if (!isSameProcess(id)) this.exited(null, null);
    }, this.timing.adoptPollMs);
    this.log(`${this.name}: adopted pid ${id.pid}`);
    this.changed();
  }

  /** A new desired state was applied: forget old failures, retry at once if waiting or given up. */
  reapply(spec: ServiceSpec): void {
    this.spec = spec;
    this.failures = 0;
    if (this.state === 'backoff' || this.state === 'failed') this.start();
    else this.changed();
  }

  /** stopSignal, SIGKILL to its process group after the grace period; resolves once it is gone. */
  async stop(): Promise<void> {
    this.wanted = false;
    this.waiting = false;
    clearTimeout(this.timer);
    const proc = this.proc;
    if (proc === undefined) return;
    this.state = 'stopping';
    this.changed();
    const exitSeen = new Promise<void>((resolve) => this.exitWaiters.push(resolve));
    await terminate(proc, this.spec.stopSignal ?? 'SIGTERM', this.spec.stopGraceMs ?? this.timing.graceMs, this.adopted ? undefined : exitSeen);
    if (this.adopted) this.exited(null, null);
    // Our child's exit status arrives with Node's reaping; wait briefly so lastExit records it.
    else await withTimeout(exitSeen, 1_000);
  }

  record(): ServiceRecord {
    return {
      name: this.name,
      hash: this.hash,
      argv: this.spec.argv,
      logFile: this.spec.logFile,
      ...(this.spec.netns === undefined ? {} : { netns: this.spec.netns }),
      ...(this.spec.stopSignal === undefined ? {} : { stopSignal: this.spec.stopSignal }),
      ...(this.spec.stopGraceMs === undefined ? {} : { stopGraceMs: this.spec.stopGraceMs }),
      state: this.state,
      ...(this.proc === undefined ? {} : { pid: this.proc.pid, startTicks: this.proc.startTicks }),
      ...(this.startedAt === undefined ? {} : { startedAt: new Date(this.startedAt).toISOString() }),
      restarts: this.restarts,
      failures: this.failures,
      ...(this.lastExit === undefined ? {} : { lastExit: this.lastExit }),
      ...(this.adopted ? { adopted: true } : {}),
      ...(this.error === undefined ? {} : { error: this.error }),
    };
  }

  private exited(code: number | null, signal: NodeJS.Signals | null): void {
    clearInterval(this.poller);
    const uptime = Date.now() - (this.startedAt ?? Date.now());
    this.child = undefined;
    this.proc = undefined;
    this.startedAt = undefined;
    this.lastExit = { code, signal, at: new Date().toISOString() };
    this.exitWaiters.splice(0).forEach((resolve) => resolve());
    if (!this.wanted) {
      this.changed();
      return;
    }
    this.failures = uptime < this.timing.resetAfterMs ? this.failures + 1 : 1;
    const how = signal === null ? `code ${code ?? 'unknown'}` : `signal ${signal}`;
    if (this.failures >= this.timing.maxFailures) {
      this.state = 'failed';
      this.error = `exited ${this.failures} times in a row (last: ${how}); gave up`;
      this.log(`${this.name}: ${this.error}`);
    } else {
      const delay = Math.min(this.timing.restartDelayMs * 2 ** (this.failures - 1), this.timing.maxRestartDelayMs);
      this.state = 'backoff';
      this.log(`${this.name}: exited (${how}) after ${uptime} ms; restarting in ${delay} ms`);
      this.timer = setTimeout(() => {
        this.restarts += 1;
        this.start();
      }, delay);
    }
    this.changed();
  }

  /** Spawn failures go to the service's own log, where ensure() looks for the reason. */
  private noteToLog(message: string, fd?: number): void {
    this.log(`${this.name}: ${message}`);
    try {
      const out = fd ?? openSync(this.spec.logFile, 'a', 0o640);
      writeSync(out, `ovn-deploy supervise: ${message}\n`);
      if (fd === undefined) closeSync(out);
    } catch {
      // The log itself is unusable; the supervisor's log has the message.
    }
  }
}

/** Waits for `promise` at most `ms`, without leaving a timer that keeps the process alive. */
async function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * The unix listeners a previous process of the daemon left (stunnel removes them only on a clean
 * exit, and cannot bind over them): each removed if, and only if, it is a socket (lstat: never
 * through a symlink).
 */
function removeStaleSockets(paths: readonly string[]): void {
  for (const p of paths) {
    try {
      if (lstatSync(p).isSocket()) unlinkSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
