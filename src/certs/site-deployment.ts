/**
 * A site of real hosts (the inventory `deploy` uses) as a Deployment, reached over SSH like
 * `deploy`: the same endpoints as the sandbox (site-endpoints.ts), and every host-side step runs
 * ON the host through the shipped tool, `ovn-deploy certs host ...` (commands/certs-host.ts ->
 * host-files.ts, the very functions the sandbox calls in-process). Keys are made on their hosts
 * and never read: only CSRs come back and only certificates go. Probes (s_client with the host's
 * own certificate, ovsdb-client through its tunnel) run on the host too.
 */
import path from 'node:path';
import { ExitError } from '../errors.js';
import { loadInventory } from '../inventory/index.js';
import type { Host } from '../inventory/types.js';
import { acquireLockFile } from '../lock.js';
import { hostPaths } from '../paths.js';
import type { RunOptions, RunResult, Runner } from '../runner.js';
import { siteTopology } from '../site/topology.js';
import { remote, type Connect, type RemoteHost } from '../deploy/remote.js';
import { sshConnector, type SshSettings } from '../deploy/ssh-connect.js';
import type { Deployment, DeploymentLock, TlsEndpoint } from './deployment.js';
import { ABSENT_EXIT, publicFileOf } from './host-files.js';
import { siteEndpoints } from './site-endpoints.js';
import { serializer } from '../tools/retry.js';

const HOST_CMD_TIMEOUT_MS = 60_000;

export interface SiteSelection {
  inventoryFile: string;
  pkiDir: string;
  ssh: Omit<SshSettings, 'shipTool'>;
}

export interface SiteDeploymentOptions {
  /** Tests: a scripted connector instead of OpenSSH. */
  connect?: Connect;
}

/** The arguments that select the same site again (absolute paths: the renewal timer runs elsewhere). */
export function siteSelector(sel: SiteSelection): string[] {
  return [
    '--inventory',
    path.resolve(sel.inventoryFile),
    '--pki',
    path.resolve(sel.pkiDir),
    '--known-hosts',
    path.resolve(sel.ssh.knownHostsFile),
    ...(sel.ssh.identityFile === undefined ? [] : ['--identity', path.resolve(sel.ssh.identityFile)]),
    '--connect-timeout',
    String(sel.ssh.connectTimeoutSec),
  ];
}

/** A Runner whose commands run on the host (no namespaces there). */
function remoteRunner(r: RemoteHost): Runner {
  return {
    run: (argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> =>
      r.run(argv, {
        ...(opts.input === undefined ? {} : { input: opts.input }),
        ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
        ...(opts.allowFailure === undefined ? {} : { allowFailure: opts.allowFailure }),
      }),
  };
}

export async function siteDeployment(sel: SiteSelection, opts: SiteDeploymentOptions = {}): Promise<Deployment> {
  const { inventory: inv } = await loadInventory(sel.inventoryFile);
  const topo = siteTopology(inv);
  const hp = hostPaths();
  const endpoints = siteEndpoints(inv, topo, () => ({ paths: hp }));
  const connect = opts.connect ?? sshConnector({ ...sel.ssh, shipTool: true });
  const hostsByName = new Map<string, Host>(inv.hosts.map((h) => [h.name, h]));
  const remotes = new Map<string, { remote: RemoteHost; tool: Promise<boolean> | undefined }>();

  const remoteOf = (name: string) => {
    let entry = remotes.get(name);
    if (entry === undefined) {
      const host = hostsByName.get(name);
      if (host === undefined) throw new Error(`no host ${name} in ${sel.inventoryFile}`);
      entry = { remote: connect(host), tool: undefined };
      remotes.set(name, entry);
    }
    return entry;
  };
  /** `ovn-deploy certs host ARGS` on the host, with the tool shipped first when it lacks this version. */
  const hostCmd = async (name: string, args: string[], input?: string, allowAbsent = false): Promise<RunResult> => {
    const entry = remoteOf(name);
    entry.tool ??= entry.remote.ensureTool();
    await entry.tool;
    const r = await entry.remote.run(['node', remote.cli, 'certs', 'host', ...args], {
      allowFailure: true,
      timeoutMs: HOST_CMD_TIMEOUT_MS,
      ...(input === undefined ? {} : { input }),
    });
    if (r.exitCode === 0 || (allowAbsent && r.exitCode === ABSENT_EXIT)) return r;
    const tail = r.stderr.trim().split('\n').slice(-4).join('\n');
    throw new ExitError(`${name}: \`ovn-deploy certs host ${args[0] ?? ''}\` failed (exit ${r.exitCode})${tail === '' ? '' : `: ${tail}`}`, 1);
  };
  const kindArgs = (e: TlsEndpoint, file: string): string[] => {
    const ref = publicFileOf(hp, file);
    if (ref === undefined) throw new Error(`${e.host}: ${file} is not one of its public TLS files`);
    return [ref.kind, ...(ref.backup ? ['--backup'] : [])];
  };
  // One reload at a time per stunnel: the confirmation reads its log from before the signal.
  const reloadTurn = serializer();

  return {
    description: `site ${inv.site} (${sel.inventoryFile})`,
    pkiDir: sel.pkiDir,
    endpoints,
    leafPolicy: { validityDays: inv.certificates.leafValidityDays, keyBits: inv.certificates.leafKeyBits },
    selector: siteSelector(sel),
    runnerFor: (e) => remoteRunner(remoteOf(e.host).remote),
    read: async (e, file) => {
      const r = await hostCmd(e.host, ['read', ...kindArgs(e, file)], undefined, true);
      return r.exitCode === ABSENT_EXIT ? undefined : r.stdout;
    },
    write: async (e, file, content) => {
      await hostCmd(e.host, ['write', ...kindArgs(e, file), ...(content === undefined ? ['--remove'] : [])], content ?? '');
    },
    newKey: async (e, req) => {
      const r = await hostCmd(e.host, ['new-key', '--name', req.name, '--key-bits', String(req.keyBits), ...req.sans.flatMap((s) => ['--san', s])]);
      if (!r.stdout.includes('BEGIN CERTIFICATE REQUEST')) throw new ExitError(`${e.host}: new-key answered without a CSR`, 1);
      return r.stdout;
    },
    installPair: async (e, certPem) => {
      await hostCmd(e.host, ['install-pair'], certPem);
    },
    restorePair: async (e, certPem) => {
      await hostCmd(e.host, ['restore-pair', ...(certPem === undefined ? ['--no-cert'] : [])], certPem ?? '');
    },
    keyMatches: async (e) => (await hostCmd(e.host, ['key-matches'])).stdout.trim() === 'yes',
    bundleTrustChanged: async (e, caBundlePem) => {
      await hostCmd(e.host, ['follow-trust'], caBundlePem);
    },
    reload: async (e) => {
      // Native TLS: the daemons re-read the changed files themselves (verified by the caller).
      if (e.stunnel.native === true) return;
      await reloadTurn(`${e.host}/${e.stunnel.serviceName}`, async () => {
        await hostCmd(e.host, ['reload', e.stunnel.serviceName]);
      });
    },
    lock: async (what): Promise<DeploymentLock> =>
      acquireLockFile(path.join(sel.pkiDir, '.certs.lock'), {
        waitMs: 0,
        busy: (holder) => new ExitError(`another certificate command (pid ${holder ?? '?'}) is working on ${sel.pkiDir}; not starting ${what}`, 1),
      }),
    close: async () => {
      await Promise.all([...remotes.values()].map((x) => x.remote.close().catch(() => undefined)));
      remotes.clear();
    },
  };
}
