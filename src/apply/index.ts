/**
 * `ovn-deploy apply` on the host: lock -> verify the bundle -> observe -> plan -> execute ->
 * health -> applied.json -> report. Library code: returns the report and exit code, prints
 * nothing itself (progress goes to `log`).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE } from '../bundle/manifest.js';
import { readIfExists } from '../fsx.js';
import { InputError, inputError } from '../errors.js';
import { hostPaths } from '../paths.js';
import { DryRunRunner, ZxRunner, type Runner } from '../runner.js';
import { systemdIsInit } from '../supervisor/index.js';
import { serviceHash } from '../supervisor/spec.js';
import { readBundle, type VerifiedBundle } from './bundle.js';
import { certCommonName, certSans, checkGivenCertificate, pemCertificates, pemMatchesKey, signCommand } from './certificate.js';
import { executePlan } from './execute.js';
import { healthChecks, type TcpProbe } from './probe-health.js';
import type { HealthCheck } from '../bundle/manifest.js';
import { observeHost, rootedAt, type HostContext } from './observe.js';
import { changesOf, describeStep as describe, planApply, type ApplyStep } from './plan.js';
import { APPLY_EXIT, exitCodeFor, type ApplyReport, type ApplyStatus, type Change } from './report.js';
import { OwnHostServices, SystemdHostServices, type HostServices } from './services.js';
import { acquireApplyLock, readApplied, writeApplied } from './state.js';
import { hostTrust, updatePin } from './trust.js';

export type { ApplyReport, Change, HealthResult, ApplyStatus } from './report.js';
export { APPLY_EXIT, exitCodeFor } from './report.js';
export { planApply, type ApplyStep, type Observed } from './plan.js';
export { readBundle, type VerifiedBundle } from './bundle.js';

export const DEFAULT_HEALTH_TIMEOUT_MS = 60_000;
export const DEFAULT_CHECK_TIMEOUT_MS = 5_000;

export interface ApplyOptions {
  bundleDir: string;
  /** The host's root: prefix of every host path; the bundle must be rendered for it (default '/'). */
  root?: string;
  dryRun?: boolean;
  /** `--trust-ca FILE`: the CA a fresh host pins (see trust.ts); ignored once the host pins one that includes it. */
  trustCa?: { pem: string; from: string };
  /** A signed certificate to install (`--certificate FILE|-`): its PEM and where it came from. */
  certificate?: { pem: string; from: string };
  /**
   * `--renew-certificate`: ask for a certificate for a new key now, even outside the renewal
   * window (an operator rotating the site's tunnel certificates on purpose).
   */
  renewCertificate?: boolean;
  /** Only run the health checks. */
  check?: boolean;
  supervisor?: 'auto' | 'own' | 'systemd';
  skipPackages?: boolean;
  /** Load the bundle's nftables file (`nft -f`) when its table is missing or the file changed. */
  loadFirewall?: boolean;
  /** `--image-archive FILE`: a `podman save` archive named `<image id>.tar` (deploy ships it) for the bundle's images. */
  imageArchive?: string;
  healthTimeoutMs?: number;
  runner?: Runner;
  /** Overrides the service manager (tests). */
  services?: HostServices;
  /** Progress lines (stderr in the CLI); dry-run plan lines. */
  log?: (line: string) => void;
  /** How long to wait for another apply's lock. */
  lockWaitMs?: number;
  /**
   * Answers the `tcp-listen` checks where this process cannot connect itself: a host in another
   * network namespace (the local transport). Default: connect from this process.
   */
  tcpProbe?: TcpProbe;
}

export interface ApplyOutcome {
  report: ApplyReport;
  exitCode: number;
  plan: ApplyStep[];
  /** Why apply stopped early (also in report.health as the failed check `apply`). */
  error?: string;
}

export function chooseServices(kind: 'auto' | 'own' | 'systemd', root: string, runner: Runner): HostServices {
  const useSystemd = kind === 'systemd' || (kind === 'auto' && root === '/' && systemdIsInit());
  return useSystemd ? new SystemdHostServices(runner) : new OwnHostServices(hostPaths(root));
}

const IMAGE_ARCHIVE = /^([0-9a-f]{64})\.tar$/;

/** `--image-archive`: named by its image ID, a regular file (not a symlink), for a bundle that runs images. */
async function checkImageArchive(file: string, images: readonly string[] | undefined): Promise<{ file: string; id: string }> {
  const id = IMAGE_ARCHIVE.exec(path.basename(file))?.[1];
  if (id === undefined) throw inputError(`expected a file named <image id (64 hex digits)>.tar, got ${JSON.stringify(path.basename(file))}`, '--image-archive', file);
  if (images === undefined || images.length === 0) throw inputError('the bundle runs no container image', '--image-archive', file);
  const st = await fs.lstat(file).catch(() => undefined);
  if (st === undefined || !st.isFile()) throw inputError(st === undefined ? 'no such file' : 'expected a regular file (not a symlink)', '--image-archive', file);
  return { file: path.resolve(file), id };
}

export async function runApply(opts: ApplyOptions): Promise<ApplyOutcome> {
  const root = opts.root ?? '/';
  const paths = hostPaths(root);
  const log = opts.log ?? (() => undefined);
  const real = opts.runner ?? new ZxRunner();
  const runner = opts.dryRun === true ? new DryRunRunner(real, log) : real;
  const services = opts.services ?? chooseServices(opts.supervisor ?? 'auto', root, runner);
  const at = rootedAt(root);
  // Before anything else, even the lock file: a bundle that is not signed by a trusted CA, or asks
  // for more than a bundle may, changes nothing on the host.
  const trust = await hostTrust(paths, opts.trustCa);
  const bundle = await readBundle(opts.bundleDir, trust.certs);
  const m = bundle.manifest;
  checkRoot(bundle, root);
  const imageArchive = opts.imageArchive === undefined ? undefined : await checkImageArchive(opts.imageArchive, m.images);
  // A dry run and --check change nothing, not even the lock file.
  const lock = opts.dryRun === true || opts.check === true ? undefined : await acquireApplyLock(paths.applyLock, opts.lockWaitMs);
  try {
    if (lock !== undefined) await updatePin(paths, bundle.signer, bundle.contents.get(m.certificate.caBundle)?.toString('utf8') ?? '');
    const healthCtx = { runner, services, at };
    const runHealthChecks = (checks: readonly HealthCheck[], deadlineMs: number, intervalMs?: number, progress?: (line: string) => void) =>
      healthChecks(healthCtx, checks, deadlineMs, intervalMs, progress, opts.tcpProbe);
    if (opts.check === true) {
      await services.observe(m, (await readApplied(paths.applied).catch(() => undefined))?.services ?? []);
      const [health, daemons] = await Promise.all([runHealthChecks(m.health, opts.healthTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS), services.status()]);
      const status: ApplyStatus = health.every((h) => h.ok) ? 'converged' : 'unhealthy';
      return { report: { host: m.host, status, dryRun: false, changes: [], health, services: daemons }, exitCode: exitCodeFor(status), plan: [] };
    }
    const givenCertificate = opts.certificate === undefined ? undefined : await checkCertificateInput(bundle, at, paths.pki.keyNext, opts.certificate);
    const ctx: HostContext = {
      root,
      paths,
      runner,
      services,
      at,
      skipPackages: opts.skipPackages === true,
      loadFirewall: opts.loadFirewall === true || m.firewallRequired === true,
      ...(givenCertificate === undefined ? {} : { givenCertificate: givenCertificate.pem, givenForPendingKey: givenCertificate.forPendingKey }),
      renewCertificate: opts.renewCertificate === true,
    };
    if (imageArchive !== undefined) ctx.imageArchive = imageArchive;
    const observed = await observeHost(ctx, bundle);
    const plan = planApply(m, observed, (s) => serviceHash(services.spec(s)));
    const needsCertificate = plan.some((s) => s.kind === 'needs-certificate' || s.kind === 'renewal-requested');

    if (opts.dryRun === true) {
      for (const step of plan) log(`plan: ${describe(step)}`);
      const status: ApplyStatus = needsCertificate ? 'needs-certificate' : 'converged';
      const report: ApplyReport = {
        host: m.host,
        status,
        dryRun: true,
        changes: plan.flatMap((s) => changesOf(s, m)),
        ...(needsCertificate ? { signCommand: signCommand(m.certificate) } : {}),
        health: [],
      };
      return { report, exitCode: exitCodeFor(status), plan };
    }

    const done: Change[] = [];
    let result: Awaited<ReturnType<typeof executePlan>>;
    try {
      result = await executePlan(ctx, bundle, observed, plan, (line) => log(line), done);
    } catch (err) {
      // Bad input stays exit 2; any other failure is still a report (status unhealthy, exit 1)
      // so `deploy` learns what changed before it and why it stopped.
      if (err instanceof InputError || !(err instanceof Error)) throw err;
      log(`apply failed: ${err.message}`);
      const report: ApplyReport = { host: m.host, status: 'unhealthy', dryRun: false, changes: done, health: [{ check: 'apply', ok: false, detail: err.message }] };
      return { report, exitCode: APPLY_EXIT.unhealthy, plan, error: err.message };
    }
    // The CSR (public) and the exact command that signs it: what `deploy` or the operator needs next.
    const owedCertificate = async (health: ApplyReport['health']): Promise<ApplyOutcome> => {
      const csr = (await readIfExists(at(m.certificate.csr)))?.toString('utf8');
      const report: ApplyReport = {
        host: m.host,
        status: 'needs-certificate',
        dryRun: false,
        changes: result.changes,
        ...(csr === undefined ? {} : { csr }),
        signCommand: signCommand(m.certificate),
        health,
      };
      return { report, exitCode: exitCodeFor('needs-certificate'), plan };
    };
    if (result.needsCertificate) return owedCertificate([]);
    log('health checks');
    const health = await runHealthChecks(m.health, opts.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS, 500, log);
    log(`health: ${health.filter((h) => h.ok).length}/${health.length} ok`);
    await writeApplied(paths.applied, {
      version: 1,
      host: m.host,
      manifestSha256: bundle.manifestSha256,
      appliedAt: new Date().toISOString(),
      services: m.services.map((s) => ({ name: s.name, unit: s.unit })),
      initialized: result.initialized,
    });
    // Everything else converged and the current certificate still serves; the new one is owed.
    if (result.renewalRequested) return owedCertificate(health);
    const status: ApplyStatus = health.every((h) => h.ok) ? 'converged' : 'unhealthy';
    return { report: { host: m.host, status, dryRun: false, changes: result.changes, health }, exitCode: exitCodeFor(status), plan };
  } finally {
    await lock?.release();
  }
}


/**
 * A bundle rendered for a root names it in every daemon's argv, config and unit: under another
 * root its daemons would use another host's files. One that records no root was rendered for '/'.
 */
function checkRoot(bundle: VerifiedBundle, root: string): void {
  const recorded = bundle.manifest.root ?? '/';
  if (path.resolve(recorded) === path.resolve(root)) return;
  throw new InputError([
    {
      file: path.join(bundle.dir, MANIFEST_FILE),
      path: 'root',
      message: `the bundle was rendered for root ${recorded} but apply runs with --root ${root}: render it with that root, or apply it with --root ${recorded}`,
    },
  ]);
}

/**
 * `--certificate`: ours (for the current key, or for a renewal's pending key), signed by the
 * bundle's CA, and naming what the bundle asks for; else exit 2.
 */
async function checkCertificateInput(
  bundle: VerifiedBundle,
  at: (p: string) => string,
  pendingKeyFile: string,
  given: { pem: string; from: string },
): Promise<{ pem: string; forPendingKey: boolean }> {
  const req = bundle.manifest.certificate;
  const currentKey = (await readIfExists(at(req.key)))?.toString('utf8');
  const pendingKey = (await readIfExists(pendingKeyFile))?.toString('utf8');
  const forPendingKey = pemMatchesKey(given.pem, pendingKey);
  const keyPem = forPendingKey ? pendingKey : currentKey;
  const caPem = bundle.contents.get(req.caBundle)?.toString('utf8') ?? (await readIfExists(at(req.caBundle)))?.toString('utf8') ?? '';
  checkGivenCertificate(given.pem, given.from, keyPem, caPem);
  const cert = pemCertificates(given.pem)[0];
  if (cert !== undefined) {
    const cn = certCommonName(cert);
    const sans = certSans(cert).sort();
    const want = [...new Set(req.sans.map((s) => s.toLowerCase()))].sort();
    if (cn !== req.name || sans.length !== want.length || sans.some((s, i) => s !== want[i])) {
      throw inputError(`the certificate names CN=${cn ?? '?'} SAN=[${sans.join(', ')}] but the bundle asks for CN=${req.name} SAN=[${want.join(', ')}]`, '', given.from);
    }
  }
  return { pem: given.pem, forPendingKey };
}
