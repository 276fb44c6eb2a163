/**
 * Typed wrappers around Open vSwitch's tools: ovs-vsctl, ovs-appctl and ovsdb-client.
 * Every call has a timeout (the tool's own `--timeout` where it has one, so it gives up cleanly,
 * plus the Runner's kill timeout as a backstop) and connection failures of a daemon that is still
 * starting are retried briefly.
 */
import { CommandError, type RunResult, type Runner } from '../runner.js';
import { parseOvsdbTable, type OvsdbRow } from './ovsdb-json.js';
import { retry } from './retry.js';

/** Errors worth a retry: the daemon's socket is not there yet or went away for a moment. */
export function isTransientOvsdbError(err: unknown): boolean {
  if (!(err instanceof CommandError)) return false;
  return /database connection failed|Connection refused|No such file or directory|connection attempt failed|Broken pipe|reset by peer/i.test(
    err.result.stderr,
  );
}

/** Backstop for the runner: a little longer than the tool's own --timeout. */
const backstop = (seconds: number): number => seconds * 1000 + 3000;

export interface TlsFiles {
  key: string;
  cert: string;
  caCert: string;
}

/** ovs-vsctl against one database socket. */
export class Vsctl {
  constructor(
    private readonly runner: Runner,
    readonly dbSocket: string,
  ) {}

  /**
   * Runs one ovs-vsctl transaction (`args` may hold several `--`-separated commands).
   * `wait: false` (the default) adds `--no-wait`: the DB is updated without waiting for
   * ovs-vswitchd to apply it, which is what you want before vswitchd runs.
   */
  async run(args: string[], opts: { wait?: boolean; timeoutSec?: number; mutates?: boolean; allowFailure?: boolean } = {}): Promise<RunResult> {
    const timeoutSec = opts.timeoutSec ?? 10;
    const argv = ['ovs-vsctl', `--db=unix:${this.dbSocket}`, `--timeout=${timeoutSec}`];
    if (opts.wait !== true) argv.push('--no-wait');
    argv.push(...args);
    return retry(
      () => this.runner.run(argv, { timeoutMs: backstop(timeoutSec), mutates: opts.mutates ?? true, allowFailure: opts.allowFailure ?? false }),
      { attempts: 3, delayMs: 50, retryIf: isTransientOvsdbError },
    );
  }

  /** `ovs-vsctl wait-until TABLE RECORD COND...`: blocks until ovs-vswitchd (or anyone) makes it true. */
  async waitUntil(table: string, record: string, conditions: string[], timeoutSec: number): Promise<void> {
    await this.run(['wait-until', table, record, ...conditions], { wait: false, timeoutSec, mutates: false });
  }

  async list(table: string, columns: string[]): Promise<OvsdbRow[]> {
    const r = await this.run(['--format=json', `--columns=${columns.join(',')}`, 'list', table], { mutates: false });
    return parseOvsdbTable(r.stdout);
  }
}

/**
 * `ovs-appctl -t TARGET CMD...` (TARGET: a control socket path). Works for every OVS/OVN daemon:
 * ovn-appctl is the same program with OVN's default run directory.
 */
export async function appctl(
  runner: Runner,
  target: string,
  args: string[],
  opts: { timeoutSec?: number; allowFailure?: boolean; mutates?: boolean } = {},
): Promise<RunResult> {
  const timeoutSec = opts.timeoutSec ?? 5;
  return runner.run(['ovs-appctl', '-t', target, `--timeout=${timeoutSec}`, ...args], {
    timeoutMs: backstop(timeoutSec),
    allowFailure: opts.allowFailure ?? false,
    mutates: opts.mutates ?? false,
  });
}

/** `ovsdb-client list-dbs REMOTE`, optionally over OVSDB's own TLS client and inside a namespace. */
export async function ovsdbListDbs(
  runner: Runner,
  remote: string,
  opts: { netns?: string; tls?: TlsFiles; timeoutSec?: number } = {},
): Promise<{ ok: boolean; databases: string[]; error: string }> {
  const timeoutSec = opts.timeoutSec ?? 5;
  const argv = ['ovsdb-client', `--timeout=${timeoutSec}`];
  if (opts.tls !== undefined) {
    argv.push(`--private-key=${opts.tls.key}`, `--certificate=${opts.tls.cert}`, `--ca-cert=${opts.tls.caCert}`);
  }
  argv.push('list-dbs', remote);
  const r = await runner.run(argv, {
    timeoutMs: backstop(timeoutSec),
    allowFailure: true,
    mutates: false,
    ...(opts.netns === undefined ? {} : { netns: opts.netns }),
  });
  const databases = r.exitCode === 0 ? r.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '') : [];
  const error = r.exitCode === 0 ? '' : (r.stderr.trim().split('\n').pop() ?? `exit ${r.exitCode}`);
  return { ok: r.exitCode === 0, databases, error };
}
