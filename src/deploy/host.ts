/**
 * Deploying one host: reachable -> tool -> bundle -> apply -> (sign its CSR here, send the
 * certificate) -> result. Never throws: whatever goes wrong is the host's result, so one host
 * cannot stop or corrupt the others.
 */
import type { BundleManifest } from '../bundle/manifest.js';
import { ExitError } from '../errors.js';
import type { Host } from '../inventory/types.js';
import type { RunResult } from '../runner.js';
import { APPLY_EXIT, parseApplyReport, type ApplyReport } from './apply-report.js';
import { checkCsrMatches } from './csr-check.js';
import { remote, remoteApplyArgv, type RemoteHost } from './remote.js';

export type HostOutcome = 'converged' | 'unhealthy' | 'needs-certificate' | 'unreachable' | 'failed';

export interface HostResult {
  host: string;
  roles: string[];
  phase: string;
  status: HostOutcome;
  changes: ApplyReport['changes'];
  /** A certificate was signed for the host's CSR during this deploy. */
  signed: boolean;
  /** That certificate replaced one still valid (renewal window or --renew-certificates): a new key and serial. */
  renewed: boolean;
  toolShipped: boolean;
  durationMs: number;
  /** Why the host failed or is unhealthy. */
  error?: string;
  health: ApplyReport['health'];
}

export interface HostDeployDeps {
  remote: RemoteHost;
  /** Signs a checked CSR with the site CA on this machine; returns the certificate PEM. */
  sign: (csrPem: string, request: BundleManifest['certificate'], host: Host) => Promise<string>;
  log: (line: string) => void;
  /** `deploy --renew-certificates`: every host asks for a certificate for a new key. */
  renewCertificate?: boolean;
  /** apply can install packages: minutes on a fresh host. */
  applyTimeoutMs?: number;
}

export const DEFAULT_APPLY_TIMEOUT_MS = 15 * 60_000;

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The report of one apply run; a non-report exit (bad input, crash) becomes an error naming the host. */
async function runApply(deps: HostDeployDeps, host: Host, extra: string[], input?: string): Promise<{ report: ApplyReport; exitCode: number }> {
  const r: RunResult = await deps.remote.run(remoteApplyArgv(extra), {
    allowFailure: true,
    timeoutMs: deps.applyTimeoutMs ?? DEFAULT_APPLY_TIMEOUT_MS,
    ...(input === undefined ? {} : { input }),
  });
  for (const line of r.stderr.split('\n').filter((l) => l.trim() !== '').slice(-20)) deps.log(line);
  if (r.exitCode === APPLY_EXIT.badInput || (r.exitCode !== 0 && !r.stdout.includes('{'))) {
    const tail = r.stderr.trim().split('\n').slice(-6).join('\n');
    throw new ExitError(`apply on ${host.name} exited ${r.exitCode}${tail === '' ? '' : `: ${tail}`}`, 1);
  }
  return { report: parseApplyReport(r.stdout, host.name), exitCode: r.exitCode };
}

export async function deployHost(host: Host, phase: string, bundleDir: string, manifest: BundleManifest, deps: HostDeployDeps): Promise<HostResult> {
  const started = Date.now();
  const result: HostResult = { host: host.name, roles: [...host.roles], phase, status: 'failed', changes: [], signed: false, renewed: false, toolShipped: false, durationMs: 0, health: [] };
  const finish = (): HostResult => ({ ...result, durationMs: Date.now() - started });
  try {
    deps.log('connecting');
    const why = await deps.remote.unreachableReason();
    if (why !== undefined) {
      result.status = 'unreachable';
      result.error = why;
      return finish();
    }
    deps.log('checking the ovn-deploy tool on the host');
    result.toolShipped = await deps.remote.ensureTool();
    if (result.toolShipped) deps.log('shipped the ovn-deploy tool');
    deps.log(`pushing the bundle to ${remote.bundleDir}`);
    await deps.remote.pushDirectory(bundleDir, remote.bundleDir);
    deps.log('running apply');
    let { report } = await runApply(deps, host, deps.renewCertificate === true ? ['--renew-certificate'] : []);
    result.changes.push(...report.changes);
    if (report.status === 'needs-certificate') {
      if (report.csr === undefined) throw new ExitError(`${host.name} needs a certificate but sent no CSR`, 1);
      checkCsrMatches(report.csr, manifest.certificate, host.name);
      deps.log(`signing ${host.name}'s CSR (CN ${manifest.certificate.name}, ${manifest.certificate.sans.length} SANs) with the site CA`);
      const cert = await deps.sign(report.csr, manifest.certificate, host);
      result.signed = true;
      result.renewed = report.changes.some((c) => c.kind === 'certificate' && c.action === 'renewal-requested');
      deps.log('sending the certificate and running apply again');
      ({ report } = await runApply(deps, host, ['--certificate', '-'], cert));
      result.changes.push(...report.changes);
    }
    result.health = report.health;
    result.status = report.status;
    if (report.status === 'unhealthy') {
      const failed = report.health.filter((h) => !h.ok).map((h) => `${h.check}: ${h.detail}`);
      result.error = failed.length > 0 ? failed.join('; ') : 'apply reported unhealthy';
    } else if (report.status === 'needs-certificate') {
      result.error = 'still asks for a certificate after one was sent';
    }
  } catch (err) {
    result.status = 'failed';
    result.error = describe(err);
  } finally {
    await deps.remote.close().catch(() => undefined);
  }
  return finish();
}
