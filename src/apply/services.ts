/**
 * The host's daemons under one of two managers, behind one small interface so the plan and the
 * executor do not care which: ovn-deploy's own supervisor (no systemd as PID 1: containers,
 * CI, this machine) or systemd with the bundle's own unit files.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { BundleManifest, BundleService } from '../bundle/manifest.js';
import type { HostPaths } from '../paths.js';
import { ownSupervisorCommand } from '../metadata/agent-command.js';
import { DISTRIBUTION_UNITS } from '../render/systemd.js';
import { stunnelActivationScript, supervisorPaths } from '../paths.js';
import { BINARIES } from '../render/services.js';
import type { Runner } from '../runner.js';
import { reloadServiceConfirmed } from '../tools/stunnel.js';
import { socketActivatedStunnel, systemPython } from '../tools/stunnel-activation.js';
import { Systemctl, unitName } from '../tools/systemctl.js';
import { OwnSupervisor } from '../supervisor/own.js';
import { readDesired, readStatus } from '../supervisor/state.js';
import type { ServiceSpec, ServiceStatus } from '../supervisor/types.js';

export interface ObservedService {
  running: boolean;
  /** Spec hash of what runs (own supervisor only). */
  hash?: string;
  pid?: number;
}

export interface HostServices {
  readonly kind: 'own' | 'systemd';
  /** How this manager runs a bundle service: what apply hashes to tell a changed definition. */
  spec(s: BundleService): ServiceSpec;
  /** Read-only: what runs now, by service name, plus services we manage that the manifest no longer lists. */
  observe(manifest: BundleManifest, previous: readonly { name: string; unit: string }[]): Promise<{ services: Map<string, ObservedService>; unlisted: string[] }>;
  /**
   * Starts (or restarts, when changed) stage 0 and never stops a running stage-1 service.
   * `restart`: running services whose definition changed (systemd restarts them; the own
   * supervisor sees the changed spec itself).
   */
  ensureStage0(manifest: BundleManifest, unlisted: readonly string[], restart: readonly string[]): Promise<void>;
  ensureAll(manifest: BundleManifest, restart: readonly string[]): Promise<void>;
  /**
   * Starts these services ahead of their stage, leaving everything else as it is (the stunnel
   * client, before the RAFT bootstrap asks the peers whether a cluster exists).
   */
  startEarly(manifest: BundleManifest, names: readonly string[]): Promise<void>;
  restart(names: readonly string[], manifest: BundleManifest): Promise<void>;
  /** Delivers the service's reload signal; a stunnel's reload is confirmed from its log. */
  reload(service: BundleService): Promise<void>;
  /** Stops these (e.g. before converting a database file under a running server). */
  stop(names: readonly string[]): Promise<void>;
  status(): Promise<ServiceStatus[]>;
  /** Own supervisor, on a fresh host: launched ahead of the first start (systemd: nothing to do). */
  warmUp(): void;
  /** systemd only: after unit files changed. */
  daemonReload(): Promise<void>;
  /** systemd only: `disable --now` of units that are not ours (the distribution's). */
  disableUnits(units: readonly string[]): Promise<void>;
  /** Stops these for good (systemd: best-effort `disable --now`), e.g. on a central that left its clusters. */
  retire(names: readonly string[]): Promise<void>;
}

/**
 * With `socketActivation`, a stunnel gets its listening sockets from the socket-activation
 * wrapper (what a .socket unit would do under systemd): stunnel closes the listeners it bound
 * itself on every SIGHUP, so a certificate rotation's reloads would refuse or reset new
 * connections; the wrapper keeps them open. Only for hosts whose stunnel `accept` lines never
 * change while it runs (the sandbox): the wrapper hands sockets out by position, and a reload with
 * other accept lines fails (a real site's central add/remove changes them).
 */
function ownArgv(argv: readonly string[], socketActivation: boolean): string[] {
  const [binary, conf, ...rest] = argv;
  if (!socketActivation || binary !== BINARIES.stunnel || conf === undefined || rest.length > 0 || !existsSync(stunnelActivationScript)) return [...argv];
  // Without the distribution's python3 (a minimal container) stunnel runs as the bundle says.
  const python = systemPython();
  return path.isAbsolute(python) ? socketActivatedStunnel(binary, conf, python) : [...argv];
}

/** The supervisor's view of a bundle service: the daemon, env and log file of its systemd unit (but see ownArgv). */
export function specOf(s: BundleService, opts: { socketActivation?: boolean } = {}): ServiceSpec {
  // The same daemon, started so the supervisor can tell it is its own (see agent-command.ts).
  const own = ownSupervisorCommand(s.argv);
  const env = { ...own.env, ...s.env };
  return {
    name: s.name,
    argv: ownArgv(own.argv, opts.socketActivation === true),
    ...(Object.keys(env).length === 0 ? {} : { env }),
    logFile: s.logFile,
    ...(s.after.length === 0 ? {} : { after: s.after }),
    ...(s.unixListeners.length === 0 ? {} : { unixListeners: s.unixListeners }),
    ...(s.waitFor.length === 0 ? {} : { waitFor: s.waitFor }),
    ...(own.stopGraceMs === undefined ? {} : { stopGraceMs: own.stopGraceMs }),
    // ensure() need not watch a fresh daemon for 300 ms: apply's health checks (service-running,
    // then what each daemon serves) come right after and catch one that dies.
    settleMs: SETTLE_MS,
  };
}

const SETTLE_MS = 50;

/** Keeps only `after` entries that name a service of the list (ensure() rejects unknown names). */
function closeAfter(specs: ServiceSpec[]): ServiceSpec[] {
  const names = new Set(specs.map((s) => s.name));
  return specs.map((s) => {
    const after = (s.after ?? []).filter((a) => names.has(a));
    const { after: _drop, ...rest } = s;
    return after.length === 0 ? rest : { ...rest, after };
  });
}

export class OwnHostServices implements HostServices {
  readonly kind = 'own' as const;
  private readonly supervisor: OwnSupervisor;
  private readonly files: ReturnType<typeof supervisorPaths>;

  /** `paths.state` is the supervisor's state dir: its files land in hostPaths().supervisorDir. */
  private readonly socketActivation: boolean;

  constructor(
    private readonly paths: HostPaths,
    opts: { ensureTimeoutMs?: number; cliPath?: string; spawnPrefix?: readonly string[]; socketActivation?: boolean } = {},
  ) {
    const { socketActivation, ...supervisorOpts } = opts;
    this.socketActivation = socketActivation === true;
    this.supervisor = new OwnSupervisor(paths.state, supervisorOpts);
    this.files = supervisorPaths(paths.state);
    if (path.resolve(this.files.dir) !== path.resolve(paths.supervisorDir)) {
      throw new Error(`supervisor paths disagree: ${this.files.dir} vs ${paths.supervisorDir}`);
    }
  }

  /** What the supervisor runs for a bundle service on this host (its hash decides a restart). */
  spec(s: BundleService): ServiceSpec {
    return specOf(s, { socketActivation: this.socketActivation });
  }

  async observe(manifest: BundleManifest): Promise<{ services: Map<string, ObservedService>; unlisted: string[] }> {
    const status = await readStatus(this.files.status).catch(() => undefined);
    const live = await this.supervisor.status();
    const hashes = new Map((status?.services ?? []).map((r) => [r.name, r.hash]));
    const services = new Map<string, ObservedService>();
    for (const s of live) {
      const hash = hashes.get(s.name);
      services.set(s.name, { running: s.running, ...(hash === undefined ? {} : { hash }), ...(s.pid === undefined ? {} : { pid: s.pid }) });
    }
    const listed = new Set(manifest.services.map((s) => s.name));
    const unlisted = live.filter((s) => !listed.has(s.name) && s.running).map((s) => s.name);
    return { services, unlisted };
  }

  async ensureStage0(manifest: BundleManifest): Promise<void> {
    // ensure() stops whatever it is not given: hand it every stage-1 service that runs now, with
    // the spec it runs with, so stage 0 never stops or restarts one (a re-apply restarts nothing).
    const desired = await readDesired(this.files.services).catch(() => undefined);
    const current = new Map((desired?.services ?? []).map((s) => [s.name, s]));
    const running = await this.supervisor.alive();
    const specs: ServiceSpec[] = manifest.services.filter((s) => s.stage === 0).map((s) => this.spec(s));
    for (const s of manifest.services.filter((x) => x.stage === 1)) {
      const old = current.get(s.name);
      if (old !== undefined && running.has(s.name)) specs.push(old);
    }
    await this.supervisor.ensure(closeAfter(specs));
  }

  async ensureAll(manifest: BundleManifest): Promise<void> {
    await this.supervisor.ensure(closeAfter(manifest.services.map((s) => this.spec(s))));
  }

  async startEarly(manifest: BundleManifest, names: readonly string[]): Promise<void> {
    // As in ensureStage0: whatever runs keeps the spec it runs with, so nothing else (re)starts.
    const desired = await readDesired(this.files.services).catch(() => undefined);
    const running = await this.supervisor.alive();
    const specs: ServiceSpec[] = (desired?.services ?? []).filter((s) => running.has(s.name) && !names.includes(s.name));
    const wanted = manifest.services.filter((s) => names.includes(s.name));
    if (wanted.every((s) => running.has(s.name))) return;
    specs.push(...wanted.map((s) => this.spec(s)));
    await this.supervisor.ensure(closeAfter(specs));
  }

  async restart(names: readonly string[], manifest: BundleManifest): Promise<void> {
    if (names.length === 0) return;
    await this.supervisor.stop([...names]);
    await this.ensureAll(manifest);
  }

  async reload(service: BundleService): Promise<void> {
    await reloadServiceConfirmed(
      service.argv,
      () => this.supervisor.signal(service.name, service.reloadSignal ?? 'SIGHUP'),
      // The argv names the config where it is: under the host's root already (render --root).
      (conf) => readFile(conf, 'utf8'),
    );
  }

  async stop(names: readonly string[]): Promise<void> {
    if (names.length > 0) await this.supervisor.stop([...names]);
  }

  status(): Promise<ServiceStatus[]> {
    return this.supervisor.status();
  }

  warmUp(): void {
    this.supervisor.warmUp();
  }

  async daemonReload(): Promise<void> {
    // nothing to do: the supervisor has no unit files
  }

  async disableUnits(): Promise<void> {
    // nothing to do: without systemd as PID 1 no distribution unit runs
  }

  async retire(names: readonly string[]): Promise<void> {
    await this.stop(names);
  }
}

/** The bundle's unit files under systemd (PID 1): daemon-reload, enable --now, restart, reload. */
export class SystemdHostServices implements HostServices {
  readonly kind = 'systemd' as const;
  spec(s: BundleService): ServiceSpec {
    return specOf(s);
  }
  private units = new Map<string, string>();
  private readonly systemctl: Systemctl;

  constructor(runner: Runner) {
    this.systemctl = new Systemctl(runner);
  }

  private unitOf(name: string): string {
    return this.units.get(name) ?? unitName(name);
  }

  private show(units: string[]): Promise<Map<string, Record<string, string>>> {
    return this.systemctl.show(units, ['Id', 'ActiveState', 'UnitFileState', 'MainPID', 'NRestarts'], { allowFailure: true });
  }

  async observe(manifest: BundleManifest, previous: readonly { name: string; unit: string }[]): Promise<{ services: Map<string, ObservedService>; unlisted: string[] }> {
    for (const s of [...previous, ...manifest.services]) this.units.set(s.name, s.unit);
    const shown = await this.show(manifest.services.map((s) => s.unit));
    const services = new Map<string, ObservedService>();
    for (const s of manifest.services) {
      const p = shown.get(s.unit);
      const running = p?.ActiveState === 'active' && p.UnitFileState === 'enabled';
      const pid = Number(p?.MainPID ?? 0);
      services.set(s.name, { running, ...(pid > 0 ? { pid } : {}) });
    }
    const listed = new Set(manifest.services.map((s) => s.name));
    const unlisted = previous.filter((p) => !listed.has(p.name)).map((p) => p.name);
    return { services, unlisted };
  }

  private async enableNow(services: readonly BundleService[]): Promise<void> {
    const shown = await this.show(services.map((s) => s.unit));
    const todo = services.filter((s) => {
      const p = shown.get(s.unit);
      return !(p?.ActiveState === 'active' && p.UnitFileState === 'enabled');
    });
    await this.systemctl.enableNow(todo.map((s) => s.unit));
  }

  async ensureStage0(manifest: BundleManifest, unlisted: readonly string[], restart: readonly string[]): Promise<void> {
    await this.systemctl.disableNow(unlisted.map((n) => this.unitOf(n)), { bestEffort: true });
    await this.restart(restart);
    await this.enableNow(manifest.services.filter((s) => s.stage === 0));
  }

  async ensureAll(manifest: BundleManifest, restart: readonly string[]): Promise<void> {
    await this.restart(restart);
    await this.enableNow(manifest.services);
  }

  async startEarly(manifest: BundleManifest, names: readonly string[]): Promise<void> {
    await this.enableNow(manifest.services.filter((s) => names.includes(s.name)));
  }

  async restart(names: readonly string[]): Promise<void> {
    await this.systemctl.restart(names.map((n) => this.unitOf(n)));
  }

  async reload(service: BundleService): Promise<void> {
    const send = async (): Promise<void> => {
      const r = await this.systemctl.reload(service.unit);
      // A unit without ExecReload=: deliver the daemon's reload signal to its main process instead.
      if (r.exitCode !== 0) await this.systemctl.kill(service.unit, service.reloadSignal ?? 'SIGHUP');
    };
    await reloadServiceConfirmed(service.argv, send, (conf) => readFile(conf, 'utf8'));
  }

  async stop(names: readonly string[]): Promise<void> {
    await this.systemctl.stop(names.map((n) => this.unitOf(n)));
  }

  async disableUnits(units: readonly string[]): Promise<void> {
    await this.systemctl.disableNow(units);
  }

  async retire(names: readonly string[]): Promise<void> {
    await this.systemctl.disableNow(names.map((n) => this.unitOf(n)), { bestEffort: true });
  }

  async status(): Promise<ServiceStatus[]> {
    const names = [...this.units.keys()];
    const shown = await this.show(names.map((n) => this.unitOf(n)));
    return names.map((name) => {
      const p = shown.get(this.unitOf(name));
      const pid = Number(p?.MainPID ?? 0);
      const running = p?.ActiveState === 'active' && pid > 0;
      return { name, running, ...(running ? { pid } : {}), restarts: Number(p?.NRestarts ?? 0) };
    });
  }

  warmUp(): void {
    // systemd is up already
  }

  async daemonReload(): Promise<void> {
    await this.systemctl.daemonReload();
  }
}

/** Distro units that are enabled or running (systemd only; read-only). */
export async function activeDistroUnits(runner: Runner): Promise<string[]> {
  const shown = await new Systemctl(runner).show(DISTRIBUTION_UNITS, ['Id', 'ActiveState', 'UnitFileState'], { allowFailure: true });
  return [...shown]
    .filter(([, p]) => p.ActiveState === 'active' || p.ActiveState === 'activating' || p.UnitFileState === 'enabled')
    .map(([id]) => id);
}

