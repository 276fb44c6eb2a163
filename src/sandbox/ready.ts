/**
 * Readiness checks that poll with short intervals instead of sleeping: a unix socket that
 * accepts, and the Southbound answering through a worker's stunnel client (the exact path
 * ovn-controller takes: plaintext to 127.0.0.1 in the worker, TLS across the underlay, stunnel
 * server, ovsdb-server's loopback port).
 */
import { connect } from 'node:net';
import { ExitError } from '../errors.js';
import { controllerConnectedByPidFile } from '../health/probes.js';
import { logTail } from '../supervisor/log-tail.js';
import type { Runner } from '../runner.js';
import { ovsdbListDbs } from '../tools/ovs.js';
import { pollUntil } from '../tools/retry.js';

const POLL_MS = 10;

/** True when something accepts connections on the unix socket (a leftover file does not). */
export function socketAccepts(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path: socketPath });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Waits for a daemon's socket; on timeout the error carries the end of the daemon's log. */
export async function waitForSocket(socketPath: string, timeoutMs: number, logFile?: string): Promise<void> {
  try {
    await pollUntil(async () => ((await socketAccepts(socketPath)) ? true : undefined), {
      timeoutMs,
      intervalMs: POLL_MS,
      onTimeout: () => new ExitError(`${socketPath} does not accept connections after ${timeoutMs / 1000} s`),
    });
  } catch (err) {
    if (logFile === undefined || !(err instanceof ExitError)) throw err;
    throw new ExitError(`${err.message}; end of ${logFile}:\n${await logTail(logFile, 10)}`);
  }
}

/** Polls until `database` is listed at `remote` (as seen from inside `netns`). */
export async function waitForDatabase(
  runner: Runner,
  remote: string,
  database: string,
  opts: { netns?: string; timeoutMs: number; logFiles?: string[] },
): Promise<void> {
  let lastError = '';
  await pollUntil(
    async () => {
      const r = await ovsdbListDbs(runner, remote, { timeoutSec: 2, ...(opts.netns === undefined ? {} : { netns: opts.netns }) });
      lastError = r.error;
      return r.databases.includes(database) ? true : undefined;
    },
    {
      timeoutMs: opts.timeoutMs,
      intervalMs: 20,
      onTimeout: () =>
        new ExitError(
          `${database} not reachable at ${remote}${opts.netns === undefined ? '' : ` from ${opts.netns}`} after ${opts.timeoutMs / 1000} s` +
            (lastError === '' ? '' : `: ${lastError}`) +
            (opts.logFiles === undefined ? '' : `; see ${opts.logFiles.join(', ')}`),
        ),
    },
  );
}

/**
 * ovn-controller says `connected` to the Southbound. After the SB restarts, its reconnect backoff
 * can leave it disconnected for seconds while the datapath still forwards (flows stay installed),
 * so a passing ping alone does not prove the chassis is back in touch with the SB.
 */
export async function waitForControllerConnected(
  runner: Runner,
  worker: { pidFile: string; ctl: (pid: number) => string; logFile: string },
  timeoutMs: number,
): Promise<void> {
  let last = 'no pid file yet';
  await pollUntil(
    async () => {
      const r = await controllerConnectedByPidFile(runner, worker.pidFile, worker.ctl, 2);
      last = r.detail;
      return r.ok ? true : undefined;
    },
    {
      timeoutMs,
      intervalMs: 100,
      onTimeout: () => new ExitError(`ovn-controller not connected to the SB after ${timeoutMs / 1000} s (${last}); see ${worker.logFile}`),
    },
  );
}
