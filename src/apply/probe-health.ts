/**
 * The manifest's health checks with the `tcp-listen` ones answered by a probe of the caller's
 * (a host in another network namespace, where this process cannot connect). Both halves retry
 * until the same deadline; results keep the manifest's order.
 */
import type { HealthCheck } from '../bundle/manifest.js';
import { sleep } from '../tools/retry.js';
import { FIRST_POLL_MS, healthResult, runHealthChecks, type HealthContext } from './health.js';
import type { HealthResult } from './report.js';

export type TcpProbe = (address: string, port: number) => Promise<{ ok: boolean; detail: string }>;

type TcpCheck = Extract<HealthCheck, { kind: 'tcp-listen' }>;

async function probeUntil(probe: TcpProbe, checks: readonly TcpCheck[], deadlineMs: number, intervalMs: number): Promise<HealthResult[]> {
  const deadline = Date.now() + deadlineMs;
  let wait = Math.min(FIRST_POLL_MS, intervalMs);
  for (;;) {
    const results = await Promise.all(
      checks.map(async (c) => {
        const r = await probe(c.address, c.port).catch((err: unknown) => ({ ok: false, detail: (err as Error).message }));
        return healthResult(c, r);
      }),
    );
    if (results.every((r) => r.ok) || Date.now() >= deadline) return results;
    await sleep(wait);
    wait = Math.min(wait * 2, intervalMs);
  }
}

export async function healthChecks(
  ctx: HealthContext,
  checks: readonly HealthCheck[],
  deadlineMs: number,
  intervalMs = 500,
  log: (line: string) => void = () => undefined,
  tcpProbe?: TcpProbe,
): Promise<HealthResult[]> {
  if (tcpProbe === undefined) return runHealthChecks(ctx, checks, deadlineMs, intervalMs, log);
  const isTcp = (c: HealthCheck): c is TcpCheck => c.kind === 'tcp-listen';
  const tcp = checks.filter(isTcp);
  const rest = checks.filter((c) => !isTcp(c));
  const [restResults, tcpResults] = await Promise.all([
    rest.length === 0 ? Promise.resolve([]) : runHealthChecks(ctx, rest, deadlineMs, intervalMs, log),
    tcp.length === 0 ? Promise.resolve([]) : probeUntil(tcpProbe, tcp, deadlineMs, intervalMs),
  ]);
  const byCheck = new Map<HealthCheck, HealthResult>();
  rest.forEach((c, i) => { const r = restResults[i]; if (r !== undefined) byCheck.set(c, r); });
  tcp.forEach((c, i) => { const r = tcpResults[i]; if (r !== undefined) byCheck.set(c, r); });
  return checks.flatMap((c) => { const r = byCheck.get(c); return r === undefined ? [] : [r]; });
}
