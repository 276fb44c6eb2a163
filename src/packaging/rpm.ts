/**
 * Typed wrappers around rpmbuild and rpm: the rpmbuild command line (pure, so tests can read it),
 * running it with the step's log merged, and `rpm -qp` queries used for the manifest and checks.
 */
import type { RunResult, Runner } from '../runner.js';

/** Builds take long on 2 cores; a hung configure test still ends. */
export const RPMBUILD_TIMEOUT_MS = 2 * 60 * 60_000;
const QUERY_TIMEOUT_MS = 60_000;

export interface RpmbuildInvocation {
  rpmbuild: string;
  spec: string;
  topdir: string;
  defines: Readonly<Record<string, string>>;
  /** Skip BuildRequires checks (Debian's rpm database knows no -devel packages). */
  nodeps: boolean;
  /** `--with NAME` conditionals. */
  with?: readonly string[];
}

/**
 * Macros that make the payload a function of the inputs: build time and mtimes from
 * SOURCE_DATE_EPOCH, a fixed build host, zstd payloads (fast, and what Fedora/EL use).
 */
export const REPRODUCIBLE_DEFINES: Readonly<Record<string, string>> = {
  use_source_date_epoch_as_buildtime: '1',
  clamp_mtime_to_source_date_epoch: '1',
  source_date_epoch_from_changelog: '0',
  _buildhost: 'ovn-deploy.localdomain',
  _binary_payload: 'w3.zstdio',
  // The build system, not the spec, names the packager (Fedora's rule; rpmlint wants the tag).
  packager: 'ovn-deploy',
};

export function rpmbuildArgv(inv: RpmbuildInvocation): string[] {
  const argv = [inv.rpmbuild, '-bb', '--noclean'];
  if (inv.nodeps) argv.push('--nodeps');
  for (const w of inv.with ?? []) argv.push('--with', w);
  argv.push('--define', `_topdir ${inv.topdir}`);
  for (const [k, v] of Object.entries(inv.defines).sort(([a], [b]) => a.localeCompare(b))) argv.push('--define', `${k} ${v}`);
  argv.push(inv.spec);
  return argv;
}

/** Runs a long command with stderr merged into stdout (one log, in order). */
export function runMerged(runner: Runner, argv: readonly string[], opts: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs: number }): Promise<RunResult> {
  return runner.run(['sh', '-c', 'exec "$@" 2>&1', 'sh', ...argv], { ...opts, allowFailure: true, mutates: true });
}

export interface RpmPackageInfo {
  name: string;
  version: string;
  release: string;
  arch: string;
}

export interface RpmFileInfo {
  path: string;
  digest: string;
  mode: string;
  size: number;
  mtime: number;
}

const SEP = '\u001f';

export class RpmQuery {
  constructor(
    private readonly runner: Runner,
    private readonly rpm = 'rpm',
  ) {}

  private q(args: string[]): Promise<RunResult> {
    return this.runner.run([this.rpm, '-qp', '--nosignature', '--nodigest', ...args], { timeoutMs: QUERY_TIMEOUT_MS, mutates: false });
  }

  async info(file: string): Promise<RpmPackageInfo> {
    const r = await this.q(['--qf', `%{NAME}${SEP}%{VERSION}${SEP}%{RELEASE}${SEP}%{ARCH}`, file]);
    const [name = '', version = '', release = '', arch = ''] = r.stdout.split(SEP);
    return { name, version, release, arch };
  }

  /** Every payload entry with its digest (empty for directories and symlinks), mode, size, mtime. */
  async files(file: string): Promise<RpmFileInfo[]> {
    const r = await this.q(['--qf', `[%{FILENAMES}${SEP}%{FILEDIGESTS}${SEP}%{FILEMODES:octal}${SEP}%{FILESIZES}${SEP}%{FILEMTIMES}\n]`, file]);
    return r.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const [p = '', digest = '', mode = '', size = '0', mtime = '0'] = l.split(SEP);
        return { path: p, digest, mode, size: Number(size), mtime: Number(mtime) };
      });
  }

  async requires(file: string): Promise<string[]> {
    const r = await this.q(['-R', file]);
    return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  }

  async raw(args: string[]): Promise<string> {
    return (await this.q(args)).stdout;
  }
}
