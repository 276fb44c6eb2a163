/**
 * Typed wrappers around `ip` (iproute2) for network namespaces, links and addresses. Every call
 * goes through the Runner with a timeout; mutations are marked so `--dry-run` only prints them.
 * Queries use iproute2's JSON output (`-j`) rather than scraping text.
 */
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { DryRunRunner, type RunResult, type Runner } from '../runner.js';

const IP_TIMEOUT_MS = 10_000;

export interface LinkInfo {
  ifname: string;
  mtu?: number;
  operstate?: string;
  flags: string[];
  address?: string;
  /** Bridge or bond the link is enslaved to. */
  master?: string;
}

export interface AddrInfo {
  ifname: string;
  addresses: string[];
}

/** `ip` in one namespace (or the current one when `netns` is undefined). */
export class Ip {
  constructor(
    private readonly runner: Runner,
    readonly netns?: string,
  ) {}

  in(netns: string | undefined): Ip {
    return new Ip(this.runner, netns);
  }

  private run(args: string[], mutates: boolean, allowFailure = false): Promise<RunResult> {
    // `ip -n NS` is cheaper than `ip netns exec NS ip` (no mount namespace juggling).
    const argv = this.netns === undefined ? ['ip', ...args] : ['ip', '-n', this.netns, ...args];
    return this.runner.run(argv, { timeoutMs: IP_TIMEOUT_MS, mutates, allowFailure });
  }

  /** Namespace names on this machine (`ip netns list`). */
  async listNetns(): Promise<string[]> {
    const r = await this.runner.run(['ip', '-j', 'netns', 'list'], { timeoutMs: IP_TIMEOUT_MS, mutates: false });
    return parseNetnsList(r.stdout);
  }

  /** Creates a namespace unless it exists; brings its loopback up either way. */
  async ensureNetns(name: string, existing?: readonly string[]): Promise<boolean> {
    const have = existing ?? (await this.listNetns());
    let created = false;
    if (!have.includes(name)) {
      const r = await this.runner.run(['ip', 'netns', 'add', name], { timeoutMs: IP_TIMEOUT_MS, mutates: true, allowFailure: true });
      // A concurrent `up` (or a retry) may have created it between list and add.
      if (r.exitCode !== 0 && !/File exists/.test(r.stderr)) {
        await this.runner.run(['ip', 'netns', 'add', name], { timeoutMs: IP_TIMEOUT_MS, mutates: true });
      }
      created = r.exitCode === 0;
    }
    await this.in(name).setLink('lo', { up: true });
    return created;
  }

  async deleteNetns(name: string): Promise<void> {
    const r = await this.runner.run(['ip', 'netns', 'del', name], { timeoutMs: IP_TIMEOUT_MS, mutates: true, allowFailure: true });
    if (r.exitCode !== 0 && !/No such file|Invalid argument|not found/i.test(r.stderr)) {
      await this.runner.run(['ip', 'netns', 'del', name], { timeoutMs: IP_TIMEOUT_MS, mutates: true });
    }
  }

  /** Pids of the processes living in a namespace (`ip netns pids`). */
  async netnsPids(name: string): Promise<number[]> {
    const r = await this.runner.run(['ip', 'netns', 'pids', name], { timeoutMs: IP_TIMEOUT_MS, mutates: false, allowFailure: true });
    if (r.exitCode !== 0) return [];
    return r.stdout
      .split('\n')
      .map((l) => Number.parseInt(l.trim(), 10))
      .filter((n) => Number.isInteger(n) && n > 0);
  }

  /**
   * Deletes namespaces (names just listed) in one `ip -batch`; if one went meanwhile, the batch
   * stops there, and each is deleted on its own, ignoring ones already gone.
   */
  async deleteNetnsAll(names: readonly string[]): Promise<void> {
    try {
      await this.batch(names.map((n) => ['netns', 'del', n]));
    } catch {
      for (const n of names) await this.deleteNetns(n);
    }
  }

  /** Links of the namespace; none when the namespace does not exist (yet). */
  async links(): Promise<LinkInfo[]> {
    const r = await this.run(['-j', 'link', 'show'], false, true);
    return r.exitCode === 0 ? parseLinks(r.stdout) : [];
  }

  async link(name: string): Promise<LinkInfo | undefined> {
    const r = await this.run(['-j', 'link', 'show', 'dev', name], false, true);
    if (r.exitCode !== 0) return undefined;
    return parseLinks(r.stdout)[0];
  }

  async addrs(): Promise<AddrInfo[]> {
    const r = await this.run(['-j', 'addr', 'show'], false);
    return parseAddrs(r.stdout);
  }

  /**
   * Several `ip` commands in one process (`ip -batch -`), stopping at the first that fails: one
   * fork instead of many. A dry run prints them one by one instead.
   */
  async batch(lines: string[][]): Promise<void> {
    if (lines.length === 0) return;
    if (lines.some((l) => l.some((a) => /\s/.test(a) || a === ''))) throw new Error('ip batch arguments must not contain whitespace');
    if (this.runner instanceof DryRunRunner || lines.length === 1) {
      for (const l of lines) await this.run(l, true);
      return;
    }
    const argv = this.netns === undefined ? ['ip', '-batch', '-'] : ['ip', '-n', this.netns, '-batch', '-'];
    await this.runner.run(argv, { input: `${lines.map((l) => l.join(' ')).join('\n')}\n`, timeoutMs: IP_TIMEOUT_MS, mutates: true });
  }

  async addBridge(name: string, mtu: number): Promise<void> {
    await this.run(['link', 'add', 'name', name, 'mtu', String(mtu), 'type', 'bridge'], true);
  }

  /**
   * A veth pair created directly in two namespaces: neither end ever exists in the namespace
   * `ip` runs in, so nothing can be left behind there if we are killed half-way.
   */
  async addVethPair(a: { name: string; netns: string }, b: { name: string; netns: string }, mtu: number): Promise<void> {
    await this.runner.run(
      ['ip', 'link', 'add', 'name', a.name, 'netns', a.netns, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', b.name, 'netns', b.netns, 'mtu', String(mtu)],
      { timeoutMs: IP_TIMEOUT_MS, mutates: true },
    );
  }

  async setLink(name: string, opts: { up?: boolean; mtu?: number; master?: string; address?: string; netns?: string }): Promise<void> {
    const args = ['link', 'set', 'dev', name];
    if (opts.address !== undefined) args.push('address', opts.address);
    if (opts.mtu !== undefined) args.push('mtu', String(opts.mtu));
    if (opts.master !== undefined) args.push('master', opts.master);
    if (opts.netns !== undefined) args.push('netns', opts.netns);
    if (opts.up === true) args.push('up');
    if (opts.up === false) args.push('down');
    await this.run(args, true);
  }

  async deleteLink(name: string): Promise<void> {
    await this.run(['link', 'del', 'dev', name], true, true);
  }

  /** `ip addr replace`: idempotent. */
  async replaceAddr(dev: string, cidr: string): Promise<void> {
    await this.run(['addr', 'replace', cidr, 'dev', dev], true);
  }

  async replaceDefaultRoute(gateway: string): Promise<void> {
    await this.run(['route', 'replace', 'default', 'via', gateway], true);
  }
}

/**
 * Pids of the processes inside any of the named namespaces, found the way `ip netns pids` does
 * (the inode of /run/netns/NAME against each process's /proc/PID/ns/net) without a process per
 * namespace.
 */
export function pidsInNetns(names: readonly string[], netnsDir = '/run/netns'): number[] {
  const inodes = new Set<number>();
  for (const n of names) {
    try {
      inodes.add(statSync(path.join(netnsDir, n)).ino);
    } catch {
      // gone already
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/ns/net`));
      if (m !== null && inodes.has(Number(m[1]))) pids.push(Number(entry));
    } catch {
      // exited, or a kernel thread
    }
  }
  return pids;
}

interface RawLink {
  ifname?: string;
  mtu?: number;
  operstate?: string;
  flags?: string[];
  address?: string;
  master?: string;
}

export function parseLinks(json: string): LinkInfo[] {
  const raw = parseJsonArray<RawLink>(json);
  return raw
    .filter((l): l is RawLink & { ifname: string } => typeof l.ifname === 'string')
    .map((l) => ({
      ifname: l.ifname,
      flags: l.flags ?? [],
      ...(l.mtu === undefined ? {} : { mtu: l.mtu }),
      ...(l.operstate === undefined ? {} : { operstate: l.operstate }),
      ...(l.address === undefined ? {} : { address: l.address }),
      ...(l.master === undefined ? {} : { master: l.master }),
    }));
}

export function parseAddrs(json: string): AddrInfo[] {
  const raw = parseJsonArray<{ ifname?: string; addr_info?: { local?: string; prefixlen?: number }[] }>(json);
  return raw
    .filter((l) => typeof l.ifname === 'string')
    .map((l) => ({
      ifname: l.ifname as string,
      addresses: (l.addr_info ?? []).filter((a) => a.local !== undefined).map((a) => `${a.local}/${a.prefixlen ?? 32}`),
    }));
}

export function parseNetnsList(json: string): string[] {
  return parseJsonArray<{ name?: string }>(json)
    .map((n) => n.name)
    .filter((n): n is string => typeof n === 'string');
}

function parseJsonArray<T>(json: string): T[] {
  const text = json.trim();
  if (text === '') return [];
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed) ? (parsed as T[]) : [];
}
