/**
 * Checks that the programs a build drives are installed before anything starts, and says how to
 * install what is missing (Debian/Ubuntu and Fedora/EL package names, or scripts/install-deps.sh).
 */
import { readFileSync } from 'node:fs';
import { ExitError } from '../errors.js';
import { missingRequirements, packageFamily, realProbe, type Probe, type Requirement } from '../packages.js';

/** Exit code for "a required program is not installed" (sysexits' EX_UNAVAILABLE). */
export const EXIT_MISSING_TOOL = 69;

const req = (binary: string, debian: string, fedora: string, why: string): Requirement => ({ binaries: [binary], packages: { debian, fedora }, why });

export const BUILD_TOOLS = {
  rpmbuild: req('rpmbuild', 'rpm', 'rpm-build', 'building RPMs'),
  rpm: req('rpm', 'rpm', 'rpm', 'reading RPMs'),
  tar: req('tar', 'tar', 'tar', 'unpacking and packing sources'),
  make: req('make', 'make', 'make', 'compiling'),
  gcc: req('gcc', 'gcc', 'gcc', 'compiling'),
  git: req('git', 'git', 'git', 'git sources'),
  autoreconf: req('autoreconf', 'autoconf', 'autoconf', 'generating configure (./boot.sh) for git and unbootstrapped sources'),
  automake: req('automake', 'automake', 'automake', 'generating configure (./boot.sh)'),
  libtoolize: req('libtoolize', 'libtool', 'libtool', 'generating configure (./boot.sh)'),
  ccache: req('ccache', 'ccache', 'ccache', 'fast rebuilds'),
  podman: req('podman', 'podman', 'podman', 'building container images'),
  mmdebstrap: req('mmdebstrap', 'mmdebstrap', 'mmdebstrap', 'building a local base image'),
  gpg: req('gpg', 'gnupg', 'gnupg2', 'signing packages and repository metadata'),
  gpgconf: req('gpgconf', 'gnupg', 'gnupg2', "stopping the signing key's private gpg-agent"),
  // Debian ships rpmsign in its rpm package.
  rpmsign: req('rpmsign', 'rpm', 'rpm-sign', 'signing RPMs'),
  createrepo_c: req('createrepo_c', 'createrepo-c', 'createrepo_c', 'writing the dnf repository metadata'),
} as const satisfies Record<string, Requirement>;

export type BuildTool = keyof typeof BUILD_TOOLS;

function osFamily(): ReturnType<typeof packageFamily> {
  try {
    return packageFamily(readFileSync('/etc/os-release', 'utf8'));
  } catch {
    return undefined;
  }
}

/** The message for missing tools; pure apart from nothing (family given). */
export function missingToolsMessage(missing: readonly Requirement[], family: ReturnType<typeof packageFamily>): string {
  const lines = missing.map((r) => `  ${r.binaries?.[0] ?? '?'} (for ${r.why})`);
  const deb = [...new Set(missing.map((r) => r.packages.debian))].join(' ');
  const rpm = [...new Set(missing.map((r) => r.packages.fedora))].join(' ');
  const how =
    family === 'debian'
      ? `install with: apt-get install ${deb}`
      : family === 'fedora'
        ? `install with: dnf install ${rpm}`
        : `install with: apt-get install ${deb} (Debian/Ubuntu) or dnf install ${rpm} (Fedora/EL)`;
  return `not installed:\n${lines.join('\n')}\n${how}\n(or run scripts/install-deps.sh build as root)`;
}

/** Throws an ExitError (EXIT_MISSING_TOOL) listing every missing tool and how to install it. */
export function requireTools(tools: readonly BuildTool[], probe: Probe = realProbe()): void {
  const missing = missingRequirements(
    tools.map((t) => BUILD_TOOLS[t]),
    probe,
  );
  if (missing.length > 0) throw new ExitError(missingToolsMessage(missing, osFamily()), EXIT_MISSING_TOOL);
}

/** Whether a tool is installed (for optional ones such as ccache). */
export function hasTool(tool: BuildTool, probe: Probe = realProbe()): boolean {
  return missingRequirements([BUILD_TOOLS[tool]], probe).length === 0;
}

/** Absolute path of a program in PATH, or undefined. */
export function whichTool(binary: string, probe: Probe = realProbe()): string | undefined {
  for (const d of probe.pathDirs) {
    const p = `${d}/${binary}`;
    if (probe.executable(p)) return p;
  }
  return undefined;
}

/** Debian/Ubuntu's rpm database knows no system packages: BuildRequires cannot be checked there. */
export function defaultNodeps(): boolean {
  return osFamily() !== 'fedora';
}
