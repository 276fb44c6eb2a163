/**
 * The local sandbox (`ovn-deploy up`) as a Deployment: the same endpoints as any site
 * (site-endpoints.ts), found from the sandbox's own plan and state (read only). Every sandbox host
 * is a root directory with a real host's layout and its own supervisor, so its stunnel reads the
 * host's files (not the PKI's); the host-side steps (a new key and CSR, putting it in place, the
 * public files) are host-files.ts, called in-process on the host's root, exactly what a real host
 * runs through `ovn-deploy certs host` over SSH. The key never passes through the PKI directory.
 */
import { ExitError } from '../errors.js';
import { existingSandbox } from '../sandbox/existing.js';
import { ZxRunner, type Runner } from '../runner.js';
import type { SandboxPlan } from '../sandbox/plan.js';
import type { SandboxHost, SandboxSite } from '../sandbox/site.js';
import { acquireLock } from '../sandbox/state.js';
import { OwnSupervisor } from '../supervisor/own.js';
import { reloadStunnel } from '../tools/stunnel.js';
import type { Deployment, DeploymentLock, TlsEndpoint } from './deployment.js';
import { followBundleTrust, installPendingPair, keyMatchesOnHost, pendingKeyCsr, publicFileOf, readPublicFile, restorePreviousPair, writePublicFile } from './host-files.js';
import { siteEndpoints } from './site-endpoints.js';
import { serializer } from '../tools/retry.js';

export { NO_SANDBOX_EXIT } from '../sandbox/existing.js';

export interface SandboxDeployment extends Deployment {
  /** This machine's runner (tests run their own probes with it). */
  readonly runner: Runner;
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
  return siteEndpoints(site.inventory, site.topology, (host) => {
    const h = site.hosts.find((x) => x.name === host.name);
    if (h === undefined) throw new Error(`no sandbox host ${host.name}`);
    return { paths: h.paths, netns: h.netns };
  });
}

export async function sandboxDeployment(stateDir: string, runner: Runner = new ZxRunner()): Promise<SandboxDeployment> {
  const { dir, paths, plan, site } = await existingSandbox(stateDir, runner);
  const inv = site.inventory;
  const endpoints = sandboxEndpoints(site);
  const hostOf = (e: TlsEndpoint): SandboxHost => {
    const h = site.hosts.find((x) => x.name === e.host);
    if (h === undefined) throw new Error(`no sandbox host ${e.host}`);
    return h;
  };
  // Only the host's public TLS files, named by kind: nothing else of a host is read or written here.
  const publicRef = (e: TlsEndpoint, file: string) => {
    const ref = publicFileOf(hostOf(e).paths, file);
    if (ref === undefined) throw new Error(`${e.host}: ${file} is not one of its public TLS files`);
    return ref;
  };
  // Each host's stunnel runs under that host's own supervisor, in its namespace.
  const supervisorOf = (h: SandboxHost) => new OwnSupervisor(h.paths.state, { spawnPrefix: ['ip', 'netns', 'exec', h.netns] });
  // One reload at a time per stunnel: reloadStunnel reads the log from where it was before its
  // own SIGHUP, and two overlapping reloads would read each other's confirmation.
  const reloadTurn = serializer();
  return {
    description: `sandbox ${plan.id} (${dir})`,
    pkiDir: paths.pki,
    endpoints,
    leafPolicy: { validityDays: inv.certificates.leafValidityDays, keyBits: inv.certificates.leafKeyBits },
    selector: ['--dir', dir],
    // Every probe runs on this machine: listeners and client identities carry their namespace.
    runnerFor: () => runner,
    runner,
    plan,
    site,
    ports: { nb: inv.ports.nb, sb: inv.ports.sb },
    remotes: centralRemotes(site),
    read: async (e, file) => readPublicFile(hostOf(e).paths, publicRef(e, file)),
    write: async (e, file, content) => writePublicFile(hostOf(e).paths, publicRef(e, file), content),
    newKey: async (e, req) => pendingKeyCsr(hostOf(e).paths, req),
    installPair: async (e, certPem) => installPendingPair(hostOf(e).paths, certPem),
    restorePair: async (e, certPem) => restorePreviousPair(hostOf(e).paths, certPem),
    keyMatches: async (e) => keyMatchesOnHost(hostOf(e).paths),
    bundleTrustChanged: async (e, caBundlePem) => followBundleTrust(hostOf(e).paths, caBundlePem),
    reload: async (e) => {
      if (e.stunnel.native === true) return;
      const supervisor = supervisorOf(hostOf(e));
      try {
        await reloadTurn(e.stunnel.pidFile, () => reloadStunnel(e.stunnel.logFile, () => supervisor.signal(e.stunnel.serviceName, 'SIGHUP')));
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new ExitError(`reloading ${e.stunnel.serviceName} (${e.host}): ${why}`);
      }
    },
    lock: async (what): Promise<DeploymentLock> => acquireLock(paths.lock, what),
  };
}
