/**
 * The local transport: a host that is a network namespace of this machine plus a root directory
 * (`render` with that root, `apply --root` with it). apply runs in this process; every command it
 * runs and the own supervisor it starts (so every daemon) run inside the namespace. No SSH, no
 * CLI subprocess.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runApply, type ApplyOptions } from '../apply/index.js';
import type { HostTransport } from '../deploy/host.js';
import { OwnHostServices } from '../apply/services.js';
import { hostPaths } from '../paths.js';
import { OwnSupervisor } from '../supervisor/own.js';
import type { StatusHost } from '../site-status/collect.js';
import { ZxRunner, type RunOptions, type RunResult, type Runner } from '../runner.js';

export interface LocalHostSpec {
  /** An existing network namespace (`ip netns add`): the host's network. */
  netns: string;
  /** The host's root directory: absolute; its bundle must be rendered with this root. */
  root: string;
  /** Runs the commands (inside the namespace); default the real one. */
  runner?: Runner;
  /** Forwarded to the own supervisor (tests point at a built CLI, a shorter wait). */
  supervisor?: { cliPath?: string; ensureTimeoutMs?: number };
  /** Its stunnels keep their listeners open across reloads (OwnHostServices: only where accept lines never change). */
  socketActivation?: boolean;
}

export interface LocalHost {
  readonly netns: string;
  readonly root: string;
  /** Every command inside the host's namespace. */
  readonly runner: Runner;
  readonly services: OwnHostServices;
  /** What runApply needs to act on this host: spread into its options. */
  applyOptions(): Pick<ApplyOptions, 'root' | 'runner' | 'services' | 'tcpProbe'>;
  /** Status's view of this host: apply --check in this process, its commands inside the namespace. */
  statusHost(): StatusHost;
  /** Stops the host's supervisor and with it every daemon (nothing else of the host goes). */
  stop(): Promise<void>;
  /**
   * deployHost's view of this host: apply in this process on the bundle where it was rendered
   * (already on the host: nothing to push, no tool to ship).
   */
  transport(opts: LocalApplyOptions): HostTransport;
}

export interface LocalApplyOptions {
  /** The CA a fresh host pins (apply --trust-ca). */
  trustCa: { pem: string; from: string };
  healthTimeoutMs?: number;
  /** Packages are the machine's: check them once for all hosts, not per host. */
  skipPackages?: boolean;
}

const NETNS = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A Runner whose commands run in `netns`; a command that names its own namespace keeps it. */
export function netnsRunner(netns: string, inner: Runner = new ZxRunner()): Runner {
  return { run: (argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> => inner.run(argv, { ...opts, netns: opts.netns ?? netns }) };
}

/**
 * Something accepts TCP connections at address:port inside the namespace. In-process sockets
 * would connect from this process's namespace, not the host's: bash's /dev/tcp connects there.
 */
export function netnsTcpProbe(runner: Runner) {
  return async (address: string, port: number): Promise<{ ok: boolean; detail: string }> => {
    const r = await runner.run(['bash', '-c', 'exec 3<>"/dev/tcp/$0/$1"', address, String(port)], { mutates: false, allowFailure: true, timeoutMs: 3_000 });
    return r.exitCode === 0 ? { ok: true, detail: 'accepts connections' } : { ok: false, detail: r.stderr.trim().split('\n').pop() ?? `exit ${r.exitCode}` };
  };
}

export function localHost(spec: LocalHostSpec): LocalHost {
  if (!NETNS.test(spec.netns)) throw new Error(`not a network namespace name: ${JSON.stringify(spec.netns)}`);
  if (!path.isAbsolute(spec.root)) throw new Error(`a local host's root must be absolute: ${JSON.stringify(spec.root)}`);
  const root = path.resolve(spec.root);
  const runner = netnsRunner(spec.netns, spec.runner);
  const hp = hostPaths(root);
  const supervisorOpts = { ...spec.supervisor, spawnPrefix: ['ip', 'netns', 'exec', spec.netns] };
  const services = new OwnHostServices(hp, { ...supervisorOpts, ...(spec.socketActivation === true ? { socketActivation: true } : {}) });
  const tcpProbe = netnsTcpProbe(runner);
  const unreachableReason = async () => (existsSync(path.join('/run/netns', spec.netns)) ? undefined : `network namespace ${spec.netns} does not exist`);
  return {
    netns: spec.netns,
    root,
    runner,
    services,
    applyOptions: () => ({ root, runner, services, tcpProbe }),
    statusHost: () => ({
      unreachableReason,
      check: async () => {
        try {
          return (await runApply({ bundleDir: hp.bundle, check: true, healthTimeoutMs: 0, root, runner, services, tcpProbe })).report;
        } catch (err) {
          return { error: err instanceof Error ? err.message : String(err) };
        }
      },
      run: (argv, timeoutMs) => runner.run(argv, { allowFailure: true, mutates: false, timeoutMs }),
      paths: hp,
      close: async () => undefined,
    }),
    stop: () => new OwnSupervisor(hp.state, supervisorOpts).stop(),
    transport: (opts) => {
      let bundleDir: string | undefined;
      return {
        unreachableReason,
        ensureTool: async () => false,
        pushBundle: async (dir) => {
          bundleDir = dir;
        },
        apply: async (o, log) => {
          if (bundleDir === undefined) throw new Error('apply before pushBundle');
          const out = await runApply({
            bundleDir,
            trustCa: opts.trustCa,
            skipPackages: opts.skipPackages ?? true,
            ...(opts.healthTimeoutMs === undefined ? {} : { healthTimeoutMs: opts.healthTimeoutMs }),
            ...(o.renewCertificate === true ? { renewCertificate: true } : {}),
            ...(o.certificatePem === undefined ? {} : { certificate: { pem: o.certificatePem, from: 'the site CA' } }),
            log,
            root,
            runner,
            services,
            tcpProbe,
          });
          return out.report;
        },
        close: async () => undefined,
      };
    },
  };
}
