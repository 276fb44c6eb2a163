/**
 * `up`'s hosts: every sandbox host's bundle from the real renderer, written into the host's own
 * bundle directory, then converged by deployHost, the flow `deploy` runs over SSH, through the
 * local transport (apply in this process; daemons in the host's namespace). Hosts converge in
 * parallel: a worker's health checks wait for the central like they do on a real site.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { siteSigner, bundleSigner, readSitePki } from '../deploy/site-pki.js';
import { deployHost, type HostResult } from '../deploy/host.js';
import { ExitError } from '../errors.js';
import { applyFiles, writeFileAtomic } from '../fsx.js';
import { pkiPaths } from '../paths.js';
import { renderHostBundle } from '../render/index.js';
import type { MetadataAgentRuntime } from '../render/metadata-runtime.js';
import type { SandboxHost, SandboxSite } from './site.js';

/** A fresh cluster, the first certificate round trip and the first chassis registration all fit in this. */
const HEALTH_TIMEOUT_MS = 60_000;

export interface HostsOutcome {
  results: HostResult[];
  /** Hosts whose CSR was signed in this run; the others kept their certificate. */
  issued: string[];
  reused: string[];
}

export interface ConvergeOptions {
  pkiDir: string;
  metadataSecret?: string;
  /** How a host runs its metadata agent (the sandbox's own interpreter, or a container per worker). */
  metadataRuntime?: (host: string) => MetadataAgentRuntime | undefined;
  /** One progress line of one host. */
  log: (host: string, line: string) => void;
}

/** Renders one host's bundle into its bundle directory; only changed files are rewritten. */
async function writeBundle(site: SandboxSite, host: SandboxHost, opts: ConvergeOptions, pki: Awaited<ReturnType<typeof readSitePki>>['pki'], signer: Awaited<ReturnType<typeof bundleSigner>>) {
  const runtime = opts.metadataRuntime?.(host.name);
  const bundle = renderHostBundle(site.inventory, host.name, pki, {
    signer,
    root: host.root,
    ...(opts.metadataSecret === undefined ? {} : { metadataSecret: opts.metadataSecret }),
    ...(runtime === undefined ? {} : { metadataRuntime: runtime }),
  });
  await fs.mkdir(host.bundleDir, { recursive: true, mode: 0o700 });
  await applyFiles(host.bundleDir, bundle.files);
  await removeStale(host.bundleDir, new Set(bundle.files.keys()));
  return bundle.manifest;
}

/**
 * `up --dry-run`: what each host would run, from the same renderer (with a placeholder CA: a dry
 * run makes none), one line per daemon as its host's supervisor would start it.
 */
export function describeHosts(site: SandboxSite, opts: Pick<ConvergeOptions, 'metadataRuntime'> = {}): string[] {
  const pki = { caBundlePem: '-----BEGIN CERTIFICATE-----\n(dry run)\n-----END CERTIFICATE-----\n', crlPem: '-----BEGIN X509 CRL-----\n(dry run)\n-----END X509 CRL-----\n' };
  // A dry run reads no secret: a placeholder the agent's renderer accepts (it lands in no file).
  const metadataSecret = site.inventory.hosts.some((h) => h.roles.includes('metadata-agent')) ? { metadataSecret: 'dry-run-placeholder-secret' } : {};
  return site.hosts.flatMap((host) => {
    const runtime = opts.metadataRuntime?.(host.name);
    const { manifest } = renderHostBundle(site.inventory, host.name, pki, { root: host.root, ...metadataSecret, ...(runtime === undefined ? {} : { metadataRuntime: runtime }) });
    return [
      `would render ${manifest.files.length} files of ${host.name}'s bundle into ${host.bundleDir} and apply it (root ${host.root})`,
      ...manifest.services.map((s) => `would start ${host.name}-${s.name}: ip netns exec ${host.netns} ${s.argv.join(' ')}`),
    ];
  });
}

/**
 * Files of an earlier render this one no longer has (a role the host lost): apply refuses a
 * bundle holding files its manifest does not list.
 */
async function removeStale(dir: string, keep: ReadonlySet<string>): Promise<void> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  const stale = entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).filter((rel) => !keep.has(rel));
  await Promise.all(stale.map((rel) => fs.rm(path.join(dir, rel), { force: true })));
}

export async function convergeHosts(site: SandboxSite, opts: ConvergeOptions): Promise<HostsOutcome> {
  const { pki } = await readSitePki(opts.pkiDir);
  const signer = await bundleSigner(opts.pkiDir);
  const trustCa = { pem: await fs.readFile(pkiPaths(opts.pkiDir).caCert, 'utf8'), from: pkiPaths(opts.pkiDir).caCert };
  const sign = siteSigner(opts.pkiDir, site.inventory.certificates.leafValidityDays);
  const results = await Promise.all(
    site.hosts.map(async (host) => {
      const manifest = await writeBundle(site, host, opts, pki, signer);
      const inv = site.inventory.hosts.find((h) => h.name === host.name);
      if (inv === undefined) throw new Error(`no inventory host ${host.name}`);
      const result = await deployHost(inv, 'sandbox', host.bundleDir, manifest, {
        transport: host.local.transport({ trustCa, healthTimeoutMs: HEALTH_TIMEOUT_MS }),
        sign,
        log: (line) => opts.log(host.name, line),
      });
      await fs.mkdir(path.dirname(host.reportFile), { recursive: true });
      await writeFileAtomic(host.reportFile, `${JSON.stringify(result, null, 2)}\n`, 0o644);
      return result;
    }),
  );
  const failed = results.filter((r) => r.status !== 'converged');
  if (failed.length > 0) {
    throw new ExitError(failed.map((r) => `${r.host}: ${r.status}${r.error === undefined ? '' : `: ${r.error}`} (report: ${site.hosts.find((h) => h.name === r.host)?.reportFile ?? ''})`).join('\n'));
  }
  return {
    results,
    issued: results.filter((r) => r.signed).map((r) => r.host).sort(),
    reused: results.filter((r) => !r.signed).map((r) => r.host).sort(),
  };
}
