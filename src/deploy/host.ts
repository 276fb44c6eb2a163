/**
 * Deploying one host: reachable -> tool -> bundle -> apply -> (sign its CSR here, send the
 * certificate) -> result. Never throws: whatever goes wrong is the host's result, so one host
 * cannot stop or corrupt the others. The same flow for a host over SSH (`deploy`) and for a
 * sandbox host of this machine (`up`): only the HostTransport differs.
 */
import type { BundleManifest } from '../bundle/manifest.js';
import { ExitError } from '../errors.js';
import type { Host } from '../inventory/types.js';
import type { RunResult } from '../runner.js';
import { APPLY_EXIT, parseApplyReport, type ApplyReport } from './apply-report.js';
import { checkCsrMatches } from './csr-check.js';
import { removeShippedImage } from './image-archive.js';
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
  /** The bundle's container image was sent to the host (it lacked that image ID). */
  imageShipped?: boolean;
  durationMs: number;
  /** Why the host failed or is unhealthy. */
  error?: string;
  health: ApplyReport['health'];
}

/** How deployHost reaches one host: SSH (sshTransport) or this machine's namespaces (transport/local.ts). */
export interface HostTransport {
  /** Resolves with undefined when the host answers, else the reason it does not (no throw). */
  unreachableReason(): Promise<string | undefined>;
  /** Ships the ovn-deploy tool unless the host has this version; true when it was copied. */
  ensureTool(): Promise<boolean>;
  /** Places the bundle where apply reads it. */
  pushBundle(bundleDir: string): Promise<void>;
  /** The bundle's container images the host lacks, shipped: the archive's path there (absent: nothing to ship, or no way to). */
  shipImages?(images: readonly string[]): Promise<string | undefined>;
  /** Removes what shipImages sent, once apply has loaded it. */
  removeShipped?(file: string): Promise<void>;
  /** One apply run: its report; bad input or a crash throws, naming the host. */
  apply(opts: { renewCertificate?: boolean; certificatePem?: string; imageArchive?: string }, log: (line: string) => void): Promise<ApplyReport>;
  close(): Promise<void>;
}

export interface HostDeployDeps {
  transport: HostTransport;
  /** Signs a checked CSR with the site CA on this machine; returns the certificate PEM. */
  sign: (csrPem: string, request: BundleManifest['certificate'], host: Host) => Promise<string>;
  log: (line: string) => void;
  /** `deploy --renew-certificates`: every host asks for a certificate for a new key. */
  renewCertificate?: boolean;
}

export const DEFAULT_APPLY_TIMEOUT_MS = 15 * 60_000;

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `apply --json` over SSH with the shipped tool; stdin carries a certificate. */
export function sshTransport(r: RemoteHost, host: Host, applyTimeoutMs = DEFAULT_APPLY_TIMEOUT_MS): HostTransport {
  return {
    unreachableReason: () => r.unreachableReason(),
    ensureTool: () => r.ensureTool(),
    pushBundle: (bundleDir) => r.pushDirectory(bundleDir, remote.bundleDir),
    shipImages: async (images) => {
      // One image per bundle today (the metadata agent's); the manifest allows a short list.
      const shipped: string[] = [];
      for (const ref of images) {
        const file = await r.shipImage?.(ref);
        if (file !== undefined) shipped.push(file);
      }
      if (shipped.length > 1) throw new ExitError(`${host.name}: more than one image to ship in one apply (${images.join(', ')})`, 1);
      return shipped[0];
    },
    removeShipped: (file) => removeShippedImage(r, file),
    close: () => r.close(),
    apply: async (opts, log) => {
      const extra = [
        ...(opts.renewCertificate === true ? ['--renew-certificate'] : []),
        ...(opts.certificatePem === undefined ? [] : ['--certificate', '-']),
        ...(opts.imageArchive === undefined ? [] : ['--image-archive', opts.imageArchive]),
      ];
      const res: RunResult = await r.run(remoteApplyArgv(extra), {
        allowFailure: true,
        timeoutMs: applyTimeoutMs,
        ...(opts.certificatePem === undefined ? {} : { input: opts.certificatePem }),
      });
      for (const line of res.stderr.split('\n').filter((l) => l.trim() !== '').slice(-20)) log(line);
      if (res.exitCode === APPLY_EXIT.badInput || (res.exitCode !== 0 && !res.stdout.includes('{'))) {
        const tail = res.stderr.trim().split('\n').slice(-6).join('\n');
        throw new ExitError(`apply on ${host.name} exited ${res.exitCode}${tail === '' ? '' : `: ${tail}`}`, 1);
      }
      return parseApplyReport(res.stdout, host.name);
    },
  };
}

export async function deployHost(host: Host, phase: string, bundleDir: string, manifest: BundleManifest, deps: HostDeployDeps): Promise<HostResult> {
  const started = Date.now();
  const result: HostResult = { host: host.name, roles: [...host.roles], phase, status: 'failed', changes: [], signed: false, renewed: false, toolShipped: false, durationMs: 0, health: [] };
  const finish = (): HostResult => ({ ...result, durationMs: Date.now() - started });
  let shipped: string | undefined;
  try {
    deps.log('connecting');
    const t = deps.transport;
    const why = await t.unreachableReason();
    if (why !== undefined) {
      result.status = 'unreachable';
      result.error = why;
      return finish();
    }
    deps.log('checking the ovn-deploy tool on the host');
    result.toolShipped = await t.ensureTool();
    if (result.toolShipped) deps.log('shipped the ovn-deploy tool');
    deps.log('pushing the bundle');
    await t.pushBundle(bundleDir);
    if (manifest.images !== undefined && t.shipImages !== undefined) {
      deps.log(`checking the host's copy of ${manifest.images.join(', ')}`);
      shipped = await t.shipImages(manifest.images);
      if (shipped !== undefined) {
        result.imageShipped = true;
        deps.log(`shipped ${manifest.images.join(', ')}`);
      }
    }
    const image = shipped === undefined ? {} : { imageArchive: shipped };
    deps.log('running apply');
    let report = await t.apply({ ...(deps.renewCertificate === true ? { renewCertificate: true } : {}), ...image }, deps.log);
    result.changes.push(...report.changes);
    if (report.status === 'needs-certificate') {
      if (report.csr === undefined) throw new ExitError(`${host.name} needs a certificate but sent no CSR`, 1);
      checkCsrMatches(report.csr, manifest.certificate, host.name);
      deps.log(`signing ${host.name}'s CSR (CN ${manifest.certificate.name}, ${manifest.certificate.sans.length} SANs) with the site CA`);
      const cert = await deps.sign(report.csr, manifest.certificate, host);
      result.signed = true;
      result.renewed = report.changes.some((c) => c.kind === 'certificate' && c.action === 'renewal-requested');
      deps.log('sending the certificate and running apply again');
      report = await t.apply({ certificatePem: cert, ...image }, deps.log);
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
    if (shipped !== undefined) await deps.transport.removeShipped?.(shipped).catch(() => undefined);
    await deps.transport.close().catch(() => undefined);
  }
  return finish();
}
