/**
 * System packages the sandbox needs: detect what is missing (by the programs and files it
 * uses, no package manager call on the fast path) and install it with apt-get (Debian/Ubuntu)
 * or dnf (Fedora/EL) through the Runner. Not root, or a package the repositories do not have,
 * ends in an ExitError that names the packages and the command to run.
 */
import { accessSync, constants, existsSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { ExitError } from './errors.js';
import { writeFileAtomic } from './fsx.js';
import type { Runner } from './runner.js';

export type PackageFamily = 'debian' | 'fedora';

export interface Requirement {
  /** Programs (any one of them suffices) or an absolute file path. */
  binaries?: string[];
  file?: string;
  packages: Record<PackageFamily, string>;
  why: string;
}

/** What `up` runs. Debian names first; Fedora/EL package the same programs as below. */
export const SANDBOX_REQUIREMENTS: readonly Requirement[] = [
  { binaries: ['ovn-northd'], packages: { debian: 'ovn-central', fedora: 'ovn-central' }, why: 'the central' },
  { file: '/usr/share/ovn/ovn-nb.ovsschema', packages: { debian: 'ovn-central', fedora: 'ovn-central' }, why: 'NB/SB schemas' },
  { binaries: ['ovn-nbctl'], packages: { debian: 'ovn-central', fedora: 'ovn' }, why: 'ovn-nbctl, ovn-sbctl, ovn-trace' },
  { binaries: ['ovn-controller'], packages: { debian: 'ovn-host', fedora: 'ovn-host' }, why: 'the workers' },
  { binaries: ['ovs-vswitchd'], packages: { debian: 'openvswitch-switch', fedora: 'openvswitch' }, why: 'the workers' },
  { binaries: ['ovsdb-server'], packages: { debian: 'openvswitch-switch', fedora: 'openvswitch' }, why: 'the databases' },
  { file: '/usr/share/openvswitch/vswitch.ovsschema', packages: { debian: 'openvswitch-switch', fedora: 'openvswitch' }, why: 'the Open_vSwitch schema' },
  { binaries: ['stunnel4', 'stunnel'], packages: { debian: 'stunnel4', fedora: 'stunnel' }, why: 'TLS to the NB/SB' },
  { binaries: ['ip'], packages: { debian: 'iproute2', fedora: 'iproute' }, why: 'namespaces and the underlay' },
  { binaries: ['ping'], packages: { debian: 'iputils-ping', fedora: 'iputils' }, why: 'the end-to-end check' },
  { binaries: ['ethtool'], packages: { debian: 'ethtool', fedora: 'ethtool' }, why: 'checksum offload on the underlay' },
];

/** What `up --metadata-agent` runs on top: Neutron's agent, the haproxy it spawns, sudo (its root helper). */
export const METADATA_REQUIREMENTS: readonly Requirement[] = [
  { binaries: ['neutron-ovn-metadata-agent'], packages: { debian: 'neutron-ovn-metadata-agent', fedora: 'openstack-neutron-ovn-metadata-agent' }, why: 'the metadata agent' },
  { binaries: ['haproxy'], packages: { debian: 'haproxy', fedora: 'haproxy' }, why: 'the metadata proxy in ovnmeta namespaces' },
  { binaries: ['sudo'], packages: { debian: 'sudo', fedora: 'sudo' }, why: "the metadata agent's root helper" },
  { binaries: ['iptables-save'], packages: { debian: 'iptables', fedora: 'iptables' }, why: 'the metadata agent sets checksum rules in each ovnmeta namespace' },
];

export function sandboxRequirements(metadataAgent: boolean): readonly Requirement[] {
  return metadataAgent ? [...SANDBOX_REQUIREMENTS, ...METADATA_REQUIREMENTS] : SANDBOX_REQUIREMENTS;
}

/** Also searched when PATH lacks them (a non-root shell often has no sbin in PATH). */
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export interface Probe {
  exists(file: string): boolean;
  executable(file: string): boolean;
  pathDirs: string[];
}

export function realProbe(env: NodeJS.ProcessEnv = process.env): Probe {
  const pathDirs = [...(env.PATH ?? '').split(path.delimiter).filter((d) => d !== ''), ...SBIN_DIRS];
  return {
    exists: (f) => existsSync(f),
    executable: (f) => {
      try {
        accessSync(f, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    },
    pathDirs,
  };
}

/** Requirements not met on this machine (pure apart from the probe). */
export function missingRequirements(reqs: readonly Requirement[], probe: Probe): Requirement[] {
  return reqs.filter((r) => {
    if (r.file !== undefined && !probe.exists(r.file)) return true;
    if (r.binaries !== undefined) return !r.binaries.some((b) => probe.pathDirs.some((d) => probe.executable(path.join(d, b))));
    return false;
  });
}

export function packagesFor(reqs: readonly Requirement[], family: PackageFamily): string[] {
  return [...new Set(reqs.map((r) => r.packages[family]))];
}

/** From /etc/os-release ID and ID_LIKE; undefined for a family we cannot install on. */
export function packageFamily(osRelease: string | undefined): PackageFamily | undefined {
  if (osRelease === undefined) return undefined;
  const field = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(osRelease)?.[1]?.replace(/^"|"$/g, '').toLowerCase() ?? '';
  const ids = `${field('ID')} ${field('ID_LIKE')}`.split(/\s+/);
  if (ids.some((i) => ['debian', 'ubuntu'].includes(i))) return 'debian';
  if (ids.some((i) => ['fedora', 'rhel', 'centos', 'rocky', 'almalinux'].includes(i))) return 'fedora';
  return undefined;
}

export function installCommand(family: PackageFamily, packages: readonly string[]): string[] {
  return family === 'debian'
    ? ['apt-get', '-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '-q', '--no-install-recommends', ...packages]
    : ['dnf', 'install', '-y', ...packages];
}

/** Package names the package manager said it cannot find, from its output. */
export function unavailablePackages(output: string): string[] {
  const found = new Set<string>();
  for (const re of [/Unable to locate package (\S+)/g, /Package '?([^'\s]+)'? has no installation candidate/g, /No match for argument: (\S+)/g]) {
    for (const m of output.matchAll(re)) if (m[1] !== undefined) found.add(m[1]);
  }
  return [...found];
}

export interface EnsurePackagesOptions {
  probe?: Probe;
  family?: PackageFamily;
  isRoot?: boolean;
  /** Progress lines (e.g. the listr task's output). */
  say?: (line: string) => void;
  /** Do not write policy-rc.d (dry run): only the runner is asked. */
  dryRun?: boolean;
  /** Where the no-service-start guard goes; default /usr/sbin/policy-rc.d (tests use a temp path). */
  policyRcPath?: string;
  requirements?: readonly Requirement[];
}

export interface PackagesOutcome {
  missing: string[];
  installed: string[];
}

const POLICY_RC_D = '/usr/sbin/policy-rc.d';
const INSTALL_TIMEOUT_MS = 30 * 60_000;

export async function ensurePackages(runner: Runner, opts: EnsurePackagesOptions = {}): Promise<PackagesOutcome> {
  const reqs = opts.requirements ?? SANDBOX_REQUIREMENTS;
  const probe = opts.probe ?? realProbe();
  const missing = missingRequirements(reqs, probe);
  if (missing.length === 0) return { missing: [], installed: [] };
  const family = opts.family ?? packageFamily(readOsRelease());
  const what = missing.map((r) => (r.binaries?.[0] ?? r.file ?? '?')).join(', ');
  if (family === undefined) {
    throw new ExitError(
      `missing ${what}, and this system is neither Debian/Ubuntu nor Fedora/EL: install OVN (central and host), Open vSwitch, stunnel, iproute2, ping and ethtool by hand`,
    );
  }
  const packages = packagesFor(missing, family);
  const isRoot = opts.isRoot ?? process.getuid?.() === 0;
  if (!isRoot) {
    throw new ExitError(`missing system packages ${packages.join(' ')} (for ${what}); install them as root:\n  sudo ${installCommand(family, packages).join(' ')}\nor run ovn-deploy up as root`);
  }
  opts.say?.(`installing ${packages.join(' ')}`);
  if (family === 'debian') await aptInstall(runner, packages, opts);
  else await dnfInstall(runner, packages);
  if (opts.dryRun !== true) {
    const still = missingRequirements(reqs, probe);
    if (still.length > 0) {
      throw new ExitError(`installed ${packages.join(' ')} but still missing ${still.map((r) => r.binaries?.[0] ?? r.file).join(', ')}`);
    }
  }
  return { missing: packages, installed: packages };
}

async function aptInstall(runner: Runner, packages: string[], opts: EnsurePackagesOptions): Promise<void> {
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  // Keep the packages' postinst from starting the distribution's own OVS/OVN services: the
  // sandbox starts what it needs, and a stray system ovsdb-server is not ours to manage.
  const policy = opts.policyRcPath ?? POLICY_RC_D;
  const guard = opts.dryRun !== true && !existsSync(policy);
  if (guard) await writeFileAtomic(policy, '#!/bin/sh\n# ovn-deploy: installing packages, no service starts\nexit 101\n', 0o755);
  try {
    let r = await runner.run(installCommand('debian', packages), { env, timeoutMs: INSTALL_TIMEOUT_MS, allowFailure: true, mutates: true });
    if (r.exitCode !== 0 && unavailablePackages(r.stdout + r.stderr).length > 0) {
      // Stale or never-fetched package lists (fresh containers): update once and retry.
      await runner.run(['apt-get', '-o', 'DPkg::Lock::Timeout=600', 'update', '-q'], { env, timeoutMs: INSTALL_TIMEOUT_MS, allowFailure: true, mutates: true });
      r = await runner.run(installCommand('debian', packages), { env, timeoutMs: INSTALL_TIMEOUT_MS, allowFailure: true, mutates: true });
    }
    if (r.exitCode !== 0) throw installError('apt-get', packages, r.stdout + r.stderr);
  } finally {
    if (guard) await fsp.rm(policy, { force: true });
  }
}

async function dnfInstall(runner: Runner, packages: string[]): Promise<void> {
  const r = await runner.run(installCommand('fedora', packages), { timeoutMs: INSTALL_TIMEOUT_MS, allowFailure: true, mutates: true });
  if (r.exitCode !== 0) throw installError('dnf', packages, r.stdout + r.stderr);
}

function installError(tool: string, packages: string[], output: string): ExitError {
  const gone = unavailablePackages(output);
  if (gone.length > 0) {
    return new ExitError(`${tool} cannot find ${gone.join(', ')} in the configured repositories (needed: ${packages.join(' ')}); enable a repository that has them`);
  }
  const tail = output.trim().split('\n').slice(-8).join('\n');
  return new ExitError(`${tool} failed to install ${packages.join(' ')}:\n${tail}`);
}

function readOsRelease(): string | undefined {
  for (const f of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      // try the next
    }
  }
  return undefined;
}
