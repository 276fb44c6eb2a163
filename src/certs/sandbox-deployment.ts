/**
 * The local sandbox (`ovn-deploy up`) as a Deployment: the stunnel server of its central and the
 * stunnel client of each worker, found from the sandbox's own plan and state (read only). Every
 * sandbox host is a root directory with a real host's layout and its own supervisor, so its
 * stunnel reads the host's files (not the PKI's): a renewed certificate is copied onto the host,
 * like a real-host deployment does, and the host's supervisor delivers the reload.
 *
 * A rotation still issues key and certificate in the PKI and copies both (key 0600): a renewed
 * key then exists in PKI/private too, where the host's first key (made by apply) never was.
 * Keeping every key on its host (a CSR from the host, as apply's own renewal does) is for when
 * these commands serve real hosts. A later `up` keeps the copied pair: apply keeps a certificate
 * that matches the host key, chains to the bundle's CAs and carries the requested names.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { trustPinFile, updatePin } from '../apply/trust.js';
import { MANIFEST_FILE } from '../bundle/manifest.js';
import { pemCertificatesOf, SIGNATURE_FILE, verifyManifestSignature } from '../bundle/signature.js';
import { ExitError } from '../errors.js';
import { readIfExists, writeFileAtomic } from '../fsx.js';
import type { Host } from '../inventory/types.js';
import { sandboxPaths, stunnelFiles } from '../paths.js';
import { certificateSans } from '../render/host-bundle.js';
import { SERVICE } from '../render/services.js';
import { ZxRunner, type Runner } from '../runner.js';
import { canonicalDir } from '../sandbox/naming.js';
import { planSandbox, type SandboxPlan } from '../sandbox/plan.js';
import { sandboxSite, type SandboxHost, type SandboxSite } from '../sandbox/site.js';
import { acquireLock, readState } from '../sandbox/state.js';
import { OwnSupervisor } from '../supervisor/own.js';
import { reloadStunnel } from '../tools/stunnel.js';
import type { Deployment, DeploymentLock, TlsEndpoint } from './deployment.js';

/** `certs` commands on a directory without a sandbox exit like `status` does. */
export const NO_SANDBOX_EXIT = 3;

export interface SandboxDeployment extends Deployment {
  readonly plan: SandboxPlan;
  readonly site: SandboxSite;
  /** The central's TLS ports on its underlay address: inventory `ports`. */
  readonly ports: { nb: number; sb: number };
  /**
   * The central's NB through the operator's tunnel (the only non-central host the NB admits) and
   * its SB through worker1's: unix sockets, so any namespace of this machine reaches them as root.
   */
  readonly remotes: { nb: string; sb: string };
}

function inventoryHost(site: SandboxSite, name: string): Host {
  const h = site.inventory.hosts.find((x) => x.name === name);
  if (h === undefined) throw new Error(`no inventory host ${name}`);
  return h;
}

/** The files of the host's one certificate, as its stunnel loads them. */
function hostTls(h: SandboxHost) {
  const pki = h.paths.pki;
  return { certPath: pki.cert, keyPath: pki.key, caFile: pki.caBundle, crlFile: pki.crl };
}

function stunnelLogs(h: SandboxHost, kind: 'server' | 'client') {
  const f = stunnelFiles(kind, h.paths);
  return { pidFile: f.pidFile, logFile: f.logFile };
}

/** The central's NB and SB as a host of the sandbox reaches them through its own tunnel. */
function tunnelRemote(site: SandboxSite, h: SandboxHost, db: 'nb' | 'sb'): string {
  return `unix:${h.paths.ovsdbSocket(site.central.name, db)}`;
}

export function centralRemotes(site: SandboxSite): { nb: string; sb: string } {
  const w1 = site.workers[0];
  if (w1 === undefined) throw new Error('a sandbox has at least one worker');
  return { nb: tunnelRemote(site, site.operator, 'nb'), sb: tunnelRemote(site, w1, 'sb') };
}

export function sandboxEndpoints(site: SandboxSite): TlsEndpoint[] {
  const { inventory: inv, topology } = site;
  const c = site.central;
  const node = topology.centrals.find((x) => x.host.name === c.name);
  if (node === undefined) throw new Error(`${c.name} is not a central of ${inv.site}`);
  const central: TlsEndpoint = {
    host: c.name,
    role: 'central',
    certName: c.name,
    sans: certificateSans(inventoryHost(site, c.name)),
    ...hostTls(c),
    stunnel: {
      serviceName: SERVICE.stunnelServer,
      ...stunnelLogs(c, 'server'),
      side: 'server',
      netns: c.netns,
      listeners: [
        { netns: c.netns, host: node.address, port: inv.ports.nb },
        { netns: c.netns, host: node.address, port: inv.ports.sb },
      ],
    },
  };
  const client = (w: SandboxHost, role: 'worker' | 'cms', db: 'nb' | 'sb'): TlsEndpoint => ({
    host: w.name,
    role,
    certName: w.name,
    sans: certificateSans(inventoryHost(site, w.name)),
    ...hostTls(w),
    stunnel: {
      serviceName: SERVICE.stunnelClient,
      ...stunnelLogs(w, 'client'),
      side: 'client',
      netns: w.netns,
      listeners: [],
      // A worker's: the SB, what ovn-controller uses through this tunnel (its ovn-remote); the operator's: the NB.
      tunnelProbe: { remote: tunnelRemote(site, w, db), database: db === 'nb' ? 'OVN_Northbound' : 'OVN_Southbound' },
    },
  });
  return [central, client(site.operator, 'cms', 'nb'), ...site.workers.map((w) => client(w, 'worker', 'sb'))];
}

/**
 * The host's bundle trust pin after its stunnel got `caBundlePem`, by apply's own rule (updatePin):
 * the new CA bundle plus the CA that signed the bundle the host holds now. Without the first, the
 * next `up` (bundles signed by the new CA) is refused once a CA rollover is complete; without the
 * second, `status` (apply --check of the bundle on the host) is refused until that `up`.
 */
async function followBundleTrust(h: SandboxHost, caBundlePem: string): Promise<void> {
  const pinned = pemCertificatesOf((await readIfExists(trustPinFile(h.paths)))?.toString('utf8') ?? '');
  const [manifest, sig] = await Promise.all([readIfExists(path.join(h.bundleDir, MANIFEST_FILE)), readIfExists(path.join(h.bundleDir, SIGNATURE_FILE))]);
  const held = manifest === undefined || sig === undefined ? undefined : verifyManifestSignature(manifest, sig.toString('utf8'), pinned);
  // A bundle that does not verify now never will: only the new CA bundle is trusted then.
  if (held?.ok === true) await updatePin(h.paths, held.signer, caBundlePem);
  else await writeFileAtomic(trustPinFile(h.paths), caBundlePem, 0o644);
}

export async function sandboxDeployment(stateDir: string, runner: Runner = new ZxRunner()): Promise<SandboxDeployment> {
  const dir = canonicalDir(stateDir);
  const paths = sandboxPaths(dir);
  const state = await readState(paths);
  if (state === undefined) throw new ExitError(`no sandbox in ${dir} (run \`ovn-deploy up --dir ${dir}\`)`, NO_SANDBOX_EXIT);
  const plan = planSandbox({
    stateDir: dir,
    workers: Math.max(1, state.workers),
    datapath: state.datapath,
    metadataAgent: state.metadataAgent === true,
    ...(state.metadataImage === undefined ? {} : { metadataImage: state.metadataImage }),
  });
  const site = sandboxSite(plan, runner);
  const inv = site.inventory;
  const endpoints = sandboxEndpoints(site);
  const hostOf = (e: TlsEndpoint): SandboxHost => {
    const h = site.hosts.find((x) => x.name === e.host);
    if (h === undefined) throw new Error(`no sandbox host ${e.host}`);
    return h;
  };
  // Each host's stunnel runs under that host's own supervisor, in its namespace.
  const supervisorOf = (h: SandboxHost) => new OwnSupervisor(h.paths.state, { spawnPrefix: ['ip', 'netns', 'exec', h.netns] });
  // One reload at a time per stunnel: reloadStunnel reads the log from where it was before its
  // own SIGHUP, and two overlapping reloads would read each other's confirmation.
  const reloading = new Map<string, Promise<void>>();
  return {
    description: `sandbox ${plan.id} (${dir})`,
    pkiDir: paths.pki,
    endpoints,
    leafPolicy: { validityDays: inv.certificates.leafValidityDays, keyBits: inv.certificates.leafKeyBits },
    runner,
    hostFilesAreLocal: false,
    selector: ['--dir', dir],
    plan,
    site,
    ports: { nb: inv.ports.nb, sb: inv.ports.sb },
    remotes: centralRemotes(site),
    read: async (_e, file) => (await readIfExists(file))?.toString('utf8'),
    write: async (_e, file, content, mode) => {
      if (content === undefined) await fs.rm(file, { force: true });
      else await writeFileAtomic(file, content, mode);
    },
    bundleTrustChanged: async (e, caBundlePem) => followBundleTrust(hostOf(e), caBundlePem),
    reload: async (e) => {
      const key = e.stunnel.pidFile;
      const supervisor = supervisorOf(hostOf(e));
      const previous = reloading.get(key) ?? Promise.resolve();
      const mine = previous.catch(() => undefined).then(() => reloadStunnel(e.stunnel.logFile, () => supervisor.signal(e.stunnel.serviceName, 'SIGHUP')));
      reloading.set(key, mine);
      try {
        await mine;
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new ExitError(`reloading ${e.stunnel.serviceName} (${e.host}): ${why}`);
      } finally {
        if (reloading.get(key) === mine) reloading.delete(key);
      }
    },
    lock: async (what): Promise<DeploymentLock> => acquireLock(paths.lock, what),
  };
}
