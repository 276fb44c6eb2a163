/**
 * Readiness of a unix socket, polled with short intervals instead of sleeping: what status and
 * the metadata steps ask (the hosts' own readiness is apply's health checks).
 */
import { connect } from 'node:net';
import { ExitError } from '../errors.js';
import { logTail } from '../supervisor/log-tail.js';
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
