/**
 * Typed wrapper around git for sources: resolve a ref on a remote (`ls-remote`), fetch just that
 * commit into a bare cache repository, and read files, the submodule pin and the commit time from
 * it. Never prompts for credentials (GIT_TERMINAL_PROMPT=0).
 */
import { promises as fs } from 'node:fs';
import type { RunResult, Runner } from '../runner.js';

const QUERY_TIMEOUT_MS = 2 * 60_000;
const FETCH_TIMEOUT_MS = 30 * 60_000;
const GIT_ENV = { GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', GIT_CONFIG_NOSYSTEM: '1' };

export interface RemoteRef {
  name: string;
  sha: string;
}

export function parseLsRemote(text: string): RemoteRef[] {
  return text
    .split('\n')
    .map((l) => l.split('\t'))
    .filter((p): p is [string, string] => p.length === 2 && /^[0-9a-f]{40}$/.test(p[0] ?? ''))
    .map(([sha, name]) => ({ sha, name }));
}

export type RefResolution = { kind: 'ref'; name: string; sha: string } | { kind: 'commit'; sha: string } | { kind: 'missing' };

/** Picks what `ref` means on the remote: a tag (peeled), a branch, a full ref name, or a raw commit id. */
export function resolveRef(refs: readonly RemoteRef[], ref: string | undefined): RefResolution {
  const want = ref ?? 'HEAD';
  const by = (name: string) => refs.find((r) => r.name === name);
  const hit = by(`refs/tags/${want}^{}`) ?? by(`refs/tags/${want}`) ?? by(`refs/heads/${want}`) ?? by(want);
  if (hit !== undefined) {
    // A peeled tag (^{}) names the commit; fetch the tag ref itself.
    return { kind: 'ref', name: hit.name.replace(/\^\{\}$/, ''), sha: hit.sha };
  }
  if (/^[0-9a-f]{40}$/.test(want)) return { kind: 'commit', sha: want };
  return { kind: 'missing' };
}

/** A few ref names close to `ref`, for an error message. */
export function suggestRefs(refs: readonly RemoteRef[], ref: string, max = 6): string[] {
  const names = [...new Set(refs.map((r) => r.name.replace(/^refs\/(tags|heads)\//, '').replace(/\^\{\}$/, '')))].filter((n) => n !== 'HEAD' && !n.startsWith('refs/'));
  const stem = ref.slice(0, Math.max(1, Math.min(4, ref.length)));
  const close = names.filter((n) => n.startsWith(stem));
  return (close.length > 0 ? close : names).sort().slice(-max);
}

/** `git fetch` wants a URL; a local path becomes file:// so that --depth is honoured. */
export function fetchUrl(url: string): string {
  return url.startsWith('/') ? `file://${url}` : url;
}

export class Git {
  constructor(
    private readonly runner: Runner,
    readonly gitDir: string,
  ) {}

  private run(args: string[], opts: { timeoutMs?: number; allowFailure?: boolean; mutates?: boolean } = {}): Promise<RunResult> {
    return this.runner.run(['git', `--git-dir=${this.gitDir}`, ...args], {
      env: GIT_ENV,
      timeoutMs: opts.timeoutMs ?? QUERY_TIMEOUT_MS,
      allowFailure: opts.allowFailure ?? false,
      mutates: opts.mutates ?? false,
    });
  }

  async ensureBare(): Promise<void> {
    try {
      await fs.access(`${this.gitDir}/HEAD`);
    } catch {
      await this.runner.run(['git', 'init', '--bare', '-q', this.gitDir], { env: GIT_ENV, timeoutMs: QUERY_TIMEOUT_MS, mutates: true });
    }
  }

  /** Refs of a remote; `error` holds git's message when the remote cannot be read. */
  async lsRemote(url: string): Promise<{ refs: RemoteRef[]; error?: string }> {
    const r = await this.runner.run(['git', 'ls-remote', fetchUrl(url)], { env: GIT_ENV, timeoutMs: QUERY_TIMEOUT_MS, allowFailure: true, mutates: false });
    if (r.exitCode !== 0) return { refs: [], error: lastLines(r.stderr) || `git ls-remote exit ${r.exitCode}` };
    return { refs: parseLsRemote(r.stdout) };
  }

  async hasCommit(sha: string): Promise<boolean> {
    const r = await this.run(['cat-file', '-e', `${sha}^{commit}`], { allowFailure: true });
    return r.exitCode === 0;
  }

  /**
   * Fetches `what` (a ref name or a commit id) from `url`, shallow, and pins the commit under
   * refs/ovn-deploy/ so it survives gc. Returns the commit id, or git's error.
   */
  async fetchCommit(url: string, what: string, expectSha?: string): Promise<{ sha?: string; error?: string }> {
    if (expectSha !== undefined && (await this.hasCommit(expectSha))) return { sha: expectSha };
    let r = await this.run(['fetch', '-q', '--no-tags', '--depth=1', fetchUrl(url), what], { timeoutMs: FETCH_TIMEOUT_MS, allowFailure: true, mutates: true });
    if (r.exitCode !== 0 && /^[0-9a-f]{40}$/.test(what)) {
      // Servers that refuse unadvertised commits: fetch every branch and tag, then look again.
      r = await this.run(['fetch', '-q', fetchUrl(url), '+refs/heads/*:refs/ovn-deploy/heads/*', '+refs/tags/*:refs/ovn-deploy/tags/*'], {
        timeoutMs: FETCH_TIMEOUT_MS,
        allowFailure: true,
        mutates: true,
      });
      if (r.exitCode === 0 && (await this.hasCommit(what))) return this.pin(what);
      return { error: r.exitCode === 0 ? `commit ${what} is not in ${url}` : lastLines(r.stderr) };
    }
    if (r.exitCode !== 0) return { error: lastLines(r.stderr) || `git fetch exit ${r.exitCode}` };
    const head = await this.run(['rev-parse', '--verify', 'FETCH_HEAD^{commit}'], { allowFailure: true });
    if (head.exitCode !== 0) return { error: `${what} in ${url} is not a commit` };
    return this.pin(head.stdout.trim());
  }

  private async pin(sha: string): Promise<{ sha: string }> {
    await this.run(['update-ref', `refs/ovn-deploy/pinned/${sha}`, sha], { mutates: true });
    return { sha };
  }

  /** Committer time (seconds since the epoch): the source's SOURCE_DATE_EPOCH. */
  async commitTime(sha: string): Promise<number> {
    const r = await this.run(['log', '-1', '--format=%ct', sha]);
    return Number.parseInt(r.stdout.trim(), 10);
  }

  /** A file's content at a commit, or undefined when the commit has no such file. */
  async show(sha: string, file: string): Promise<string | undefined> {
    const r = await this.run(['show', `${sha}:${file}`], { allowFailure: true });
    return r.exitCode === 0 ? r.stdout : undefined;
  }

  /** The commit a submodule path is pinned to, or undefined. */
  async submodulePin(sha: string, subpath: string): Promise<string | undefined> {
    const r = await this.run(['ls-tree', sha, subpath], { allowFailure: true });
    const m = /^160000 commit ([0-9a-f]{40})\t/.exec(r.stdout);
    return m?.[1];
  }

  /** Writes the tree of `sha` as a tar with every path under `prefix/`. */
  async archive(sha: string, prefix: string, out: string): Promise<void> {
    await this.run(['archive', '--format=tar', `--prefix=${prefix}/`, '-o', out, sha], { timeoutMs: FETCH_TIMEOUT_MS, mutates: true });
  }
}

/** The url of submodule `subpath` in a .gitmodules file. */
export function submoduleUrl(gitmodules: string, subpath: string): string | undefined {
  let current: string | undefined;
  let url: string | undefined;
  const found: Record<string, string> = {};
  for (const raw of gitmodules.split('\n')) {
    const l = raw.trim();
    if (l.startsWith('[')) {
      if (current !== undefined && url !== undefined) found[current] = url;
      current = undefined;
      url = undefined;
      continue;
    }
    const kv = /^(\w+)\s*=\s*(.*)$/.exec(l);
    if (kv?.[1] === 'path') current = kv[2];
    if (kv?.[1] === 'url') url = kv[2];
  }
  if (current !== undefined && url !== undefined) found[current] = url;
  return found[subpath];
}

function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').slice(-n).join('\n');
}
