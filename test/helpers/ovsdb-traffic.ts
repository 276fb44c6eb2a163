/**
 * OVSDB traffic through a sandbox's TLS tunnel while certificates change under it: a long-lived
 * `ovsdb-client monitor` session (must survive) and a writer that adds a logical switch every
 * 100 ms (every write must succeed). Both run inside a worker namespace against the worker's
 * local stunnel client port (on the central's loopback address L(C)); only processes started here are ever stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface NbMonitor {
  child: ChildProcess;
  output(): string;
  alive(): boolean;
  /** Resolves once `text` has been printed (or rejects after timeoutMs). */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `remote`: the NB as the host reaches it, its stunnel client's plaintext side (`tcp:L(C):16641`),
 * or native TLS's `ssl:` remote with the host's files in `tls` (ovsdb-client's --private-key...).
 */
export function startNbMonitor(netns: string, remote: string, tls: readonly string[] = []): NbMonitor {
  const child = spawn('ip', ['netns', 'exec', netns, 'ovsdb-client', ...tls, 'monitor', remote, 'OVN_Northbound', 'Logical_Switch', 'name'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    output: () => out,
    alive,
    waitFor: async (text, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!out.includes(text)) {
        if (!alive()) throw new Error(`ovsdb-client monitor exited (${child.exitCode ?? child.signalCode}) before printing ${text}:\n${out}`);
        if (Date.now() > deadline) throw new Error(`ovsdb-client monitor did not print ${text} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    stop: async () => {
      if (!alive()) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface ProbeFailure {
  name: string;
  code: number | null;
  output: string;
}

export interface ProbeReport {
  attempts: number;
  names: string[];
  failures: ProbeFailure[];
  /** Slowest single write (ms): how long a write waited out a reload. */
  slowestMs: number;
}

/** Seconds one probe write may take before it counts as lost. */
export const PROBE_TIMEOUT_S = 2;

export interface ProbeWriter {
  stop(): Promise<ProbeReport>;
}

function runOnce(argv: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0] ?? '', argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** What a successful single insert prints: one row's UUID, no `error`. */
const INSERTED = /^\[\{"uuid":\["uuid","[0-9a-f-]{36}"\]\}\]$/;

/**
 * Inserts a logical switch `PREFIX-<n>` through the tunnel every `periodMs`, one after another.
 * Each write is one `ovsdb-client transact` on a fresh connection with a short timeout: unlike
 * `ovn-nbctl`, it never reconnects, so a connection refused or dropped by a reload is a failure
 * here, not a retry hidden inside a slow write.
 */
export function startProbeWriter(netns: string, remote: string, prefix: string, periodMs = 100, tls: readonly string[] = []): ProbeWriter {
  let running = true;
  const report: ProbeReport = { attempts: 0, names: [], failures: [], slowestMs: 0 };
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      const name = `${prefix}-${report.attempts}`;
      report.attempts += 1;
      const txn = JSON.stringify(['OVN_Northbound', { op: 'insert', table: 'Logical_Switch', row: { name } }]);
      const r = await runOnce(['ip', 'netns', 'exec', netns, 'ovsdb-client', `--timeout=${PROBE_TIMEOUT_S}`, ...tls, 'transact', remote, txn], (PROBE_TIMEOUT_S + 2) * 1000);
      report.slowestMs = Math.max(report.slowestMs, Date.now() - started);
      if (r.code === 0 && INSERTED.test(r.output.trim())) report.names.push(name);
      else report.failures.push({ name, code: r.code, output: r.output });
      const wait = periodMs - (Date.now() - started);
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return report;
    },
  };
}
