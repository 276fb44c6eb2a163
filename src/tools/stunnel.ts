/**
 * Typed wrapper around stunnel 5.x: which binary, config checks, and reloads that are confirmed
 * from the log (a failed SIGHUP reload keeps the old config and only says so in the log).
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { ExitError } from '../errors.js';
import type { Runner } from '../runner.js';

const CHECK_TIMEOUT_MS = 15_000;
const RELOAD_TIMEOUT_MS = 10_000;
/** After "Configuration successful" stunnel rebinds its listeners; binding errors follow within this. */
const REBIND_SETTLE_MS = 200;
const POLL_MS = 25;

/**
 * Debian (and Ubuntu) ship the binary as `stunnel4` (`stunnel` is only a symlink there, and on
 * older releases the 3.x wrapper); Fedora/EL and most others as `stunnel`.
 */
export function stunnelBinary(opts: { osFamily?: 'debian' | 'other'; pathEnv?: string } = {}): string {
  if (opts.osFamily !== undefined) return opts.osFamily === 'debian' ? 'stunnel4' : 'stunnel';
  for (const dir of (opts.pathEnv ?? process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(path.join(dir, 'stunnel4'), constants.X_OK);
      return 'stunnel4';
    } catch {
      // not in this directory
    }
  }
  return 'stunnel';
}

export interface StunnelCheck {
  /** Warning lines stunnel logged while loading the config (should be none). */
  warnings: string[];
  /** Everything stunnel logged. */
  log: string;
}

/**
 * Only these global options are replaced for a check; everything that loads certificates, keys,
 * CRLs, ciphers and curves stays exactly as written.
 */
const CHECK_OVERRIDDEN_GLOBALS = new Set(['foreground', 'pid', 'output', 'syslog', 'debug', 'log']);
// debug 6 (info): an error is then preceded by the file stunnel was loading.
const CHECK_HEADER = ['foreground = yes', 'pid =', 'syslog = no', 'debug = 6'];

/**
 * The config as a side-effect-free check: in the foreground, logging to stderr, no pid file, and
 * every listener on a unix socket in a directory that does not exist. stunnel has no test flag
 * (5.68): it loads the whole config (keys, certificates, CRLs, cipher lists), logs
 * "Configuration successful", then fails to bind and exits, so nothing is bound and a running
 * instance with the same config is not disturbed.
 */
export function checkVariant(conf: string, unbindableDir: string): string {
  let inGlobal = true;
  let n = 0;
  const out = [...CHECK_HEADER];
  for (const line of conf.split('\n')) {
    if (/^\s*\[/.test(line)) inGlobal = false;
    const key = /^\s*([A-Za-z]+)\s*=/.exec(line)?.[1]?.toLowerCase();
    // Replaced lines stay as comments so stunnel's line numbers map back to the original.
    if (inGlobal && key !== undefined && CHECK_OVERRIDDEN_GLOBALS.has(key)) out.push(`; ${key} replaced for the check`);
    else out.push(key === 'accept' ? `accept = ${unbindableDir}/${n++}.sock` : line);
  }
  return out.join('\n');
}

/** stunnel's stderr lines are `[c] text`, c = "***!:.  "[level]: `*` fatal, `!` error, `:` warning. */
function linesAt(log: string, marks: string): string[] {
  return log
    .split('\n')
    .filter((l) => l.length > 3 && l[0] === '[' && l[2] === ']' && marks.includes(l[1] ?? ''))
    .map((l) => l.slice(4));
}

/** stunnel's error lines, after the last thing it was loading (its errors often omit the file name). */
function explainFailure(log: string): string[] {
  const lines = log.split('\n');
  const firstError = lines.findIndex((l) => /^\[[*!]\]/.test(l));
  if (firstError < 0) return lines.filter((l) => l.trim() !== '').slice(-8);
  const loading = lines
    .slice(0, firstError)
    .reverse()
    .find((l) => /^\[.\] (Loading|Initializing service|Reading configuration|Line \d+)/.test(l));
  return [...(loading === undefined ? [] : [loading.slice(4)]), ...linesAt(log, '*!')];
}

/** `0:12: "key = value": ...` (descriptor 0, line of the check variant) -> `FILE:8: ...`. */
function originalLineNumbers(line: string, confPath: string): string {
  return line.replace(/^0:(\d+):/, (_m, n: string) => `${confPath}:${Number(n) - CHECK_HEADER.length}:`);
}

/** Loads `confPath` the way the daemon would and throws ExitError with stunnel's own errors if it fails. */
export async function checkStunnelConfig(
  runner: Runner,
  confPath: string,
  opts: { netns?: string; binary?: string } = {},
): Promise<StunnelCheck> {
  let conf: string;
  try {
    conf = await fs.readFile(confPath, 'utf8');
  } catch (err) {
    throw new ExitError(`cannot read stunnel config ${confPath}: ${(err as Error).message}`);
  }
  const unbindableDir = `/nonexistent-ovn-deploy-check-${randomBytes(6).toString('hex')}`;
  const r = await runner.run([opts.binary ?? stunnelBinary(), '-fd', '0'], {
    input: checkVariant(conf, unbindableDir),
    timeoutMs: CHECK_TIMEOUT_MS,
    allowFailure: true,
    mutates: false,
    ...(opts.netns === undefined ? {} : { netns: opts.netns }),
  });
  const log = r.stderr + r.stdout;
  const ours = (l: string) => l.includes(unbindableDir) || /^Binding service \[.*\] failed$/.test(l);
  if (!log.includes('Configuration successful')) {
    const why = explainFailure(log).map((l) => originalLineNumbers(l, confPath));
    throw new ExitError(`stunnel rejects ${confPath}:\n${why.join('\n')}`);
  }
  return { warnings: linesAt(log, ':').filter((l) => !ours(l)), log };
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return 0;
  }
}

/** The log lines written since byte `offset` (all of it if the file was truncated or rotated). */
async function logSince(file: string, offset: number): Promise<string[]> {
  let buf: Buffer;
  try {
    buf = await fs.readFile(file);
  } catch {
    return [];
  }
  return buf
    .subarray(buf.length >= offset ? offset : 0)
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The one way a stunnel reloads: `send` delivers SIGHUP through whatever manages the process (the
 * own supervisor, systemd), then the reload is confirmed from the stunnel's log (`output` file,
 * debug >= 5). Throws ExitError when stunnel reports "Failed to reload the configuration file" (it
 * then keeps serving with the previous config) or cannot rebind a listener.
 */
export async function reloadStunnel(logFile: string, send: () => Promise<void>, opts: { timeoutMs?: number } = {}): Promise<void> {
  const offset = await sizeOf(logFile);
  await send();
  const deadline = Date.now() + (opts.timeoutMs ?? RELOAD_TIMEOUT_MS);
  let okAt: number | undefined;
  for (;;) {
    const lines = await logSince(logFile, offset);
    const errors = lines.filter((l) => /\bLOG[0-3]\[/.test(l)).map((l) => l.replace(/^.*?LOG[0-3]\[[^\]]*\]: /, ''));
    if (lines.some((l) => l.includes('Failed to reload the configuration file'))) {
      throw new ExitError(`stunnel (log ${logFile}) failed to reload its configuration and keeps running the previous one:\n${errors.join('\n')}`);
    }
    if (okAt === undefined && lines.some((l) => l.includes('Configuration successful'))) okAt = Date.now();
    if (okAt !== undefined) {
      const bindErrors = errors.filter((l) => /binding|bind\b/i.test(l));
      if (bindErrors.length > 0) throw new ExitError(`stunnel (log ${logFile}) reloaded its configuration but cannot listen:\n${bindErrors.join('\n')}`);
      if (Date.now() - okAt >= REBIND_SETTLE_MS) return;
    }
    if (Date.now() > deadline) {
      throw new ExitError(`stunnel did not confirm the reload in ${logFile} within ${(opts.timeoutMs ?? RELOAD_TIMEOUT_MS) / 1000} s (its debug level must be 5 or more)`);
    }
    await sleep(POLL_MS);
  }
}

/** The log file a stunnel config writes to (its global `output =`), if any. */
function stunnelOutputOf(confText: string): string | undefined {
  return /^\s*output\s*=\s*(\S.*?)\s*$/m.exec(confText)?.[1];
}

/**
 * A service's reload, confirmed when the service is a stunnel: every command line that runs one
 * (directly or through the socket-activation wrapper) ends with its config file.
 * `readConf` reads a path as the daemon sees it (apply --root maps it under the root).
 */
export async function reloadServiceConfirmed(argv: readonly string[], send: () => Promise<void>, readConf: (conf: string) => Promise<string>): Promise<void> {
  const runsStunnel = argv.some((a) => /^stunnel/.test(path.basename(a)));
  const conf = runsStunnel ? argv[argv.length - 1] : undefined;
  if (conf === undefined) return send();
  const log = stunnelOutputOf(await readConf(conf));
  if (log === undefined) throw new ExitError(`cannot confirm a reload of the stunnel of ${conf}: the config names no "output" log`);
  await reloadStunnel(log, send);
}
