/**
 * Typed wrappers around OVN's tools: ovn-nbctl, ovn-sbctl and ovn-trace (ovn-appctl is the same
 * program as ovs-appctl: tools/ovs.ts appctl). The NB/SB clients take a `--db` remote (the sandbox uses the central's unix sockets), a `--timeout`, and
 * retry briefly while the database is still starting.
 */
import type { RunResult, Runner } from '../runner.js';
import { isTransientOvsdbError } from './ovs.js';
import { parseOvsdbTable, type OvsdbRow } from './ovsdb-json.js';
import { retry } from './retry.js';

const backstop = (seconds: number): number => seconds * 1000 + 3000;

interface CtlOptions {
  timeoutSec?: number;
  mutates?: boolean;
  allowFailure?: boolean;
  netns?: string;
}

abstract class OvnDbCtl {
  protected abstract readonly program: 'ovn-nbctl' | 'ovn-sbctl';
  constructor(
    protected readonly runner: Runner,
    readonly db: string,
    /** Before the command: how to reach `db` (native TLS: --private-key=, --certificate=, --ca-cert=). */
    readonly connection: readonly string[] = [],
  ) {}

  /** One transaction: `args` may hold several `--`-separated commands. */
  async run(args: string[], opts: CtlOptions = {}): Promise<RunResult> {
    const timeoutSec = opts.timeoutSec ?? 10;
    const argv = [this.program, `--db=${this.db}`, ...this.connection, `--timeout=${timeoutSec}`, ...args];
    return retry(
      () =>
        this.runner.run(argv, {
          timeoutMs: backstop(timeoutSec),
          mutates: opts.mutates ?? true,
          allowFailure: opts.allowFailure ?? false,
          ...(opts.netns === undefined ? {} : { netns: opts.netns }),
        }),
      { attempts: 3, delayMs: 50, retryIf: isTransientOvsdbError },
    );
  }

  /** `init`: creates the root row if there is none (a no-op on an initialised database). */
  async init(): Promise<void> {
    await this.run(['init']);
  }

  async list(table: string, columns: string[], opts: CtlOptions = {}): Promise<OvsdbRow[]> {
    const r = await this.run(['--format=json', `--columns=${columns.join(',')}`, 'list', table], { ...opts, mutates: false });
    return parseOvsdbTable(r.stdout);
  }

  /** Blocks until every `[table, record, condition]` holds (one transaction of `wait-until`s). */
  async waitUntil(conditions: readonly [string, string, string][], timeoutSec: number): Promise<void> {
    const args: string[] = [];
    for (const [table, record, condition] of conditions) args.push('--', 'wait-until', table, record, condition);
    await this.run(args, { timeoutSec, mutates: false });
  }
}

export class Nbctl extends OvnDbCtl {
  protected readonly program = 'ovn-nbctl';
}

export class Sbctl extends OvnDbCtl {
  protected readonly program = 'ovn-sbctl';

  async chassisDel(name: string): Promise<void> {
    await this.run(['--if-exists', 'chassis-del', name]);
  }
}

/** `ovn-trace --summary DATAPATH MICROFLOW` against a Southbound database; returns its output. */
export async function ovnTrace(runner: Runner, sbDb: string, datapath: string, microflow: string, timeoutSec = 10): Promise<string> {
  // ovn-trace has no --timeout of its own: the runner's kill timeout bounds it.
  const r = await runner.run(['ovn-trace', `--db=${sbDb}`, '--summary', datapath, microflow], {
    timeoutMs: timeoutSec * 1000,
    mutates: false,
  });
  return r.stdout;
}

