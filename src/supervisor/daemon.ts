/**
 * The own supervisor process (`ovn-deploy supervise --dir STATE`). It converges the services it
 * runs to services.json on start and on every SIGHUP, keeps status.json current, and on SIGTERM
 * stops everything (dependents first) and exits. When it starts after a predecessor was killed, it
 * adopts the predecessor's still-running services instead of starting duplicates.
 */
import { promises as fs } from 'node:fs';
import { formatProblem } from '../errors.js';
import { writeFileAtomic } from '../fsx.js';
import { supervisorPaths, type SupervisorPaths } from '../paths.js';
import { recordedProcess } from './identity.js';
import { acquireLock } from './lock.js';
import { bootId, identify, terminate, type ProcIdentity } from './proc.js';
import { DEFAULT_TIMING, ManagedService, type Timing } from './service.js';
import { serviceHash, serviceProblems, startOrder } from './spec.js';
import { readDesired, readStatus, writeStatus, type DesiredFile, type StatusFile } from './state.js';

export interface DaemonOptions {
  timing?: Partial<Timing>;
  log?: (line: string) => void;
}

/** Runs until SIGTERM/SIGINT; returns the exit code. Exits at once if another supervisor runs. */
export async function runSupervisorDaemon(stateDir: string, opts: DaemonOptions = {}): Promise<number> {
  const paths = supervisorPaths(stateDir);
  const log = opts.log ?? ((line: string) => void process.stdout.write(`${new Date().toISOString()} ${line}\n`));
  await fs.mkdir(paths.dir, { recursive: true });
  const lock = await acquireLock(stateDir);
  if (lock === undefined) {
    log(`another supervisor already runs for ${stateDir}; exiting`);
    return 0;
  }
  const me = identify(process.pid) ?? { pid: process.pid, startTicks: 0 };
  const daemon = new SupervisorDaemon(paths, me, { ...DEFAULT_TIMING, ...opts.timing }, log);
  // Handlers before the pid file: a client SIGHUPs only a supervisor it found there, and an
  // unhandled SIGHUP would kill us.
  const onHup = (): void => void daemon.converge();
  const onTerm = (): void => void daemon.shutdown();
  process.on('SIGHUP', onHup);
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onTerm);
  let stoppedAll = false;
  try {
    await writeFileAtomic(paths.pid, `${process.pid}\n`);
    log(`supervisor ${process.pid} started for ${stateDir}`);
    await daemon.startUp();
    await daemon.finished;
    stoppedAll = true;
    log(`supervisor ${process.pid} stopped`);
  } finally {
    process.off('SIGHUP', onHup);
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onTerm);
    // Removed only once every service has stopped: a client that saw this supervisor die and its
    // pid file go knows nothing of it still runs (OwnSupervisor.stop). A stale one names a dead
    // or foreign process, which every reader checks by command line.
    const pidNow = stoppedAll ? await fs.readFile(paths.pid, 'utf8').catch(() => '') : '';
    if (pidNow.trim() === String(process.pid)) await fs.rm(paths.pid, { force: true });
    lock.close();
  }
  return 0;
}

class SupervisorDaemon {
  readonly finished: Promise<void>;
  private finish: () => void = () => undefined;
  private services = new Map<string, ManagedService>();
  private revision?: string;
  private startingUp?: Promise<void>;
  private converging?: Promise<void>;
  private convergeAgain = false;
  private stopping = false;
  private dirty = false;
  private writing?: Promise<void>;
  private readonly boot = bootId();

  constructor(
    private readonly paths: SupervisorPaths,
    private readonly me: ProcIdentity,
    private readonly timing: Timing,
    private readonly log: (line: string) => void,
  ) {
    this.finished = new Promise((resolve) => (this.finish = resolve));
  }

  startUp(): Promise<void> {
    this.startingUp ??= (async () => {
      const desired = await this.readDesired();
      await this.adoptOrphans(desired);
      await this.converge();
    })();
    return this.startingUp;
  }

  /** Applies services.json; calls during a run queue one more run (SIGHUPs coalesce). */
  converge(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    this.convergeAgain = true;
    this.converging ??= this.convergeLoop();
    return this.converging;
  }

  private async convergeLoop(): Promise<void> {
    while (this.convergeAgain && !this.stopping) {
      this.convergeAgain = false;
      try {
        await this.convergeOnce();
      } catch (err) {
        this.log(`converge failed: ${(err as Error).stack ?? String(err)}`);
      }
    }
    // Cleared right after the last check, with no await in between: no SIGHUP can be missed.
    this.converging = undefined;
  }

  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log('stopping all services');
    await this.startingUp;
    await this.converging;
    await this.stopAll([...this.services.values()]);
    this.services.clear();
    await this.flushStatus();
    this.finish();
  }

  private async convergeOnce(): Promise<void> {
    const desired = await this.readDesired();
    if (desired === undefined) return;
    const wanted = new Map(desired.services.map((s) => [s.name, s]));
    const outdated = [...this.services.values()].filter((svc) => {
      const spec = wanted.get(svc.name);
      return spec === undefined || serviceHash(spec) !== svc.hash;
    });
    await this.stopAll(outdated);
    // Swapped before the starts: a service looks its predecessors up here whenever it starts, so a
    // later restart waits on the instances running then, not on ones stopped since.
    const previous = this.services;
    this.services = new Map<string, ManagedService>();
    for (const spec of startOrder(desired.services)) {
      const current = previous.get(spec.name);
      if (current !== undefined && current.hash === serviceHash(spec)) {
        current.reapply(spec);
        this.services.set(spec.name, current);
      } else {
        const svc = new ManagedService(spec, () => this.statusChanged(), this.log, this.timing);
        this.services.set(spec.name, svc);
        svc.start(() => (svc.spec.after ?? []).flatMap((a) => this.services.get(a) ?? []));
      }
    }
    this.revision = desired.revision;
    await this.flushStatus();
  }

  /** The desired state, or undefined (logged) when services.json is unreadable or invalid. */
  private async readDesired(): Promise<DesiredFile | undefined> {
    try {
      const desired = (await readDesired(this.paths.services)) ?? { version: 1, revision: '', services: [] };
      const problems = serviceProblems(desired.services);
      if (problems.length === 0) return desired;
      this.log(`ignoring ${this.paths.services}: ${problems.map(formatProblem).join('; ')}`);
    } catch (err) {
      this.log(`ignoring ${this.paths.services}: ${(err as Error).message}`);
    }
    return undefined;
  }

  /**
   * A predecessor killed with -9 leaves its services running as orphans. Keep those that are still
   * wanted unchanged (their clients stay connected); stop the rest. Only processes proven to be
   * the recorded ones are touched.
   */
  private async adoptOrphans(desired: DesiredFile | undefined): Promise<void> {
    let previous: StatusFile | undefined;
    try {
      previous = await readStatus(this.paths.status);
    } catch (err) {
      this.log(`cannot read the previous status: ${(err as Error).message}`);
    }
    // Told to stop before taking over: leave the orphans to the client's stop(), which sweeps them.
    if (previous === undefined || this.stopping) return;
    const wanted = new Map((desired?.services ?? []).map((s) => [s.name, s]));
    const unwanted: Promise<void>[] = [];
    for (const record of previous.services) {
      const id = recordedProcess(record, previous);
      if (id === undefined) continue;
      const spec = wanted.get(record.name);
      if (spec !== undefined && serviceHash(spec) === record.hash && !this.services.has(record.name)) {
        const svc = new ManagedService(spec, () => this.statusChanged(), this.log, this.timing);
        this.services.set(record.name, svc);
        svc.adopt(id, record);
      } else {
        this.log(`${record.name}: stopping orphan pid ${id.pid} (changed or no longer wanted)`);
        const signal = (record.stopSignal ?? 'SIGTERM') as NodeJS.Signals;
        unwanted.push(terminate(id, signal, record.stopGraceMs ?? this.timing.graceMs));
      }
    }
    await Promise.all(unwanted);
  }

  /** Stops each service only after every service that starts `after` it has stopped. */
  private async stopAll(list: ManagedService[]): Promise<void> {
    const stopped = new Map<string, Promise<void>>();
    const stop = (svc: ManagedService): Promise<void> => {
      let done = stopped.get(svc.name);
      if (done === undefined) {
        stopped.set(svc.name, Promise.resolve()); // breaks cycles across old and new revisions
        const dependents = list.filter((o) => o.spec.after?.includes(svc.name));
        done = Promise.all(dependents.map(stop)).then(() => svc.stop());
        stopped.set(svc.name, done);
      }
      return done;
    };
    await Promise.all(list.map(stop));
  }

  private statusChanged(): void {
    this.dirty = true;
    this.writing ??= this.writeStatusLoop();
  }

  private async writeStatusLoop(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      try {
        await writeStatus(this.paths.status, this.snapshot());
      } catch (err) {
        this.log(`cannot write ${this.paths.status}: ${(err as Error).message}`);
      }
    }
    // Cleared right after the last check, with no await in between: no change can be missed.
    this.writing = undefined;
  }

  private async flushStatus(): Promise<void> {
    this.statusChanged();
    await this.writing;
  }

  private snapshot(): StatusFile {
    return {
      version: 1,
      supervisorPid: this.me.pid,
      supervisorStartTicks: this.me.startTicks,
      bootId: this.boot,
      ...(this.revision === undefined ? {} : { revision: this.revision }),
      updatedAt: new Date().toISOString(),
      services: [...this.services.values()].map((s) => s.record()),
    };
  }
}
