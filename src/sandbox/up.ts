/**
 * `ovn-deploy up`: converge a local sandbox (1 central + N workers in network namespaces) to the
 * plan, then prove it works (ports up, ping across router and tunnel, ovn-trace path).
 * Every step is idempotent, so the same code creates a sandbox, re-asserts a healthy one, and
 * repairs one after a daemon or an earlier `up` was killed.
 */
import { ExitError } from '../errors.js';
import { DEFAULT_PORTS } from '../inventory/defaults.js';
import type { TlsMode } from '../inventory/types.js';
import { ensurePackages } from '../packages.js';
import { hostPaths } from '../paths.js';
import { DryRunRunner, ZxRunner } from '../runner.js';
import { dagRunner } from '../ui/dag.js';
import { detectDatapath } from './datapath.js';
import { planInventory } from './inventory.js';
import { planSandbox } from './plan.js';
import { sandboxSite } from './site.js';
import { readState } from './state.js';
import { formatTracePath } from './trace.js';
import type { UpContext, UpOptions, UpResult } from './up-context.js';
import { upSteps } from './up-steps.js';

export type { UpOptions, UpResult } from './up-context.js';

export async function up(opts: UpOptions): Promise<UpResult> {
  const started = Date.now();
  const real = opts.runner ?? new ZxRunner();
  const runner = opts.dryRun ? new DryRunRunner(real, opts.print) : real;
  const planOnly = planSandbox({ stateDir: opts.stateDir, workers: opts.workers, datapath: 'netdev' });
  const previous = await readState(planOnly.paths);
  const datapath = opts.datapath === 'auto' ? (previous?.datapath ?? detectDatapath()) : opts.datapath;
  // --metadata-image implies the agents; without either flag the sandbox keeps what it had.
  const metadataAgent = opts.metadataAgent ?? (opts.metadataImage !== undefined && opts.metadataImage !== '' ? true : (previous?.metadataAgent ?? false));
  const metadataImage = opts.metadataImage ?? previous?.metadataImage ?? '';
  const had: TlsMode = previous?.tls ?? 'stunnel';
  const tls = opts.tls ?? had;
  if (previous !== undefined && previous.namespaces.length > 0 && tls !== had) {
    throw new ExitError(`up --tls ${tls}: the sandbox in ${opts.stateDir} runs ${had} TLS, and a RAFT cluster keeps the addresses it was created with; \`ovn-deploy down --dir ${opts.stateDir}\` first`, 2);
  }
  if (tls === 'native' && metadataAgent && metadataImage !== '') {
    throw new ExitError(`up --tls native --metadata-image: with native TLS the metadata agents run as processes (a container would need the host's private key mounted); leave out --metadata-image (or give '')`, 2);
  }
  const plan = planSandbox({ stateDir: opts.stateDir, workers: opts.workers, datapath, metadataAgent, tls, ...(metadataImage === '' ? {} : { metadataImage }) });
  if (opts.supervisor === 'systemd') {
    throw new ExitError('up --supervisor systemd: the sandbox\'s hosts run under ovn-deploy\'s own supervisor, one per host namespace; systemd units are what `apply` installs on real hosts', 2);
  }
  const inv = planInventory(plan);
  const site = sandboxSite(plan, real);
  const ctx: UpContext = {
    opts,
    dryRun: opts.dryRun,
    runner,
    plan,
    inv,
    site,
    state: previous ?? {
      version: 1,
      id: plan.id,
      stateDir: plan.stateDir,
      createdDirs: [],
      namespaces: [],
      workers: opts.workers,
      vms: [],
      datapath,
      ...(tls === 'native' ? { tls } : {}),
      phase: 'starting',
      updatedAt: '',
    },
    namespacesBefore: [],
    workersBefore: previous?.workers ?? 0,
    pings: [],
    traces: [],
  };
  const dag = dagRunner(upSteps(opts), ctx, opts.progress);
  try {
    await dag.run();
  } catch (err) {
    // Nothing is rolled back: every step is idempotent, so what was made stays for inspection
    // and the next `up` continues from it.
    if (err instanceof ExitError && !opts.dryRun) {
      throw new ExitError(`${err.message}\n(the sandbox is left as it is: \`ovn-deploy status --dir ${plan.stateDir}\` to inspect, \`up\` again to repair, \`down\` to remove it)`, err.exitCode);
    }
    throw err;
  } finally {
    await ctx.lock?.release();
  }
  return {
    plan,
    durationMs: Date.now() - started,
    supervisor: 'own',
    ...(ctx.pki === undefined ? {} : { pki: ctx.pki }),
    ...(ctx.hosts === undefined ? {} : { hosts: ctx.hosts }),
    pings: ctx.pings,
    traces: ctx.traces,
    timings: dag.timings,
  };
}

/** The summary `up` prints after the progress list. */
export function upSummary(r: UpResult): string[] {
  const lines = r.traces.map((t) => `ovn-trace ${t.from} -> ${t.to}: ${formatTracePath(t.path)}`);
  const workers = r.plan.workers.length;
  lines.push(
    `sandbox ${r.plan.id} up in ${(r.durationMs / 1000).toFixed(1)} s: central + ${workers} worker${workers === 1 ? '' : 's'} ` +
      `(${r.plan.datapath === 'netdev' ? 'userspace' : 'kernel'} datapath, ${r.supervisor} supervisor), state in ${r.plan.stateDir}`,
  );
  lines.push(`  status: ovn-deploy status --dir ${r.plan.stateDir}    stop: ovn-deploy down --dir ${r.plan.stateDir}`);
  // The operator's host is the NB client of this site (role cms): its tunnel is a root-only socket.
  const operator = hostPaths(r.plan.paths.hostRoot(r.plan.operator.name));
  if (r.plan.tls === 'native') {
    const pki = operator.pki;
    lines.push(`  NB as the operator (native TLS, cms certificate): ip netns exec ${r.plan.operator.netns} ovn-nbctl --db=ssl:${r.plan.central.address}:${DEFAULT_PORTS.nb} -p ${pki.key} -c ${pki.cert} -C ${pki.caBundle} show`);
  } else {
    lines.push(`  NB as the operator (TLS, cms certificate): ovn-nbctl --db=unix:${operator.ovsdbSocket(r.plan.central.name, 'nb')} show`);
  }
  const m = r.plan.metadata;
  if (m !== undefined) {
    lines.push(
      `  metadata agents on ${m.agents.length} worker${m.agents.length === 1 ? '' : 's'} (${m.runtime.kind === 'container' ? `containers of ${m.runtime.image}` : 'supervised processes'}); ` +
        `demo VM: ip netns exec ${m.vm.netns} curl ${m.url} (answered by a Nova metadata API at ${m.nova.host}:${m.nova.port} in ${m.vm.worker}'s namespace)`,
    );
  }
  return lines;
}

/** One line per step: when it could start and when it ended (`up --timings`). */
export function timingLines(r: UpResult): string[] {
  return r.timings.map((t) => `  ${String(t.startMs).padStart(5)} -> ${String(t.endMs).padStart(5)} ms  ${t.id}`);
}

/**
 * Before anything is touched: not root is an error, and when packages are missing too the
 * error says which (with the install command), since that is the first thing to fix.
 */
export async function assertRoot(dryRun: boolean, installPackages = true): Promise<void> {
  if (dryRun || process.getuid?.() === 0) return;
  if (installPackages) await ensurePackages(new ZxRunner(), { isRoot: false });
  throw new ExitError('ovn-deploy up needs root (network namespaces, interfaces, daemons); run it with sudo, or use --dry-run to see the plan', 1);
}
