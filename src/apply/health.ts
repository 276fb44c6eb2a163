/**
 * The manifest's health checks, retried together until all pass or the deadline passes; the
 * last result of each is reported. Read-only: `apply --check` runs only these.
 */
import net from 'node:net';
import path from 'node:path';
import type { HealthCheck } from '../bundle/manifest.js';
import { controllerConnectedByPidFile, raftMember } from '../health/probes.js';
import { metadataRegistrations, METADATA_ID_KEY } from '../metadata/registration.js';
import { hostPaths } from '../paths.js';
import type { Runner } from '../runner.js';
import { podmanQueryCommand } from '../metadata/agent-command.js';
import { SERVICE } from '../render/services.js';
import { Sbctl } from '../tools/ovn.js';
import { appctl } from '../tools/ovs.js';
import { sleep } from '../tools/retry.js';
import type { HealthResult } from './report.js';
import type { HostServices } from './services.js';

export interface HealthContext {
  runner: Runner;
  services: HostServices;
  at(hostPath: string): string;
}

export function checkName(c: HealthCheck): string {
  switch (c.kind) {
    case 'service-running':
      return `service-running ${c.service}`;
    case 'raft-member':
      return `raft-member ${c.db}`;
    case 'tcp-listen':
      return `tcp-listen ${c.address}:${c.port}`;
    case 'unix-listen':
      return `unix-listen ${c.path}`;
    case 'ovn-controller-connected':
      return 'ovn-controller-connected';
    case 'metadata-registered':
      return `metadata-registered ${c.chassis}`;
    case 'container-healthy':
      return `container-healthy ${c.container}`;
    case 'unixctl':
      return `unixctl ${c.service} ${c.command}`;
  }
}

/** The service a check is about (status judges each daemon by its own checks); undefined: the host's. */
export function serviceOf(c: HealthCheck): string | undefined {
  switch (c.kind) {
    case 'service-running':
    case 'unixctl':
    case 'tcp-listen':
    case 'unix-listen':
      return c.service;
    case 'raft-member':
      return c.db === 'OVN_Northbound' ? SERVICE.nbOvsdb : SERVICE.sbOvsdb;
    case 'ovn-controller-connected':
      return SERVICE.controller;
    case 'metadata-registered':
    case 'container-healthy':
      return SERVICE.metadataAgent;
  }
}

/** A unix socket is a file: reachable from this process whatever network namespace the host is. */
function listening(to: { host: string; port: number } | { path: string }, timeoutMs = 2_000): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    const socket = net.connect(to);
    const done = (ok: boolean, detail: string): void => {
      socket.destroy();
      resolve({ ok, detail });
    };
    socket.setTimeout(timeoutMs, () => done(false, `no answer within ${timeoutMs} ms`));
    socket.once('connect', () => done(true, 'accepts connections'));
    // A reset (not a refusal) means the handshake completed: something listens and accepted,
    // e.g. a stunnel client whose remote central is down closes at once.
    socket.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'ECONNRESET' ? done(true, 'accepts connections (then reset)') : done(false, err.code ?? err.message),
    );
  });
}

async function runCheck(ctx: HealthContext, c: HealthCheck): Promise<{ ok: boolean; detail: string }> {
  switch (c.kind) {
    case 'service-running': {
      const s = (await ctx.services.status()).find((x) => x.name === c.service);
      if (s === undefined) return { ok: false, detail: 'not managed' };
      if (s.running) return { ok: true, detail: `pid ${s.pid ?? '?'}` };
      return { ok: false, detail: s.unsupervisedPid === undefined ? `not running (restarts ${s.restarts})` : `runs (pid ${s.unsupervisedPid}) without its supervisor: nothing restarts it until the next apply` };
    }
    case 'raft-member':
      return raftMember(ctx.runner, ctx.at(c.ctl), c.db, 5);
    case 'tcp-listen':
      return listening({ host: c.address, port: c.port });
    case 'unix-listen':
      return listening({ path: ctx.at(c.path) });
    case 'ovn-controller-connected': {
      const runDir = ctx.at(c.runDir);
      return controllerConnectedByPidFile(ctx.runner, path.join(runDir, 'ovn-controller.pid'), (pid) => path.join(runDir, `ovn-controller.${pid}.ctl`), 5);
    }
    case 'metadata-registered': {
      const pki = hostPaths().pki;
      const sb =
        c.sbRemotes === undefined
          ? new Sbctl(ctx.runner, c.sbSockets.map((s) => `unix:${ctx.at(s)}`).join(','))
          : new Sbctl(ctx.runner, c.sbRemotes.join(','), [`--private-key=${ctx.at(pki.key)}`, `--certificate=${ctx.at(pki.cert)}`, `--ca-cert=${ctx.at(pki.caBundle)}`]);
      const [reg] = await metadataRegistrations(sb, [c.chassis], 5);
      return reg?.agentId == null ? { ok: false, detail: `Chassis_Private ${c.chassis} has no ${METADATA_ID_KEY}` } : { ok: true, detail: `registered as ${reg.agentId}` };
    }
    case 'unixctl': {
      const r = await appctl(ctx.runner, ctx.at(c.ctl), [c.command], { timeoutSec: 3, allowFailure: true });
      const line = (t: string) => t.trim().split('\n')[0] ?? '';
      return r.exitCode === 0 ? { ok: true, detail: line(r.stdout) || 'answers' } : { ok: false, detail: line(r.stderr) || `exit ${r.exitCode}` };
    }
    case 'container-healthy': {
      // The image's own HEALTHCHECK, now (no systemd timer needed), with the cgroups podman made it in.
      const cmd = podmanQueryCommand(['healthcheck', 'run', c.container]);
      const r = await ctx.runner.run(cmd.argv, { env: cmd.env, allowFailure: true, timeoutMs: 30_000 });
      if (r.exitCode === 0) return { ok: true, detail: 'healthy' };
      const last = `${r.stdout}\n${r.stderr}`.trim().split('\n').filter((l) => l.trim() !== '').slice(-1)[0];
      return { ok: false, detail: `unhealthy: ${last ?? `exit ${r.exitCode}`}` };
    }
  }
}

/** A check's result as the report carries it: named, and naming the service it is about. */
export function healthResult(c: HealthCheck, r: { ok: boolean; detail: string }): HealthResult {
  const service = serviceOf(c);
  return { check: checkName(c), ok: r.ok, detail: r.detail, ...(service === undefined ? {} : { service }) };
}

/** First pause between health-check rounds; doubles up to the caller's interval. */
export const FIRST_POLL_MS = 50;

export async function runHealthChecks(
  ctx: HealthContext,
  checks: readonly HealthCheck[],
  deadlineMs: number,
  intervalMs = 500,
  log: (line: string) => void = () => undefined,
): Promise<HealthResult[]> {
  const deadline = Date.now() + deadlineMs;
  let last = '';
  // Daemons that just started answer within tens of milliseconds: poll fast first, then back
  // off to intervalMs (a slow host is not asked 20 times a second for a minute).
  let wait = Math.min(FIRST_POLL_MS, intervalMs);
  for (;;) {
    const results = await Promise.all(
      checks.map(async (c) => {
        const r = await runCheck(ctx, c).catch((err: unknown) => ({ ok: false, detail: (err as Error).message }));
        return healthResult(c, r);
      }),
    );
    if (results.every((r) => r.ok) || Date.now() >= deadline) return results;
    const failing = results.filter((r) => !r.ok).map((r) => `${r.check} (${r.detail})`).join(', ');
    if (failing !== last) log(`waiting for: ${failing}`);
    last = failing;
    await sleep(wait);
    wait = Math.min(wait * 2, intervalMs);
  }
}
