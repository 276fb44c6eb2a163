/**
 * Daemon probes of apply's health checks (and so of every status, the sandbox's included), so
 * every side judges a daemon by the same question.
 */
import { readFile } from 'node:fs/promises';
import type { Runner } from '../runner.js';
import { appctl } from '../tools/ovs.js';
import { memberVerdict } from './cluster-status.js';

export interface ProbeResult {
  ok: boolean;
  detail: string;
}

const lastLine = (s: string): string => s.trim().split('\n').pop() ?? '';

/** ovn-controller's own word on its Southbound session: `connection-status` says `connected`. */
async function controllerConnected(runner: Runner, ctl: string, timeoutSec: number): Promise<ProbeResult> {
  const r = await appctl(runner, ctl, ['connection-status'], { timeoutSec, allowFailure: true });
  const state = r.stdout.trim();
  if (r.exitCode === 0 && state === 'connected') return { ok: true, detail: state };
  return { ok: false, detail: state || lastLine(r.stderr) || `exit ${r.exitCode}` };
}

/**
 * The same probe when only the pid file is known: ovn-controller 23.03 has no --unixctl, so its
 * control socket is named after its pid.
 */
export async function controllerConnectedByPidFile(runner: Runner, pidFile: string, ctlOf: (pid: number) => string, timeoutSec: number): Promise<ProbeResult> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return { ok: false, detail: `no ${pidFile}` };
  return controllerConnected(runner, ctlOf(pid), timeoutSec);
}

/** A RAFT member of `db` with a known leader, by its `cluster/status`. */
export async function raftMember(runner: Runner, ctl: string, db: string, timeoutSec: number): Promise<ProbeResult> {
  const r = await appctl(runner, ctl, ['cluster/status', db], { allowFailure: true, timeoutSec });
  if (r.exitCode !== 0) return { ok: false, detail: lastLine(r.stderr) || `exit ${r.exitCode}` };
  return memberVerdict(r.stdout);
}
