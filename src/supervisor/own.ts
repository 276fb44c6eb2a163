/**
 * Client side of the own supervisor: writes the desired state, starts `ovn-deploy supervise` when
 * none runs (else SIGHUPs it), and waits on status.json. Every signal goes only to a process
 * proven to be ours (see identity.ts).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { ExitError } from '../errors.js';
import { cliPath as defaultCliPath, supervisorPaths, type SupervisorPaths } from '../paths.js';
import { liveSupervisor, recordedProcess } from './identity.js';
import { logTail } from './log-tail.js';
import { sleep } from '../tools/retry.js';
import { isAlive, isSameProcess, signalIfSame, terminate, waitForDeath } from './proc.js';
import { serviceHash, validateServices } from './spec.js';
import { readDesired, readStatus, writeDesired, type ServiceRecord, type StatusFile } from './state.js';
import type { ServiceSpec, ServiceStatus, Supervisor } from './types.js';

export interface OwnSupervisorOptions {
  /** How long ensure() waits for every service to run; default 15 s. */
  ensureTimeoutMs?: number;
  /** How long stop() waits for the supervisor and services to exit; default 30 s. */
  stopTimeoutMs?: number;
  /** The compiled CLI to run as `node CLI supervise`; default dist/cli.js of this package. */
  cliPath?: string;
  /**
   * Prepended to the supervisor's command line, e.g. `ip netns exec NS`: the supervisor and so
   * every daemon it starts run inside that context (a local host's network namespace).
   */
  spawnPrefix?: readonly string[];
}

/** Quick deaths of a fresh process after which ensure() gives up (the supervisor keeps trying). */
const START_RETRIES = 3;
const DEFAULT_SETTLE_MS = 300;
const POLL_MS = 50;
/** Supervisor starts per ensure(): more means it dies on start (see its log). */
const MAX_LAUNCHES = 3;
/** stopSignal -> SIGKILL for orphans of a dead supervisor (its own grace period is the same). */
const ORPHAN_GRACE_MS = 5_000;

export class OwnSupervisor implements Supervisor {
  readonly kind = 'own' as const;
  private readonly paths: SupervisorPaths;
  private readonly stateDir: string;
  /** A supervisor this client spawned (it may not have written its pid file yet). */
  private launchedPid?: number;
  private launches = 0;

  constructor(
    stateDir: string,
    private readonly opts: OwnSupervisorOptions = {},
  ) {
    this.stateDir = path.resolve(stateDir);
    this.paths = supervisorPaths(this.stateDir);
  }

  /**
   * Launches the supervisor now, on a host that has never had services, so that its Node
   * start-up (~200 ms) overlaps the caller's work and the first ensure() finds it up. Never where
   * a services.json exists: the supervisor would start those services before the caller
   * changed their files.
   */
  warmUp(): void {
    if (existsSync(this.paths.services) || this.supervisor() !== undefined || this.launching()) return;
    this.launchedPid = this.launch();
  }

  async ensure(services: ServiceSpec[]): Promise<void> {
    validateServices(services);
    const revision = randomUUID();
    await writeDesired(this.paths.services, { version: 1, revision, services });
    const deadline = Date.now() + (this.opts.ensureTimeoutMs ?? 15_000);
    this.launches = 0;
    await this.notify();
    for (;;) {
      const status = await this.readStatusQuietly();
      const supervisor = this.supervisor();
      // Only a status written by the live supervisor counts: one that died (even after applying
      // our revision) leaves running but unsupervised services. A new one adopts them.
      const current = supervisor !== undefined && status?.supervisorPid === supervisor.pid && status.revision === revision;
      if (current) {
        const verdict = checkStarted(services, status);
        if (verdict.failed !== undefined) throw await startFailure(verdict.failed.spec, verdict.failed.record);
        if (verdict.waiting.length === 0) return;
      } else if (supervisor === undefined && !this.launching()) {
        await this.notify();
      }
      if (Date.now() > deadline) throw await this.timeout(services, current ? status : undefined);
      await sleep(POLL_MS);
    }
  }

  async stop(names?: string[]): Promise<void> {
    // Loaded while the supervisor stops: status.json is read once it has.
    // The others keep running; an `after` naming a stopped one is dropped (the supervisor ignores a
    // services.json whose `after` names an unknown service, and the stop would never be confirmed).
    const desired = names === undefined ? undefined : await readDesired(this.paths.services).catch(() => undefined);
    const remaining = names === undefined ? [] : (desired?.services ?? []).filter((s) => !names.includes(s.name)).map((s) => withoutAfter(s, names));
    const revision = randomUUID();
    await writeDesired(this.paths.services, { version: 1, revision, services: remaining });
    const supervisor = this.supervisor();
    const deadline = Date.now() + (this.opts.stopTimeoutMs ?? 30_000);
    if (supervisor !== undefined && names === undefined) {
      signalIfSame(supervisor, 'SIGTERM');
      if (!(await waitForDeath(supervisor, deadline - Date.now()))) {
        throw new ExitError(`the supervisor (pid ${supervisor.pid}) did not stop in time; see ${this.paths.log}`);
      }
      // It removes its pid file only after stopping every service (daemon.ts): nothing is orphaned,
      // and status.json need not be read (nor zod loaded, about 60 ms of `down`).
      if (!existsSync(this.paths.pid)) return;
    } else if (supervisor !== undefined) {
      signalIfSame(supervisor, 'SIGHUP');
      while ((await this.readStatusQuietly())?.revision !== revision) {
        if (!isSameProcess(supervisor)) break; // died: its orphans are swept below
        if (Date.now() > deadline) throw new ExitError(`the supervisor did not stop ${names?.join(', ')} in time`);
        await sleep(POLL_MS);
      }
    }
    // A supervisor killed with -9 (or that died while stopping) leaves orphans: stop them here.
    const status = await this.readStatusQuietly();
    const orphans = (status?.services ?? []).filter((r) => names === undefined || names.includes(r.name));
    await Promise.all(
      orphans.map((r) => {
        const id = status === undefined ? undefined : recordedProcess(r, status);
        return id === undefined ? undefined : terminate(id, (r.stopSignal ?? 'SIGTERM') as NodeJS.Signals, r.stopGraceMs ?? ORPHAN_GRACE_MS);
      }),
    );
  }

  async status(): Promise<ServiceStatus[]> {
    const status = await this.readStatusQuietly();
    const desired = await readDesired(this.paths.services).catch(() => undefined);
    const records = new Map((status?.services ?? []).map((r) => [r.name, r]));
    const names = [...new Set([...(desired?.services ?? []).map((s) => s.name), ...records.keys()])];
    return names.map((name) => {
      const r = records.get(name);
      const running = r !== undefined && status !== undefined && this.liveService(r, status);
      // Alive but its supervisor is gone (killed with -9): nobody restarts it if it dies.
      const orphan = !running && r?.state === 'running' && status !== undefined ? recordedProcess(r, status) : undefined;
      return {
        name,
        running,
        ...(running && r?.pid !== undefined ? { pid: r.pid } : {}),
        ...(orphan === undefined ? {} : { unsupervisedPid: orphan.pid }),
        restarts: r?.restarts ?? 0,
        ...(r?.startedAt === undefined ? {} : { startedAt: r.startedAt }),
        ...(r?.lastExit === undefined ? {} : { lastExit: r.lastExit }),
      };
    });
  }

  /**
   * Services whose recorded process is alive, supervised or not: after the supervisor was killed,
   * its orphans too. A partial ensure() hands these on so that the next supervisor adopts them
   * rather than stopping them as not given.
   */
  async alive(): Promise<Set<string>> {
    const status = await this.readStatusQuietly();
    if (status === undefined) return new Set();
    return new Set(status.services.filter((r) => r.state === 'running' && recordedProcess(r, status) !== undefined).map((r) => r.name));
  }

  async signal(name: string, signal: NodeJS.Signals): Promise<void> {
    const status = await this.readStatusQuietly();
    const record = status?.services.find((r) => r.name === name);
    const id = record !== undefined && status !== undefined && this.liveService(record, status)
      ? recordedProcess(record, status)
      : undefined;
    if (id === undefined || !signalIfSame(id, signal)) {
      throw new ExitError(`cannot send ${signal} to ${name}: it is not running under the supervisor of ${this.stateDir}`);
    }
  }

  /** Running as far as we can prove: its supervisor is alive and its process is the recorded one. */
  private liveService(record: ServiceRecord, status: StatusFile): boolean {
    const supervisor = this.supervisor();
    const supervised = supervisor?.pid === status.supervisorPid && supervisor.startTicks === status.supervisorStartTicks;
    return supervised && record.state === 'running' && recordedProcess(record, status) !== undefined;
  }

  private supervisor() {
    return liveSupervisor(this.paths, this.stateDir);
  }

  /** A supervisor we spawned that has not written its pid file yet. */
  private launching(): boolean {
    return this.launchedPid !== undefined && isAlive(this.launchedPid);
  }

  /** Makes the supervisor (re)read services.json: SIGHUP it, or start one. */
  private async notify(): Promise<void> {
    const running = this.supervisor();
    if (running !== undefined && signalIfSame(running, 'SIGHUP')) return;
    if (this.launching()) return;
    if (++this.launches > MAX_LAUNCHES) {
      throw new ExitError(`the supervisor keeps exiting; tail of ${this.paths.log}:\n${await logTail(this.paths.log)}`);
    }
    this.launchedPid = this.launch();
  }

  private launch(): number {
    const cli = this.opts.cliPath ?? defaultCliPath;
    if (!existsSync(cli)) {
      throw new ExitError(`cannot start the supervisor: ${cli} is missing (build ovn-deploy with \`npm run build\`)`);
    }
    mkdirSync(this.paths.dir, { recursive: true });
    const log = openSync(this.paths.log, 'a', 0o640);
    try {
      // Detached into its own session and unref'ed: it must outlive this command and ignore the
      // terminal's SIGINT. cwd / so it never pins a directory someone may want to remove.
      const [command, ...args] = [...(this.opts.spawnPrefix ?? []), process.execPath, cli, 'supervise', '--dir', this.stateDir];
      const child = spawn(command ?? process.execPath, args, {
        detached: true,
        stdio: ['ignore', log, log],
        cwd: '/',
      });
      child.unref();
      if (child.pid === undefined) throw new ExitError(`cannot start the supervisor: ${process.execPath} ${cli}`);
      return child.pid;
    } finally {
      closeSync(log);
    }
  }

  private async readStatusQuietly(): Promise<StatusFile | undefined> {
    // The supervisor replaces it atomically, but an older or hand-edited file may not parse.
    return readStatus(this.paths.status).catch(() => undefined);
  }

  private async timeout(services: ServiceSpec[], status: StatusFile | undefined): Promise<ExitError> {
    const ms = this.opts.ensureTimeoutMs ?? 15_000;
    if (status === undefined) {
      return new ExitError(`the supervisor did not apply the services within ${ms} ms; tail of ${this.paths.log}:\n${await logTail(this.paths.log)}`);
    }
    const lines = checkStarted(services, status).waiting.map((s) => {
      const r = status.services.find((x) => x.name === s.name);
      return `  ${s.name}: ${r === undefined ? 'not started yet' : r.state} (log: ${s.logFile})`;
    });
    return new ExitError(`services not running after ${ms} ms:\n${lines.join('\n')}`);
  }
}

interface StartCheck {
  waiting: ServiceSpec[];
  failed?: { spec: ServiceSpec; record: ServiceRecord };
}

/** Which services of the applied revision are not up yet (or gave up) according to status.json. */
export function checkStarted(services: readonly ServiceSpec[], status: StatusFile, now = Date.now()): StartCheck {
  const waiting: ServiceSpec[] = [];
  for (const spec of services) {
    const r = status.services.find((x) => x.name === spec.name);
    if (r === undefined || r.hash !== serviceHash(spec)) {
      waiting.push(spec);
      continue;
    }
    if (r.state === 'failed' || r.failures >= START_RETRIES) return { waiting, failed: { spec, record: r } };
    const settled = r.startedAt !== undefined && now - Date.parse(r.startedAt) >= (spec.settleMs ?? DEFAULT_SETTLE_MS);
    if (r.state !== 'running' || !settled || recordedProcess(r, status) === undefined) waiting.push(spec);
  }
  return { waiting };
}

async function startFailure(spec: ServiceSpec, record: ServiceRecord): Promise<ExitError> {
  const exit = record.lastExit;
  const how = exit === undefined ? '' : exit.signal !== null ? `, last killed by ${exit.signal}` : `, last exit code ${exit.code ?? '?'}`;
  return new ExitError(
    `service ${spec.name} failed to start (exited ${record.failures} times in a row${how}); ` +
      `tail of ${spec.logFile}:\n${await logTail(spec.logFile)}`,
  );
}

function withoutAfter(s: ServiceSpec, gone: readonly string[]): ServiceSpec {
  if (s.after === undefined || !s.after.some((a) => gone.includes(a))) return s;
  const after = s.after.filter((a) => !gone.includes(a));
  const { after: _dropped, ...rest } = s;
  return after.length === 0 ? rest : { ...rest, after };
}
