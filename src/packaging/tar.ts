/**
 * Typed wrapper around GNU tar: list a tarball (names, types, mtimes), read one member, extract,
 * and create tarballs deterministically (sorted names, numeric root ownership, clamped mtimes).
 */
import type { RunResult, Runner } from '../runner.js';

const TAR_TIMEOUT_MS = 10 * 60_000;
// Fixed locale and zone: the listing's dates are parsed.
const TAR_ENV = { LC_ALL: 'C', TZ: 'UTC' };

export interface TarMember {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  mtimeSec: number;
}

/** Parses `tar -tv --full-time` output (TZ=UTC). */
export function parseTarListing(text: string): TarMember[] {
  const out: TarMember[] = [];
  const line = /^(\S)\S*\s+\S+\s+\d+(?:,\s*\d+)?\s+(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d+)? +(.*)$/;
  for (const l of text.split('\n')) {
    const m = line.exec(l);
    if (m === null) continue;
    const [, t, y, mo, d, h, mi, s, rest] = m as unknown as string[];
    const type = t === '-' ? 'file' : t === 'd' ? 'dir' : t === 'l' ? 'symlink' : t === 'h' ? 'hardlink' : 'other';
    const name = (rest ?? '').replace(type === 'symlink' ? / -> .*$/ : type === 'hardlink' ? / link to .*$/ : /$^/, '');
    out.push({ name, type, mtimeSec: Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +s!) / 1000 });
  }
  return out;
}

/** The single top-level folder every member lives in, or undefined when there is none. */
export function tarTopDir(members: readonly TarMember[]): string | undefined {
  let top: string | undefined;
  for (const m of members) {
    const first = m.name.replace(/^\.\//, '').split('/')[0];
    if (first === undefined || first === '') continue;
    if (top === undefined) top = first;
    else if (top !== first) return undefined;
  }
  return top;
}

export class Tar {
  constructor(private readonly runner: Runner) {}

  private run(args: string[], opts: { cwd?: string; input?: string; allowFailure?: boolean } = {}): Promise<RunResult> {
    return this.runner.run(['tar', ...args], { env: TAR_ENV, timeoutMs: TAR_TIMEOUT_MS, mutates: false, ...opts });
  }

  /** Members of a tarball (any compression tar detects); a non-tarball gives exitCode != 0. */
  async list(file: string): Promise<{ members: TarMember[]; error?: string }> {
    const r = await this.run(['-tvf', file, '--full-time'], { allowFailure: true });
    if (r.exitCode !== 0) return { members: [], error: r.stderr.trim().split('\n')[0] ?? `tar exit ${r.exitCode}` };
    return { members: parseTarListing(r.stdout) };
  }

  /** One member's content, or undefined when it is not in the tarball. */
  async readMember(file: string, member: string): Promise<string | undefined> {
    const r = await this.run(['-xOf', file, member], { allowFailure: true });
    return r.exitCode === 0 ? r.stdout : undefined;
  }

  async extract(file: string, dest: string, members: readonly string[] = []): Promise<void> {
    await this.runner.run(['tar', '-xf', file, '-C', dest, '--no-same-owner', ...members], {
      env: TAR_ENV,
      timeoutMs: TAR_TIMEOUT_MS,
      mutates: true,
    });
  }

  /**
   * A reproducible tar of `members` (paths relative to `cwd`): same files give the same bytes.
   * mtimes newer than `clampMtime` are clamped to it (older ones kept: make relies on them).
   */
  async createDeterministic(out: string, cwd: string, members: readonly string[], clampMtime: number): Promise<void> {
    await this.runner.run(
      [
        'tar',
        '--create',
        '--file',
        out,
        '--format=gnu',
        '--sort=name',
        '--owner=0',
        '--group=0',
        '--numeric-owner',
        `--mtime=@${clampMtime}`,
        '--clamp-mtime',
        '--no-recursion',
        '--null',
        '--files-from=-',
      ],
      { cwd, env: TAR_ENV, timeoutMs: TAR_TIMEOUT_MS, mutates: true, input: members.map((m) => `${m}\0`).join('') },
    );
  }
}
