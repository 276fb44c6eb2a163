/**
 * The local sandbox (`ovn-deploy up`) as a Deployment: its stunnel server on the central and a
 * stunnel client per worker, found from the sandbox's own plan and state (read only). The
 * sandbox's stunnel configs point straight at the PKI's files, so for it "installing" a renewed
 * certificate is what the PKI already wrote; a real-host deployment copies them instead.
 */
import { promises as fs } from 'node:fs';
import { ExitError } from '../errors.js';
import { readIfExists, writeFileAtomic } from '../fsx.js';
import { sandboxPaths, stunnelFiles } from '../paths.js';
import { ZxRunner, type Runner } from '../runner.js';
import { stunnelTls, wantedCerts } from '../sandbox/certs.js';
import { planInventory } from '../sandbox/inventory.js';
import { canonicalDir } from '../sandbox/naming.js';
import { planSandbox, type SandboxPlan } from '../sandbox/plan.js';
import { serviceName } from '../sandbox/services.js';
import { acquireLock, readState } from '../sandbox/state.js';
import { createSupervisor } from '../supervisor/index.js';
import { reloadStunnel } from '../tools/stunnel.js';
import type { Deployment, DeploymentLock, TlsEndpoint } from './deployment.js';

/** `certs` commands on a directory without a sandbox exit like `status` does. */
export const NO_SANDBOX_EXIT = 3;

export interface SandboxDeployment extends Deployment {
  readonly plan: SandboxPlan;
  /** The TLS ports of the central (and the workers' local plaintext ports): inventory `ports`. */
  readonly ports: { nb: number; sb: number };
}

export function sandboxEndpoints(plan: SandboxPlan, ports: { nb: number; sb: number }): TlsEndpoint[] {
  const sans = new Map(wantedCerts(plan).map((w) => [w.name, w.sans]));
  const nodeFiles = (node: string, kind: 'server' | 'client') => {
    const d = plan.paths.node(node);
    return stunnelFiles(kind, { runDir: d.run, logDir: d.log });
  };
  const tls = (node: string) => {
    const t = stunnelTls(plan, node);
    return { certPath: t.cert, keyPath: t.key, caFile: t.caFile, crlFile: t.crlFile };
  };
  const c = plan.central;
  const central: TlsEndpoint = {
    host: c.name,
    role: 'central',
    certName: c.name,
    sans: sans.get(c.name) ?? [c.name, c.address],
    ...tls(c.name),
    stunnel: {
      serviceName: serviceName.centralStunnel,
      ...pick(nodeFiles(c.name, 'server')),
      side: 'server',
      netns: c.netns,
      listeners: [
        { netns: c.netns, host: c.address, port: ports.nb },
        { netns: c.netns, host: c.address, port: ports.sb },
      ],
    },
  };
  const workers = plan.workers.map(
    (w): TlsEndpoint => ({
      host: w.name,
      role: 'worker',
      certName: w.name,
      sans: sans.get(w.name) ?? [w.name],
      ...tls(w.name),
      stunnel: {
        serviceName: serviceName.workerStunnel(w.name),
        ...pick(nodeFiles(w.name, 'client')),
        side: 'client',
        netns: w.netns,
        listeners: [],
        // The SB is what ovn-controller uses through this tunnel.
        tunnelProbe: { netns: w.netns, remote: `tcp:127.0.0.1:${ports.sb}`, database: 'OVN_Southbound' },
      },
    }),
  );
  return [central, ...workers];
}

function pick(f: { pidFile: string; logFile: string }): { pidFile: string; logFile: string } {
  return { pidFile: f.pidFile, logFile: f.logFile };
}

export async function sandboxDeployment(stateDir: string, runner: Runner = new ZxRunner()): Promise<SandboxDeployment> {
  const dir = canonicalDir(stateDir);
  const paths = sandboxPaths(dir);
  const state = await readState(paths);
  if (state === undefined) throw new ExitError(`no sandbox in ${dir} (run \`ovn-deploy up --dir ${dir}\`)`, NO_SANDBOX_EXIT);
  const plan = planSandbox({ stateDir: dir, workers: Math.max(1, state.workers), datapath: state.datapath });
  const inv = planInventory(plan);
  const endpoints = sandboxEndpoints(plan, inv.ports);
  const supervisor = createSupervisor(plan.stateDir, { runner, prefer: state.supervisor ?? 'auto' });
  // One reload at a time per stunnel: reloadStunnel reads the log from where it was before its
  // own SIGHUP, and two overlapping reloads would read each other's confirmation.
  const reloading = new Map<string, Promise<void>>();
  return {
    description: `sandbox ${plan.id} (${dir})`,
    pkiDir: paths.pki,
    endpoints,
    leafPolicy: { validityDays: inv.certificates.leafValidityDays, keyBits: inv.certificates.leafKeyBits },
    runner,
    hostFilesAreLocal: true,
    selector: ['--dir', dir],
    plan,
    ports: inv.ports,
    read: async (_e, file) => (await readIfExists(file))?.toString('utf8'),
    write: async (_e, file, content, mode) => {
      if (content === undefined) await fs.rm(file, { force: true });
      else await writeFileAtomic(file, content, mode);
    },
    reload: async (e) => {
      const key = e.stunnel.pidFile;
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
